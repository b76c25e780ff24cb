"""Claim checks of Part C (C1, C2): pure functions of the tables `vgh.trajectory.summary` builds.

- table: one row per checkpoint (`predictors.checkpoint_table`): metrics, real gain over seeds, G_pred.
- preds: one row per predictor (`predictors.predictor_table`): Spearman / Pearson with bootstrap intervals.
- peak_freq: how often each checkpoint is the bootstrap peak (`predictors.peak_frequencies`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from vgh.claims import Claim, check

from .predictors import PREDICTORS


def check_c1(table: pd.DataFrame, thresholds: dict, peak_freq: pd.DataFrame | None = None,
             corruption_rate: float | None = None) -> Claim:
    """C1: where along the trajectory does the mean real gain peak? PASS iff strictly interior (neither the
    first nor the last checkpoint), as the signal x headroom criterion predicts (S ~ 0 at the start, H ~ 0 at
    the end when pass@1 saturates). `table` = checkpoint_table(...), `peak_freq` = peak_frequencies(...).
    `thresholds` (claims.C1) is empty: an interior peak is a yes/no rule with no tunable threshold."""
    t = table.sort_values("checkpoint").reset_index(drop=True)
    steps = t["checkpoint"].to_numpy()
    i = int(np.argmax(t["gain_mean"].to_numpy()))
    j = int(np.argmax(t["g_pred_loo"].to_numpy()))
    sub = check(float(steps[i]), within=(float(steps[1]), float(steps[-2]))) if len(steps) >= 3 else \
        {"value": float(steps[i]), "threshold": "needs >= 3 checkpoints", "passed": False}
    details = {
        "peak_checkpoint": int(steps[i]), "peak_gain_mean": float(t["gain_mean"].iloc[i]),
        "peak_index": i, "n_checkpoints": len(steps), "interior": bool(sub["passed"]),
        "predicted_peak_checkpoint_loo": int(steps[j]),
        "gain_mean_by_checkpoint": {int(s): float(g) for s, g in zip(steps, t["gain_mean"])},
        "gain_se_by_checkpoint": {int(s): float(g) for s, g in zip(steps, t["gain_se"])},
        "pass_at_1_by_checkpoint": {int(s): float(g) for s, g in zip(steps, t["pass_at_1"])},
        "corruption_rate": corruption_rate,
        "rule": "PASS iff the seed-mean real gain peaks strictly between the first and the last checkpoint",
    }
    if peak_freq is not None:
        f = peak_freq.set_index("checkpoint")["frequency"]
        details["bootstrap_frac_peak_interior"] = float(f.loc[steps[1:-1]].sum()) if len(steps) >= 3 else 0.0
        details["bootstrap_peak_checkpoint_freq"] = {int(k): float(v) for k, v in f.items() if v > 0}
    return Claim(
        id="C1",
        statement=("Along the pretraining trajectory the real RL gain (eval pass@1 after - before) peaks at an "
                   "interior checkpoint, where both the value-gradient signal and the headroom are non-zero. "
                   "Verdict rule: PASS iff the seed-mean gain peaks strictly between the first and last "
                   "checkpoint; reported either way."),
        metric="pretraining step of the peak mean real gain",
        value=float(steps[i]),
        threshold=sub["threshold"] + " (interior)",
        checks={"peak_interior": sub},
        details=details,
    )


def check_c2(preds: pd.DataFrame, table: pd.DataFrame, thresholds: dict, sweep: dict | None = None) -> Claim:
    """C2: Spearman(real gain, G_pred LOO) >= min_spearman (`thresholds`: claims.C2). Details: every
    predictor's rho and Pearson r with seed-bootstrap intervals, kappa, and the learning-rate sweep's verdict
    when given."""
    min_spearman = thresholds["min_spearman"]
    p = preds.set_index("predictor").reindex(list(PREDICTORS))  # a missing predictor reads as nan
    rho = float(p.loc["G_pred", "spearman"])
    sub = check(rho, ge=min_spearman)
    details = {
        "predictors": {name: {k: float(p.loc[name, k]) for k in p.columns if k != "n_boot"} for name in p.index},
        "n_boot": int(p["n_boot"].iloc[0]),
        "kappa_fit": float(table["kappa_fit"].iloc[0]),
        "kappa_loo": {int(s): float(k) for s, k in zip(table["checkpoint"], table["kappa_loo"])},
        "n_checkpoints": int(len(table)),
        "n_seeds": int(table["n_seeds"].min()),
        "g_pred_beats_each_single_factor": bool(all(rho > float(p.loc[n, "spearman"]) for n in ("S", "H"))),
        "g_pred_interval_above_each_single_factor": bool(all(
            float(p.loc["G_pred", "spearman_lo"]) > float(p.loc[n, "spearman_hi"]) for n in ("S", "H"))),
    }
    if sweep is not None:
        details["lr_sweep"] = sweep
    return Claim(
        id="C2",
        statement=("The signal x headroom value-impact predictor G_pred = H (1 - exp(-kappa S / H)), kappa fitted "
                   "leave-one-checkpoint-out, ranks the checkpoints by real RL gain (the paper's Figure 1)."),
        metric="Spearman(real gain, G_pred LOO)",
        value=rho,
        threshold=sub["threshold"],
        checks={"spearman_g_pred": sub},
        details=details,
    )
