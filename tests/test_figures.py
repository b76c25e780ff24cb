"""Every claim check writes a record and every figure notebook renders it, whatever the numbers: all zeros, all
negative, all NaN, or a single row per table (issue: a log axis on the GPU-scale numbers crashed fig_B1).

The smoke run's real tables (Part A), Part C's summary tables from `trajectory_summary` and Part B's synthetic
per-member tables are degenerated column by column (every float column; ids, counts and flags stay); the claim rule's
call (`vgh.claims.run_check`, what workflow/scripts/claim.py does) and then the notebook run on them in-process, as
Snakemake's `script:` would, against a temporary folder. Also: a notebook run by hand draws to scratch/ and
touches neither figures/ nor results/claims/, and a claim script never imports matplotlib.
"""
import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SNAKEMAKE, as_default_layout

from vgh.claims import claim_job, figure_job, load_claim_table, run_check
from vgh.config import load_config

TABLE = load_claim_table(ROOT / "workflow/claims.yaml")
DEGENERATE = {
    "zeros": lambda x: np.zeros_like(x),
    "negative": lambda x: -np.abs(x) - 1.0,
    "nan": lambda x: np.full_like(x, np.nan),
    "single_row": None,
}


def degenerate(table: pd.DataFrame, how: str) -> pd.DataFrame:
    if how == "single_row":
        return table.head(1).copy()
    out = table.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = DEGENERATE[how](out[col].to_numpy())
    return out


def as_paths(value, base: Path):
    return [str(base / v) for v in value] if isinstance(value, list) else str(base / value)


C_CLAIMS = [c for c in TABLE if c.startswith("C")]


@pytest.mark.parametrize("how", list(DEGENERATE))
@pytest.mark.parametrize("claim_id", [c for c in TABLE if c.startswith("A")])
def test_figure_renders_degenerate_tables(smoke_run, smoke_out, tmp_path, claim_id, how):
    """Part A's figures on the smoke run's tables, degenerated (Part B's on per-member tables and Part C's on
    synthetic ones: below)."""
    config = load_config(smoke_run / "config/config.yaml", smoke_run / "workflow/schemas/config.schema.yaml",
                         [smoke_run / "config/smoke.yaml"])
    job = figure_job(claim_id, TABLE[claim_id], config)
    for name, value in job["input"].items():
        for rel in [] if name == "claim" else value if isinstance(value, list) else [value]:
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            degenerate(pd.read_parquet(smoke_out / rel), how).to_parquet(tmp_path / rel)
    run_claim_and_figure(claim_id, config, tmp_path)


@pytest.mark.workflow  # renders figure notebooks
@pytest.mark.parametrize("how", list(DEGENERATE))
@pytest.mark.parametrize("claim_id", C_CLAIMS)
def test_c_figure_renders_degenerate_tables(tmp_path, claim_id, how):
    """Part C's figures on its summary tables built from synthetic per-member inputs at smoke size (2 members,
    3 checkpoints, 2 RL seeds), degenerated as above: no smoke run needed."""
    from synthetic import synthetic_inputs

    from vgh.trajectory.summary import trajectory_summary

    config = load_config(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                         [ROOT / "config/smoke.yaml"])
    job = figure_job(claim_id, TABLE[claim_id], config)
    metrics, curves, sweep, _ = synthetic_inputs(n_members=2, n_checkpoints=3, n_seeds=2, steps=8,
                                                 lr_sweep=config["trajectory"]["lr_sweep"],
                                                 configured_lr=config["trajectory"]["rl"]["lr"],
                                                 headroom_k=config["trajectory"]["headroom_k"])
    tables = trajectory_summary(metrics, curves, sweep, config["trajectory"], config["bootstrap"])
    for name, rel in job["input"].items():
        if name != "claim":
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            degenerate(tables[name], how).to_parquet(tmp_path / rel)
    run_claim_and_figure(claim_id, config, tmp_path)


