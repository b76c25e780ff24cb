"""The learning-rate rule of Part C, stated before any sweep was looked at, and applied to the sweep's curves.

Learning-rate rule (stated before any sweep was looked at; `lr_rule` below): for each lr of `trajectory.lr_sweep`,
run RL (the configured settings, first seed) from every checkpoint. A checkpoint *falls* at that lr when its
mean training reward over the last quarter of steps is below its expected training reward at step 0 (the
exact RL-split pass@1 of the checkpoint) by more than 2 standard errors (SE of the last-quarter mean, from
the spread of the per-step mean rewards). The rule picks the largest lr at which no checkpoint falls.

Pure pandas: the C2 figure and the Part C summary apply it without importing torch.
"""
from __future__ import annotations

import math

import pandas as pd

LR_RULE = ("largest lr of trajectory.lr_sweep at which no checkpoint's mean training reward over the last "
           "quarter of steps falls below its exact step-0 expected reward by more than 2 SE (first seed)")
"""The learning-rate rule in one sentence (the module docstring states it in full)."""


def last_quarter(curve: pd.DataFrame) -> tuple[float, float, int]:
    """(mean, standard error, number of steps) of the per-step training reward over the last quarter of steps.

    SE from the spread of the per-step means; with a single step in the last quarter, the binomial SE of its
    samples is used instead (needs the `n_samples` column when present, else SE = nan).
    """
    c = curve.sort_values("step")
    n = max(1, len(c) // 4)
    tail = c["reward"].to_numpy()[-n:]
    m = float(tail.mean())
    if n >= 2:
        se = float(tail.std(ddof=1) / math.sqrt(n))
    else:
        ns = float(c["n_samples"].iloc[-1]) if "n_samples" in c else float("nan")
        se = math.sqrt(m * (1 - m) / ns) if ns == ns else float("nan")
    return m, se, n


def lr_rule(sweep: pd.DataFrame, n_se: float = 2.0) -> tuple[pd.DataFrame, pd.DataFrame, float | None]:
    """Apply the learning-rate rule (module docstring) to a sweep's curves.

    `sweep` has one row per (checkpoint, lr, step) with columns checkpoint, lr, step, reward, rl_pass1_before
    (and gain). Returns (per (checkpoint, lr) table with `falls`, per-lr table with `stable`, chosen lr or None
    when no lr is stable).
    """
    rows = []
    for (ckpt, lr), c in sweep.groupby(["checkpoint", "lr"], sort=True):
        m, se, n = last_quarter(c)
        start = float(c["rl_pass1_before"].iloc[0])
        margin = n_se * (se if se == se else 0.0)
        rows.append({"checkpoint": int(ckpt), "lr": float(lr), "reward_step0_expected": start,
                     "reward_step0_sampled": float(c.sort_values("step")["reward"].iloc[0]),
                     "reward_last_quarter": m, "reward_last_quarter_se": se, "last_quarter_steps": n,
                     "falls": bool(m < start - margin),
                     "eval_gain": float(c["gain"].iloc[0]) if "gain" in c else float("nan")})
    table = pd.DataFrame(rows)
    table["drop"] = table["reward_step0_expected"] - table["reward_last_quarter"]
    per_lr = (table.groupby("lr", as_index=False)
              .agg(n_checkpoints=("checkpoint", "size"), n_fall=("falls", "sum"), worst_drop=("drop", "max"),
                   mean_eval_gain=("eval_gain", "mean"))
              .sort_values("lr"))
    per_lr["stable"] = per_lr["n_fall"] == 0
    stable = per_lr.loc[per_lr["stable"], "lr"]
    chosen = float(stable.max()) if len(stable) else None
    return table, per_lr.reset_index(drop=True), chosen
