"""Every figure notebook renders, and writes a claim record, whatever the numbers: all zeros, all negative,
all NaN, or a single row per table (issue: a log axis on the GPU-scale numbers crashed fig_B1).

The smoke run's real tables are degenerated column by column (every float column; ids, counts and flags stay)
and each notebook runs on them in-process, as Snakemake's `script:` would, against a temporary folder.
"""
import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from vgh.claims import figure_job, load_claim_table
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
@pytest.mark.parametrize("claim_id", [c for c in TABLE if c not in C_CLAIMS])
def test_figure_renders_degenerate_tables(smoke_run, tmp_path, claim_id, how):
    config = load_config(smoke_run / "config/config.yaml", smoke_run / "workflow/schemas/config.schema.yaml",
                         [smoke_run / "config/smoke.yaml"])
    job = figure_job(claim_id, TABLE[claim_id], config)
    for value in job["input"].values():
        for rel in value if isinstance(value, list) else [value]:
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            degenerate(pd.read_parquet(smoke_run / rel), how).to_parquet(tmp_path / rel)
    run_notebook(claim_id, job, tmp_path)


@pytest.mark.parametrize("how", list(DEGENERATE))
@pytest.mark.parametrize("claim_id", C_CLAIMS)
def test_c_figure_renders_degenerate_tables(tmp_path, claim_id, how):
    """Part C's figures on its summary tables built from synthetic per-member inputs at smoke size (2 members,
    3 checkpoints, 2 RL seeds), degenerated as above: no smoke run needed."""
    from vgh.trajectory.summary import synthetic_inputs, trajectory_summary

    config = load_config(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                         [ROOT / "config/smoke.yaml"])
    job = figure_job(claim_id, TABLE[claim_id], config)
    metrics, curves, sweep, _ = synthetic_inputs(n_members=2, n_checkpoints=3, n_seeds=2, steps=8,
                                                 lr_sweep=config["trajectory"]["lr_sweep"],
                                                 configured_lr=config["trajectory"]["rl"]["lr"],
                                                 headroom_k=config["trajectory"]["headroom_k"])
    tables = trajectory_summary(metrics, curves, sweep, config["trajectory"])
    for name, rel in job["input"].items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        degenerate(tables[name], how).to_parquet(tmp_path / rel)
    run_notebook(claim_id, job, tmp_path)


def run_notebook(claim_id, job, tmp_path):
    snakemake = SimpleNamespace(input=SimpleNamespace(**{k: as_paths(v, tmp_path) for k, v in job["input"].items()}),
                                output=SimpleNamespace(**{k: as_paths(v, tmp_path) for k, v in job["output"].items()}),
                                params=SimpleNamespace(**job["params"]), threads=1, log=[str(tmp_path / "log.txt")])
    notebook = ROOT / "workflow/notebooks" / f"{TABLE[claim_id]['figure']}.py"
    try:
        runpy.run_path(str(notebook), init_globals={"snakemake": snakemake})
    finally:
        plt.close("all")
    for key in ("pdf", "png"):
        assert Path(getattr(snakemake.output, key)).stat().st_size > 1000
    record = json.loads(Path(snakemake.output.claim).read_text())
    assert record["id"] == claim_id and record["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"}
