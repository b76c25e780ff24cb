"""The learning-rate rule of Part C (docs/SCIENCE.md, rules R8 and R11), applied per ensemble member to the sweep.

Learning-rate rule (R8, its test revised by R11 before the sweep under it ran): for each lr of
`trajectory.lr_sweep`, RL runs (the configured settings) from every checkpoint of a member: at the configured lr,
Part C's own runs (every seed of `trajectory.rl.seeds`); at another lr, one run with its own generator. In each run,
each checkpoint gives a one-sided test of "the training reward fell": its mean training reward over the last quarter
of steps against its expected training reward at step 0 (the exact RL-split pass@1 of the checkpoint), with the
standard error exact under the step-0 policy (the null of no change), not the sample's: a step draws P =
`prompts_per_step` distinct prompts of the N RL prompts and G = `num_generations` completions each, and the last
quarter has m steps, so

    Var = [ (N - P) / (N - 1) * Var_q(p_q) / P + mean_q p_q (1 - p_q) / (P G) ] / m

(Var_q the population variance of the checkpoint's exact RL-split p_q; the first term is sampling P prompts
without replacement, the second the binomial noise of the G completions given the prompts), and p = Phi((mean -
expected) / SE). A run's checkpoints are one family: Holm's step-down at family-wise level `alpha` decides which
fell in that run. A checkpoint *falls* at an lr when it falls in every run at that lr. The rule picks, per member,
the largest lr at which no checkpoint falls. The sample SE of the last-quarter mean is reported beside it. Pure
pandas: the C figures and the Part C summary apply it without importing torch.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from vgh.ensemble import with_member

LR_RULE = ("largest lr of trajectory.lr_sweep at which no checkpoint falls: its mean training reward over the last "
           "quarter of steps below its exact step-0 expected reward, one-sided with the SE exact under the step-0 "
           "policy, Holm over the run's checkpoints at family-wise level trajectory.lr_rule_alpha, in every run at "
           "that lr (the configured lr: every RL seed; another lr: its own run); per member")
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


def holm(p: np.ndarray, alpha: float) -> np.ndarray:
    """Holm's step-down over one family of p-values: [n] bool, rejected at family-wise level `alpha` (a nan p-value
    counts as rejected: a test that could not be run clears nothing)."""
    p = np.where(np.isnan(np.asarray(p, float)), -np.inf, np.asarray(p, float))
    n = len(p)
    out = np.zeros(n, bool)
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        if p[i] > alpha / (n - rank):
            break
        out[i] = True
    return out


def lr_rule(sweep: pd.DataFrame, rl_stats: pd.DataFrame, prompts_per_step: int, num_generations: int,
            alpha: float) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, float | None]]:
    """Apply the learning-rate rule (module docstring) to a sweep's curves, per member.

    `sweep`: one row per (member, checkpoint, lr, seed, step) with columns checkpoint, lr, seed, step, reward,
    rl_pass1_before (and gain); a missing `seed` column reads as one run per lr. `rl_stats`: one row per (member,
    checkpoint) with the RL_STATS columns (the metrics table). A missing `member` column reads as member 0. Returns
    (per (member, checkpoint, lr) table with `falls`, the number of runs, the largest p and the runs' mean reward,
    drop and gain; per (member, lr) table with `stable`; {member: chosen lr, or None when no lr is stable}).
    """
    sweep, rl_stats = with_member(sweep), with_member(rl_stats)
    if "seed" not in sweep:
        sweep = sweep.assign(seed=0)
    st = rl_stats.set_index(["member", "checkpoint"])
    runs = []
    for (member, lr, seed, ckpt), c in sweep.groupby(["member", "lr", "seed", "checkpoint"], sort=True):
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
        # without the exact SE (no RL-split statistics) the checkpoint cannot be cleared: p = nan, it falls; a zero SE
        # (every p_q 0 or 1: nothing can change by chance) makes any drop a fall and no drop none
        if not se == se:
            p = float("nan")
        elif se > 0:
            p = float(stats.norm.cdf((m - start) / se))
        else:
            p = 0.0 if m < start else 1.0
        runs.append({"member": int(member), "checkpoint": int(ckpt), "lr": float(lr), "seed": int(seed),
                     "reward_step0_expected": start,
                     "reward_step0_sampled": float(c.sort_values("step")["reward"].iloc[0]),
                     "reward_last_quarter": m, "reward_last_quarter_se_exact": se,
                     "reward_last_quarter_se_sample": se_sample, "last_quarter_steps": n, "p_fall": p,
                     "eval_gain": float(c["gain"].iloc[0]) if "gain" in c else float("nan")})
    runs = pd.DataFrame(runs)
    runs["falls_in_run"] = False
    for _, g in runs.groupby(["member", "lr", "seed"]):  # one run: its checkpoints are Holm's family
        runs.loc[g.index, "falls_in_run"] = holm(g["p_fall"].to_numpy(float), alpha)
    runs["drop"] = runs["reward_step0_expected"] - runs["reward_last_quarter"]
    table = (runs.groupby(["member", "checkpoint", "lr"], as_index=False)
             .agg(n_runs=("seed", "size"), n_runs_fall=("falls_in_run", "sum"), p_fall_max=("p_fall", "max"),
                  reward_step0_expected=("reward_step0_expected", "first"),
                  reward_last_quarter=("reward_last_quarter", "mean"), drop=("drop", "mean"),
                  reward_last_quarter_se_exact=("reward_last_quarter_se_exact", "first"),
                  eval_gain=("eval_gain", "mean")))
    table["falls"] = table["n_runs_fall"] == table["n_runs"]
    per_lr = (table.groupby(["member", "lr"], as_index=False)
              .agg(n_checkpoints=("checkpoint", "size"), n_runs=("n_runs", "min"), n_fall=("falls", "sum"),
                   worst_drop=("drop", "max"), mean_eval_gain=("eval_gain", "mean"))
              .sort_values(["member", "lr"]).reset_index(drop=True))
    per_lr["stable"] = per_lr["n_fall"] == 0
    per_lr["alpha"] = float(alpha)  # the rule's level, recorded with its outcome (R19's planted positives read it)
    chosen = {}
    for member, g in per_lr.groupby("member"):
        stable = g.loc[g["stable"], "lr"]
        chosen[int(member)] = float(stable.max()) if len(stable) else None
    per_lr["chosen_by_rule"] = [chosen[int(m)] is not None and np.isclose(lr, chosen[int(m)])
                                for m, lr in zip(per_lr["member"], per_lr["lr"])]
    return table, per_lr, chosen
