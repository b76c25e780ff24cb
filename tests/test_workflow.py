"""The workflow end to end on the smoke config, in a private temporary copy of the repo.

One smoke run (module fixture) serves every check: outputs and claim records exist, a second dry run has
nothing to do, touching a figure notebook reruns only that figure (and the verdict table that reads its
record), `--lint` is clean, `--report` builds, and a forced rerun reproduces every table exactly.
"""
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import copy_workflow, snakemake

SMOKE = ["--configfile", "config/smoke.yaml"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    wf = copy_workflow(tmp_path_factory.mktemp("smoke") / "wf")
    snakemake(wf, "--cores", "2", *SMOKE)
    return wf


def claim_ids(wf: Path) -> list[str]:
    return pd.read_csv(wf / "figures/claims.csv")["id"].tolist()


def dry_run_jobs(wf: Path, *args: str) -> dict[str, int]:
    """rule -> job count of what a dry run would execute, the target rule `all` aside (empty: nothing to do)."""
    out = snakemake(wf, "-n", "--cores", "2", *SMOKE, *args).stdout
    if "Nothing to be done" in out:
        return {}
    stats = out.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)
            if m.group(1) not in ("total", "all")}


def test_every_claim_has_record_and_figure(smoke_run):
    ids = claim_ids(smoke_run)
    assert ids, "no claims in the verdict table"
    for cid in ids:
        rec = json.loads((smoke_run / f"results/claims/{cid}.json").read_text())
        assert rec["id"] == cid and rec["verdict"] in {"PASS", "FAIL"}
        assert rec["verdict"] == ("PASS" if rec["passed"] else "FAIL")
        for key in ("statement", "metric", "value", "threshold", "config"):
            assert key in rec, f"{cid} record lacks {key}"
        stems = list((smoke_run / "figures").glob(f"{cid}_*.pdf"))
        assert len(stems) == 1, f"{cid}: expected one figure, got {stems}"
        assert stems[0].stat().st_size > 1000 and stems[0].with_suffix(".png").stat().st_size > 1000
    table = (smoke_run / "figures/claims.md").read_text()
    for cid in ids:
        assert f"| {cid} |" in table


def test_second_dry_run_has_nothing_to_do(smoke_run):
    assert dry_run_jobs(smoke_run) == {}


def test_touching_a_figure_notebook_reruns_only_that_figure(smoke_run):
    nb = sorted((smoke_run / "workflow/notebooks").glob("A1_*.py"))[0]
    nb.touch()
    jobs = dry_run_jobs(smoke_run)
    assert set(jobs) == {"fig_A1", "claims_table"}, jobs
    # restyle for real: rerun only that figure and the verdict table
    snakemake(smoke_run, "--cores", "2", *SMOKE)
    assert dry_run_jobs(smoke_run) == {}


def test_lint_is_clean(smoke_run):
    proc = snakemake(smoke_run, "--lint", *SMOKE, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_report_builds(smoke_run):
    snakemake(smoke_run, "--report", "report.html", *SMOKE)
    html = (smoke_run / "report.html").read_text(errors="replace")
    assert len(html) > 10_000
    for cid in claim_ids(smoke_run):
        assert cid in html


def test_forced_rerun_reproduces_every_table(smoke_run):
    """Same config and seeds on CPU give the same numbers: rerun the whole DAG and compare."""
    before = {p: pd.read_parquet(p) for p in sorted((smoke_run / "results").rglob("*.parquet"))}
    claims = {p: json.loads(p.read_text()) for p in sorted((smoke_run / "results/claims").glob("*.json"))}
    assert before
    snakemake(smoke_run, "--cores", "2", "--forceall", *SMOKE)
    for path, table in before.items():
        pd.testing.assert_frame_equal(pd.read_parquet(path), table, check_exact=True, obj=str(path))
    for path, rec in claims.items():
        assert json.loads(path.read_text()) == rec, path