def run_claim_and_figure(claim_id, config, base: Path) -> dict:
    """The claim rule's call on the tables under `base` (its record written to base/results/claims/<ID>.json, as
    workflow/scripts/claim.py writes it), then the figure notebook in-process as Snakemake's `script:` would run
    it; check the figures and return the record."""
    from vgh.io import read_tables

    cjob = claim_job(claim_id, TABLE[claim_id], config)
    claim = run_check({k: read_tables(as_paths(v, base)) for k, v in cjob["input"].items()}, cjob["params"])
    claim.write(as_paths(cjob["output"]["claim"], base), config={k: v for k, v in cjob["params"].items()
                                                                 if k not in ("check", "statement", "metric")})
    job = figure_job(claim_id, TABLE[claim_id], config)
    snakemake = SimpleNamespace(input=SimpleNamespace(**{k: as_paths(v, base) for k, v in job["input"].items()}),
                                output=SimpleNamespace(**{k: as_paths(v, base) for k, v in job["output"].items()}),
                                params=SimpleNamespace(**job["params"]), threads=1, log=[str(base / "log.txt")])
    notebook = ROOT / "workflow/notebooks" / f"{TABLE[claim_id]['figure']}.py"
    try:
        runpy.run_path(str(notebook), init_globals={"snakemake": snakemake})
    finally:
        plt.close("all")
    for key in ("pdf", "png"):
        assert Path(getattr(snakemake.output, key)).stat().st_size > 1000
    record = json.loads(Path(snakemake.input.claim).read_text())
    assert record["id"] == claim_id and record["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"}
    return record


# ------------------------------------------------------------------ Part B on per-member tables (the ensemble)

def _b_member_tables(member: int, seed: int) -> dict[str, pd.DataFrame]:
    """Synthetic per-member tables in the costates jobs' layout (one member, every checkpoint, a `member` column):
    prompts, summary (`vgh.costates.measure.summarize`) and update_alignment with its permuted-reward null."""
    from vgh.costates.measure import summarize

    rng = np.random.default_rng(seed)
    frames = []
    for ck in (200, 1000):
        for tau in (0.25, 1.0, 2.0):
            n = 12
            gap = rng.uniform(0.01, 1.0, n) * tau
            e = 0.1 * gap * rng.uniform(0.9, 1.0, n)
            frames.append(pd.DataFrame({
                "member": member, "checkpoint": ck, "temperature": tau, "prompt_index": range(n), "a": 1, "b": 2,
                "prompt": "01+02=", "answer": "003", "carry": np.arange(n) % 3 == 0, "value": 0.5, "p_answer": 0.5,
                "greedy_correct": True, "moving_flip_fraction": rng.uniform(0, 1, n), "g_norm": 1.0,
                "pd_norm": 1.0, "pd_abs_error": e, "pd_rel_error": e, "pd_cosine": 0.9, "sf_abs_error": 2 * e,
                "sf_rel_error": 2 * e, "entropy": 2 * gap, "gap": gap, "gap_sq": gap ** 2, "gap_embed": 3 * gap}))
    prompts = pd.concat(frames, ignore_index=True)
    summary = summarize(prompts, ["member", "checkpoint", "temperature"])
    rows = []
    for permuted in (False, True):
        for g, base in ((2, 0.5), (4, 0.8), (8, 0.95)):
            kinds = ([("exact_expectation", -1)] if not permuted else []) + [("batch", b) for b in range(4)] + [
                ("mean_over_batches", -1)] + [("bootstrap_of_mean", b) for b in range(10)]
            for estimate, b in kinds:
                for a in ("reinforce", "rloo", "grpo"):
                    rows.append({"member": member, "checkpoint": 1000, "group_size": g, "batch": b, "algo": a,
                                 "estimate": estimate, "reward_permuted": permuted,
                                 "cosine": (0.05 if permuted else base) + 0.01 * rng.normal(),
                                 "cosine_to_rloo": 0.99, "rel_norm": 1.0, "frac_reward_zero_std": 0.1,
                                 "objective": 0.4, "grad_norm": 1.0, "n_params": 100})
    return {"prompts": prompts, "summary": summary, "update_alignment": pd.DataFrame(rows)}


