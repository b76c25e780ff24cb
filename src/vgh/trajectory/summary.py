"""Part C aggregation over the ensemble: from the per-member metrics, RL curves and lr sweeps to the tables the C1 /
C2 checks read (`trajectory_summary`), and the lr rule's per-member report (`sweep_markdown`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from vgh.ensemble import with_member

from .lr_rule import LR_RULE, lr_rule
from .predictors import checkpoint_table, ensemble_table, member_fits, member_predictor_table, peak_table

GAIN_COLUMNS = ["eval_pass1_before", "eval_pass1_after", "gain", "rl_pass1_before", "rl_pass1_after"]


def trajectory_summary(metrics: pd.DataFrame, curves: pd.DataFrame, sweep: pd.DataFrame,
                       trajectory: dict, bootstrap: dict) -> dict[str, pd.DataFrame]:
    """Every Part C summary table, by name (a missing `member` column reads as member 0):

    checkpoints (per member and checkpoint: metrics, real gain over seeds, G_pred LOO), gains (per member,
    checkpoint and seed), curves (all RL curves), member_predictors (per member and predictor: Spearman /
    Pearson), ensemble (per statistic: estimate over members and nested interval; R9's `delta` among them),
    peaks (per member: real and predicted peak, R7, reported), sweep (the lr rule per member, checkpoint and lr) and
    sweep_summary (per member and lr: stable, chosen_by_rule, configured).
    `trajectory` is the config section (rl); `bootstrap` the top-level one (n_resamples, seed).
    """
    metrics, curves, sweep = with_member(metrics), with_member(curves), with_member(sweep)
    n_resamples, seed = int(bootstrap["n_resamples"]), int(bootstrap["seed"])
    rl = trajectory["rl"]
    gains = curves.groupby(["member", "checkpoint", "seed"], as_index=False)[GAIN_COLUMNS].first()
    fits = member_fits(metrics, gains)
    per_ckpt, per_lr, _ = lr_rule(sweep, metrics, rl["prompts_per_step"], rl["num_generations"],
                                  float(trajectory["lr_rule_alpha"]))
    per_lr["configured"] = np.isclose(per_lr["lr"], float(rl["lr"]))
    return {"checkpoints": checkpoint_table(metrics, gains, fits), "gains": gains, "curves": curves,
            "member_predictors": member_predictor_table(fits), "ensemble": ensemble_table(fits, n_resamples, seed),
            "peaks": peak_table(fits, n_resamples, seed), "sweep": per_ckpt, "sweep_summary": per_lr}


def sweep_markdown(per_ckpt: pd.DataFrame, per_lr: pd.DataFrame, configured_lr: float, alpha: float) -> str:
    """results/trajectory/lr_sweep.md: the rule, its choice per member against the configured lr, and both sweep
    tables (per member and lr; per member, checkpoint and lr)."""
    lines = ["# Part C learning-rate sweep", "",
             f"Rule (stated before the sweep, `vgh.trajectory.lr_rule`, docs/SCIENCE.md R8, R11): the {LR_RULE} "
             f"(= {alpha:g}); RL settings as configured. Configured `trajectory.rl.lr` = {configured_lr:g}.", "",
             "| member | rule picks | configured lr is the rule's choice |", "|---|---|---|"]
    for m, g in per_lr.groupby("member"):
        chosen = g.loc[g["chosen_by_rule"].astype(bool), "lr"]
        pick = f"{float(chosen.iloc[0]):g}" if len(chosen) else "none (no lr is stable)"
        ok = bool(len(chosen) and np.isclose(float(chosen.iloc[0]), configured_lr))
        lines.append(f"| {int(m)} | {pick} | {'yes' if ok else 'NO'} |")
    lines += ["", "Per member and lr:", "", per_lr.to_markdown(index=False, floatfmt=".4g"), "",
              "Per (member, checkpoint, lr):", "", per_ckpt.to_markdown(index=False, floatfmt=".4g"), ""]
    return "\n".join(lines)
