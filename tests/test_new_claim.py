"""Adding a claim (issue 32): a toy 9th claim on an existing table touches four places, its row in
workflow/claims.yaml (statement, metric, check, nulls, tables, thresholds, figure), its part (the check and its nulls
in a module of src/vgh/<part>/), its figure notebook and its report caption, and runs through its rules (claim_T1,
calibrate_T1, fig_T1), with nothing else edited."""
import json
import shutil

import pandas as pd
from conftest import ROOT, SMOKE_OUT, snakemake

TOY_PART = '''"""A toy claim on Part A's A1 table: SF's relative error at the largest N is small."""
import numpy as np

from vgh.claims import Finding
from vgh.ensemble import subcheck


def sf_error_at_n_max(table):
    t = table[(table.estimator == "SF") & (table.n_rollouts == table.n_rollouts.max())]
    return t.groupby("seed").rel_error.median()


def check_t1(table, thresholds):
    per_seed = sf_error_at_n_max(table)
    small = subcheck(per_seed.to_numpy(float), "<=", thresholds["max_error"])
    return Finding(value=small.value, threshold=f"<= {thresholds['max_error']:g}", checks={"sf_error_small": small},
                   details={"n_max": int(table.n_rollouts.max())})


def t1_nulls(tables, params):
    t = tables["table"]
    return {"errors times 100": ("null", lambda t_, rng: {"table": t.assign(rel_error=100 * t.rel_error)}, False)}
'''

TOY_ROW = '''T1:
  statement: "A toy claim: the SF gradient's relative error is small at the largest N."
  metric: "SF relative error at N={n_max}"
  check: vgh.control.toy.check_t1
  nulls: vgh.control.toy.t1_nulls
  subchecks: [sf_error_small]
  input: {table: results/control/a1_sf_pd.parquet}
  params: {thresholds: claims.T1, bootstrap: bootstrap, calibration: calibration}
  thresholds:
    max_error: {type: number, minimum: 0, default: 0.5, description: "T1: SF relative error at the largest N"}
  figure: T1_toy
  doc: "T1: the SF relative error per seed."
'''

TOY_NOTEBOOK = '''# %% [markdown]
# # T1: a toy claim

# %%
import matplotlib.pyplot as plt

from vgh.claims import record_summary
from vgh.control.toy import sf_error_at_n_max
from vgh.io import read_json, read_table
from vgh.plotting import save

table = read_table(snakemake.input.table)
claim = read_json(snakemake.input.claim)
per_seed = sf_error_at_n_max(table)
fig, ax = plt.subplots()
ax.bar([str(s) for s in per_seed.index], per_seed.to_numpy())
ax.set(xlabel="seed", ylabel="SF relative error at the largest N")
save(fig, snakemake.output.pdf, snakemake.output.png, caption=record_summary(claim))
'''


def test_a_new_claim_touches_four_places_and_runs_through_its_rules(workflow_copy, monkeypatch):
    wf = workflow_copy
    shutil.copytree(ROOT / "src", wf / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    monkeypatch.setenv("PYTHONPATH", str(wf / "src"))  # the jobs import the copy's library, as a checkout's would
    (wf / "src/vgh/control/toy.py").write_text(TOY_PART)  # 1. its part
    with open(wf / "workflow/claims.yaml", "a") as fh:  # 2. its row in the claim table
        fh.write(TOY_ROW)
    (wf / "workflow/notebooks/T1_toy.py").write_text(TOY_NOTEBOOK)  # 3. its figure
    (wf / "workflow/report/T1.rst").write_text("**T1 — a toy claim.** The SF relative error per seed.\n")  # 4.
    rules = snakemake(wf, "--list-rules", "--configfile", "config/smoke.yaml").stdout.split()
    assert {"claim_T1", "calibrate_T1", "fig_T1"} <= set(rules)
    # its rules on Part A's smoke table alone (the verdict table over all nine would run the whole smoke DAG)
    targets = ["results/claims/T1.json", "results/calibration/T1.parquet", "figures/T1_toy.pdf"]
    snakemake(wf, *targets, "--cores", "2", "--configfile", "config/smoke.yaml", timeout=900)
    out = wf / SMOKE_OUT
    rec = json.loads((out / "results/claims/T1.json").read_text())
    assert (rec["id"], rec["statement"]) == ("T1", "A toy claim: the SF gradient's relative error is small at the "
                                                   "largest N.")
    assert rec["metric"] == "SF relative error at N=65536" and rec["config"]["thresholds"] == {"max_error": 0.5}
    assert list(rec["checks"]) == ["sf_error_small"] and len(rec["checks"]["sf_error_small"]["per_member"]) == 2
    cal = pd.read_parquet(out / "results/calibration/T1.parquet")
    null = cal[(cal["level"] == "claim") & (cal["case"] == "errors times 100")]
    assert len(null) == 1 and null["pass_rate"].iloc[0] == 0.0
    assert (out / "figures/T1_toy.pdf").stat().st_size > 1000