@pytest.mark.workflow  # renders figure notebooks
@pytest.mark.parametrize(("how", "n_members"), [("as_is", 1)] + [(how, 5) for how in ["as_is", *DEGENERATE]])
@pytest.mark.parametrize("claim_id", ["B1", "B2", "B3"])
def test_b_figures_render_per_member_tables(tmp_path, claim_id, how, n_members):
    """Each B notebook reads lists of per-member tables (results/costates/member_{m}/...), degenerate or not, of
    five members, and of one (the degenerate tables' records are the same code's at any count)."""
    config = load_config(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                         [ROOT / "config/smoke.yaml"])
    config["pretrain"]["seeds"] = list(range(n_members))  # the claim's {member} paths expand over these
    for m in range(n_members):
        folder = tmp_path / f"results/costates/member_{m}"
        folder.mkdir(parents=True)
        for name, table in _b_member_tables(m, m).items():
            table = table if how == "as_is" else degenerate(table, how)
            table.to_parquet(folder / f"{name}.parquet")
    record = run_claim_and_figure(claim_id, config, tmp_path)
    if how == "as_is" and n_members == 5:  # (the envelope's verdicts on these tables: tests/test_costates.py)
        assert len(record["member_verdicts"]) == 5
        # B3's batch-mean margin over its null is clear in every member (reported, R27)
        assert claim_id != "B3" or (record["details"]["batch_mean_margin_over_null"]["members_above_0"] == 5
                                    and record["verdict"] != "FAIL"), record["details"]
        assert claim_id != "B1" or record["checks"]["pd_error_lowest_entropy"]["verdict"] == "PASS"
    if n_members == 1:  # one member: no count can PASS or FAIL (R21), every sub-check is marked (R17)
        assert record["verdict"] == "INCONCLUSIVE"
        assert all(c.get("meaningful") is False or not c["per_member"] for c in record["checks"].values())


def test_notebook_run_by_hand_draws_to_scratch_only(smoke_run, tmp_path):
    """`python workflow/notebooks/<figure>.py` from the repo root (issue 21): it reads the run's tables and record
    (results/ at the root, the default config's layout: here the smoke run's, linked so), draws to scratch/, and
    leaves figures/ and results/claims/ as they were."""
    import subprocess

    repo = as_default_layout(smoke_run, tmp_path / "repo")

    def state(folder):
        return {p.name: p.stat().st_mtime_ns for p in (repo / folder).iterdir()}

    before = {f: state(f) for f in ("figures", "results/claims")}
    stem = TABLE["C2"]["figure"]
    proc = subprocess.run([str(Path(SNAKEMAKE).with_name("python")), f"workflow/notebooks/{stem}.py"],
                          cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {f: state(f) for f in ("figures", "results/claims")} == before
    assert (repo / f"scratch/{stem}.pdf").stat().st_size > 1000
    assert (repo / f"scratch/{stem}.png").stat().st_size > 1000


def test_claim_script_never_imports_matplotlib(smoke_run, smoke_out, tmp_path):
    """A verdict never imports matplotlib: every claim's check, as workflow/scripts/claim.py calls it, in a fresh
    interpreter on the smoke run's tables (from the run's workdir, where the rule runs)."""
    import subprocess

    code = f"""
import sys
from vgh.claims import claim_job, load_claim_table, run_check
from vgh.config import load_config
from vgh.io import read_tables
config = load_config("{smoke_run}/config/config.yaml", "{smoke_run}/workflow/schemas/config.schema.yaml",
                     ["{smoke_run}/config/smoke.yaml"])
table = load_claim_table("{smoke_run}/workflow/claims.yaml")
for cid, entry in table.items():
    job = claim_job(cid, entry, config)
    claim = run_check({{k: read_tables(v) for k, v in job["input"].items()}}, job["params"])
    claim.write("{tmp_path}/" + cid + ".json", config={{}})
import json
for cid in table:
    a, b = (json.load(open(p)) for p in ("results/claims/" + cid + ".json", "{tmp_path}/" + cid + ".json"))
    for key in ("config", "recurrence", "members"):  # the rule adds R22's recurrence and the members
        a.pop(key, None), b.pop(key, None)
    assert a == b, cid  # the rule's record, again
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib")
assert not loaded, loaded
"""
    proc = subprocess.run([str(Path(SNAKEMAKE).with_name("python")), "-c", code], cwd=smoke_out,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (smoke_run / "workflow/scripts/claim.py").read_text().count("matplotlib") <= 1  # the docstring only
