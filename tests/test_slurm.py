"""Part A of the smoke config through a real SLURM cluster with profiles/slurm, checked against the local smoke run.

Needs a SLURM controller that answers `sinfo` (CI starts a single-node one on localhost: `.ci/slurm.sh up`)
and the `cluster` extra (snakemake-executor-plugin-slurm). Where either is missing the test is skipped, with
the reason in pytest's summary (`pytest -rs`).

The SLURM run is wrapped in `timeout -k 10`: a status command that never sees a job finish makes Snakemake
wait forever without an error, and must not eat CI's time.
"""
import importlib.util
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, SMOKE_OUT, SNAKEMAKE, copy_workflow, snakemake

from vgh.claims import load_claim_table

pytestmark = pytest.mark.slurm

PART_A = {cid: e["figure"] for cid, e in load_claim_table(ROOT / "workflow/claims.yaml").items() if cid[0] == "A"}
# relative to the smoke config's workdir (SMOKE_OUT), like every output of a smoke run
TARGETS = [f"results/claims/{cid}.json" for cid in PART_A] + [
    f"figures/{PART_A['A1']}.{ext}" for ext in ("pdf", "png")]  # one figure rule (they differ only in their notebook)
SMOKE = ["--configfile", "config/smoke.yaml"]  # last: --configfile takes every following word as a file
SLURM_TIMEOUT_S = 240  # the Part-A DAG (8 jobs) took 51-82 s on a busy 2-CPU node (with 3 figures)
# First job status check 1 s after a submission (the profile's 5 s is kinder to a shared controller): on this
# 7-job DAG that saves ~12 s (60 s vs 72 s measured). MinJobAge (300 s in .ci/slurm.sh) must stay >= 3x it.
SLURM_ARGS = ["--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "1",
              "--slurm-keep-successful-logs"]
USABLE_NODE_STATES = {"idle", "mix", "alloc", "comp"}


def slurm_unavailable() -> str | None:
    """Why SLURM cannot run this test here, or None when it can."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return 'snakemake-executor-plugin-slurm is not installed (pip install -e ".[dev,cluster]")'
    if shutil.which("sinfo") is None:
        return "no SLURM here: `sinfo` not found (CI starts a single-node cluster with .ci/slurm.sh up)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return "SLURM controller does not answer: `sinfo` took over 5 s"
    if proc.returncode != 0:
        return f"SLURM controller does not answer: `sinfo` failed: {proc.stderr.strip()[:300]}"
    states = proc.stdout.split()
    if not USABLE_NODE_STATES & set(states):
        return f"SLURM has no usable node (sinfo node states: {states or 'none'})"
    return None


def finished_rules(log: str) -> list[str]:
    return sorted(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", log))


def planned_rules(wf: Path) -> list[str]:
    """The rule of every job a dry run of TARGETS plans in the fresh copy `wf`, one entry per job (sorted)."""
    out = snakemake(wf, "-n", *TARGETS, *SMOKE).stdout
    table = re.split(r"^total\s", out.split("Job stats:", 1)[1], maxsplit=1, flags=re.M)[0]  # the first table
    return sorted(m.group(1) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)
                  for _ in range(int(m.group(2))))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, smoke_run):
    """Part A through SLURM in a fresh copy; the local run it is checked against is the session's smoke run (the
    same config and seeds on this CPU)."""
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    wf = copy_workflow(tmp_path_factory.mktemp("slurm") / "wf")
    planned = planned_rules(wf)
    cmd = ["timeout", "-k", "10", str(SLURM_TIMEOUT_S), SNAKEMAKE, *SLURM_ARGS, *TARGETS, *SMOKE]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=wf, capture_output=True, text=True, timeout=SLURM_TIMEOUT_S + 30)
    wall = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    if proc.returncode in (124, 137):
        raise AssertionError(f"SLURM run hung: killed after {SLURM_TIMEOUT_S} s (a status command that never "
                             f"sees jobs finish? see profiles/slurm/config.yaml)\n{log[-6000:]}")
    assert proc.returncode == 0, f"SLURM run failed ({proc.returncode}):\n{log[-8000:]}"
    print(f"\nSLURM run of Part A (smoke): {wall:.1f} s wall")
    return {"local": smoke_run, "planned": planned, "slurm": wf, "slurm_log": log, "wall": wall}


def test_jobs_went_through_slurm(runs):
    log = runs["slurm_log"]
    assert "Using profiles profiles/slurm" in log
    rules = finished_rules(log)
    assert rules and rules == runs["planned"], (rules, runs["planned"])
    submitted = dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: ([^)\s]+)\)", log))
    assert len(submitted) == len(rules), f"{len(rules)} jobs ran, {len(submitted)} SLURM submissions:\n{log}"
    # SLURM's own log of each job (kept: --slurm-keep-successful-logs), one per rule, under .snakemake/slurm_logs
    # of the workdir (the plugin resolves it after `workdir:`)
    slurm_logs = runs["slurm"] / SMOKE_OUT / ".snakemake/slurm_logs"
    logs = {Path(p).relative_to(slurm_logs).parts[0] for p in submitted.values()}
    assert logs == {f"rule_{r}" for r in rules}
    assert all(Path(p).is_file() for p in submitted.values())
    # ... and the controller's view: every job COMPLETED (squeue keeps finished jobs for MinJobAge seconds)
    proc = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%T", "-j", ",".join(submitted)],
                          capture_output=True, text=True, timeout=10)
    states = dict(line.split("|", 1) for line in proc.stdout.split())
    assert states == {jid: "COMPLETED" for jid in submitted}, proc.stdout + proc.stderr


def test_claim_records_and_figures_match_a_local_run(runs):
    for cid in PART_A:
        rec = json.loads((runs["slurm"] / SMOKE_OUT / f"results/claims/{cid}.json").read_text())
        assert rec["id"] == cid and rec["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"}
        for key in ("statement", "metric", "value", "interval", "threshold", "checks", "member_verdicts", "config"):
            assert key in rec, f"{cid} record lacks {key}"
        # same code, config and seeds on the same CPU: the same record, number for number
        assert rec == json.loads((runs["local"] / SMOKE_OUT / f"results/claims/{cid}.json").read_text()), cid
    for ext in ("pdf", "png"):
        assert (runs["slurm"] / SMOKE_OUT / f"figures/{PART_A['A1']}.{ext}").stat().st_size > 1000, ext


def test_tables_match_a_local_run(runs):
    slurm_out = runs["slurm"] / SMOKE_OUT
    tables = sorted(p.relative_to(slurm_out) for p in (slurm_out / "results").rglob("*.parquet"))
    assert {t.parent.name for t in tables} == {"control"} and len(tables) == len(PART_A) + 1, tables  # A2: LQ, pendulum
    for rel in tables:
        slurm, local = (pd.read_parquet(runs[k] / SMOKE_OUT / rel)
                        for k in ("slurm", "local"))
        pd.testing.assert_frame_equal(slurm, local, check_exact=True, obj=str(rel))
