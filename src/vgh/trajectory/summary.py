"""Part C aggregation: from the per-checkpoint metrics, the RL curves and the lr sweep to the tables the C1 / C2
checks read (`trajectory_summary`), the lr rule's verdict as C2 reports it (`sweep_verdict`) and its Markdown.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .predictors import checkpoint_table, peak_frequencies, predictor_table
from .lr_rule import LR_RULE, lr_rule

GAIN_COLUMNS = ["eval_pass1_before", "eval_pass1_after", "gain", "rl_pass1_before", "rl_pass1_after"]


def trajectory_summary(metrics: pd.DataFrame, curves: pd.DataFrame, sweep: pd.DataFrame, configured_lr: float,
                       n_boot: int, bootstrap_seed: int) -> dict[str, pd.DataFrame]:
    """Every Part C summary table, by name:

    checkpoints (`checkpoint_table`: metrics, real gain over seeds, G_pred LOO), gains (one row per checkpoint
    and seed), curves (all RL curves), predictors (Spearman / Pearson with seed-bootstrap intervals),
    peak_bootstrap (how often each checkpoint is the bootstrap peak), sweep (the lr rule per checkpoint and
    lr) and sweep_summary (per lr: stable, configured, chosen_by_rule).
    """
    gains = curves.groupby(["checkpoint", "seed"], as_index=False)[GAIN_COLUMNS].first()
    table = checkpoint_table(metrics, gains)
    preds, peaks = predictor_table(metrics, gains, np.random.default_rng(bootstrap_seed), n_boot)
    per_ckpt, per_lr, chosen = lr_rule(sweep)
    per_lr["configured"] = np.isclose(per_lr["lr"], float(configured_lr))
    per_lr["chosen_by_rule"] = np.isclose(per_lr["lr"], chosen) if chosen is not None else False
    return {"checkpoints": table, "gains": gains, "curves": curves, "predictors": preds,
            "peak_bootstrap": peak_frequencies(table["checkpoint"].to_numpy(), peaks), "sweep": per_ckpt,
            "sweep_summary": per_lr}


def sweep_verdict(per_lr: pd.DataFrame, configured_lr: float) -> dict:
    """The lr rule's verdict from the sweep_summary table: the rule, its choice, whether it is the configured lr."""
    chosen = per_lr.loc[per_lr["chosen_by_rule"], "lr"]
    return {
        "rule": LR_RULE,
        "chosen_lr": float(chosen.iloc[0]) if len(chosen) else None,
        "configured_lr": float(configured_lr),
        "configured_lr_in_sweep": bool(per_lr["configured"].any()),
        "configured_lr_is_rule_choice": bool(len(chosen) and np.isclose(chosen.iloc[0], configured_lr)),
        "per_lr": per_lr.to_dict(orient="records"),
    }


def sweep_markdown(per_ckpt: pd.DataFrame, per_lr: pd.DataFrame, configured_lr: float, seed: int) -> str:
    """results/trajectory/lr_sweep.md: the rule, its verdict and both sweep tables."""
    v = sweep_verdict(per_lr, configured_lr)
    return "\n".join([
        "# Part C learning-rate sweep", "",
        f"Rule (stated before the sweep, `vgh.trajectory.lr_rule`): the {LR_RULE}; RL settings as configured, seed "
        f"{seed}.", "",
        f"Rule picks lr = {v['chosen_lr']}; configured `trajectory.rl.lr` = {configured_lr:g} "
        f"({'agrees' if v['configured_lr_is_rule_choice'] else 'DISAGREES'}).", "",
        per_lr.to_markdown(index=False, floatfmt=".4g"), "", "Per (checkpoint, lr):", "",
        per_ckpt.to_markdown(index=False, floatfmt=".4g"), ""])
