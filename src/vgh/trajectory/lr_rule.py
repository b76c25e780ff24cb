"""The learning-rate rule of Part C (docs/SCIENCE.md, rule R8), applied per ensemble member to the sweep's curves.

Learning-rate rule (stated before any sweep was looked at): for each lr of `trajectory.lr_sweep`, run RL (the
configured settings, first seed) from every checkpoint of a member. A checkpoint *falls* at that lr when its
mean training reward over the last quarter of steps is below its expected training reward at step 0 (the exact
RL-split pass@1 of the checkpoint) by more than 2 standard errors. The standard error is the exact one under the
step-0 policy (the null of no change), not the sample's: a step draws P = `prompts_per_step` distinct prompts of
the N RL prompts and G = `num_generations` completions each, and the last quarter has m steps, so

    Var = [ (N - P) / (N - 1) * Var_q(p_q) / P + mean_q p_q (1 - p_q) / (P G) ] / m

(Var_q the population variance of the checkpoint's exact RL-split p_q; the first term is sampling P prompts
without replacement, the second the binomial noise of the G completions given the prompts). The rule picks, per
member, the largest lr at which no checkpoint of that member falls. The sample SE of the last-quarter mean is
reported beside it. Pure pandas: the C figures and the Part C summary apply it without importing torch.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vgh.ensemble import with_member

LR_RULE = ("largest lr of trajectory.lr_sweep at which no checkpoint's mean training reward over the last "
           "quarter of steps falls below its exact step-0 expected reward by more than 2 SE, the SE exact under "
           "the step-0 policy (first seed; per member)")
"""The learning-rate rule in one sentence (the module docstring states it in full)."""

RL_STATS = ["rl_n_prompts", "rl_var_pq", "rl_mean_pq1mq"]
"""The metrics columns (`vgh.trajectory.metrics.rl_split_stats`) the exact variance needs."""


def null_variance(var_pq: float, mean_pq1mq: float, n_prompts: int, prompts_per_step: int, num_generations: int,
                  steps: int) -> float:
    """Exact variance of the mean training reward over `steps` steps under the step-0 policy (module docstring)."""
    N, P, G, m = int(n_prompts), int(prompts_per_step), int(num_generations), int(steps)
    fpc = (N - P) / (N - 1) if N > 1 else 0.0
    return (fpc * float(var_pq) / P + float(mean_pq1mq) / (P * G)) / m


def last_quarter(curve: pd.DataFrame) -> tuple[float, float, int]:
    """(mean, sample standard error, number of steps m) of the per-step training reward over the last quarter of
    steps (m = max(1, steps // 4)); the sample SE is nan with a single step."""
    c = curve.sort_values("step")
    n = max(1, len(c) // 4)
    tail = c["reward"].to_numpy()[-n:]
    se = float(tail.std(ddof=1) / math.sqrt(n)) if n >= 2 else float("nan")
    return float(tail.mean()), se, n


def lr_rule(sweep: pd.DataFrame, rl_stats: pd.DataFrame, prompts_per_step: int, num_generations: int,
            n_se: float = 2.0) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, float | None]]:
    """Apply the learning-rate rule (module docstring) to a sweep's curves, per member.

    `sweep`: one row per (member, checkpoint, lr, step) with columns checkpoint, lr, step, reward, rl_pass1_before
    (and gain). `rl_stats`: one row per (member, checkpoint) with the RL_STATS columns (the metrics table).
    A missing `member` column reads as member 0. Returns (per (member, checkpoint, lr) table with `falls`,
    per (member, lr) table with `stable`, {member: chosen lr, or None when no lr is stable}).
    """
    sweep, rl_stats = with_member(sweep), with_member(rl_stats)
    st = rl_stats.set_index(["member", "checkpoint"])
    rows = []
    for (member, ckpt, lr), c in sweep.groupby(["member", "checkpoint", "lr"], sort=True):
        m, se_sample, n = last_quarter(c)
        start = float(c["rl_pass1_before"].iloc[0])
        key = (member, ckpt)
        if key in st.index:
            r = st.loc[key]
            var = null_variance(r["rl_var_pq"], r["rl_mean_pq1mq"], r["rl_n_prompts"], prompts_per_step,
                                num_generations, n)
        else:
            var = float("nan")
        se = math.sqrt(var) if var == var and var >= 0 else float("nan")
        rows.append({"member": int(member), "checkpoint": int(ckpt), "lr": float(lr),
                     "reward_step0_expected": start,
                     "reward_step0_sampled": float(c.sort_values("step")["reward"].iloc[0]),
                     "reward_last_quarter": m, "reward_last_quarter_se_exact": se,
                     "reward_last_quarter_se_sample": se_sample, "last_quarter_steps": n,
                     # without the exact SE (no RL-split statistics) the checkpoint cannot be cleared: it falls
                     "falls": bool(not (se == se) or m < start - n_se * se),
                     "eval_gain": float(c["gain"].iloc[0]) if "gain" in c else float("nan")})
    table = pd.DataFrame(rows)
    table["drop"] = table["reward_step0_expected"] - table["reward_last_quarter"]
    per_lr = (table.groupby(["member", "lr"], as_index=False)
              .agg(n_checkpoints=("checkpoint", "size"), n_fall=("falls", "sum"), worst_drop=("drop", "max"),
                   mean_eval_gain=("eval_gain", "mean"))
              .sort_values(["member", "lr"]).reset_index(drop=True))
    per_lr["stable"] = per_lr["n_fall"] == 0
    chosen = {}
    for member, g in per_lr.groupby("member"):
        stable = g.loc[g["stable"], "lr"]
        chosen[int(member)] = float(stable.max()) if len(stable) else None
    per_lr["chosen_by_rule"] = [chosen[int(m)] is not None and np.isclose(lr, chosen[int(m)])
                                for m, lr in zip(per_lr["member"], per_lr["lr"])]
    return table, per_lr, chosen
