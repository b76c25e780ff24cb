"""Synthetic inputs for tests: tables in the workflow's layout with a planted answer, no model involved."""
from __future__ import annotations

import numpy as np
import pandas as pd

from vgh.trajectory.predictors import g_pred


def synthetic_inputs(n_members: int = 5, n_checkpoints: int = 10, n_seeds: int = 3, steps: int = 8,
                     lr_sweep=(0.001, 0.003, 0.01), configured_lr: float = 0.003, falls_above: float = 0.003,
                     gain: str = "g_pred", noise: float = 0.02, kappa: float = 30.0, seed: int = 0,
                     headroom_k: int = 8, pace: tuple[float, float] | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Synthetic per-member inputs of `trajectory_summary` (metrics, rl curves, sweep) and a matching `trajectory`
    config section, no model involved.

    Signal S rises and headroom H falls along the checkpoints; the real gain per (member, checkpoint, seed) is
    `gain` ("g_pred": G_pred(S, H, kappa); "signal": S scaled (so S alone ranks it as well as G_pred);
    "reversed": minus G_pred) times (1 + noise * normal). The sweep's curves fall (last-quarter reward 0.2 below
    the step-0 reward) at every lr > `falls_above` and are flat otherwise. With `pace` = (lo, hi), the members learn
    at paces evenly spaced from lo to hi (1 = the common trajectory): member m's curves run pace_m times faster
    along the checkpoints, so the members' real peaks lie at different checkpoints (no constant guess finds them
    all).
    """
    rng = np.random.default_rng(seed)
    ckpts = np.array([0] + [int(10 * 2 ** i) for i in range(n_checkpoints - 1)])
    x0 = np.linspace(0, 1, n_checkpoints)
    paces = np.linspace(*pace, n_members) if pace is not None else np.ones(n_members)
    rl = {"algo": "grpo", "optimizer": "sgd", "lr": configured_lr, "steps": steps, "num_generations": 8,
          "prompts_per_step": 16, "epsilon": 0.2, "num_iterations": 1, "scale_rewards": "group",
          "seeds": list(range(n_seeds))}
    traj = {"pass_k": [1, headroom_k], "headroom_k": headroom_k, "rl": rl, "lr_sweep": list(lr_sweep),
            "lr_rule_alpha": 0.05}
    metrics, curves, sweep = [], [], []
    for m in range(n_members):
        x = np.clip(x0 * paces[m], 0, 1)
        p1 = np.clip(x ** 1.5 * (0.9 + 0.05 * rng.standard_normal()), 0, 0.99)
        S = 10.0 ** (-6 + 5 * np.sqrt(x)) * np.exp(0.1 * rng.standard_normal(n_checkpoints))
        H = np.clip(1 - (1 - p1) ** headroom_k - p1, 1e-4, None)
        true = {"g_pred": g_pred(S, H, kappa), "signal": S / S.max() * 0.1,
                "reversed": -g_pred(S, H, kappa)}[gain]
        for c, step in enumerate(ckpts):
            metrics.append({"member": m, "checkpoint": int(step), "pass_at_1": p1[c],
                            f"pass_at_{headroom_k}": p1[c] + H[c], "headroom": H[c], "headroom_k": headroom_k,
                            "signal": S[c], "signal_grad_j": S[c] * 1.1,
                            "grad_j_dot_update": S[c] * 1.05, "update_coef_mean": 1.2, "mean_pq1mq": p1[c] / 2,
                            "value_grad_norm": 0.1, "n_prompts": 256, "rl_n_prompts": 512, "rl_pass_at_1": p1[c],
                            "rl_var_pq": p1[c] * (1 - p1[c]) / 4, "rl_mean_pq1mq": p1[c] * (1 - p1[c]) * 0.75})
            for s in range(n_seeds):
                g = true[c] * (1 + noise * rng.standard_normal()) + 1e-7 * rng.standard_normal()
                for t in range(steps):
                    curves.append({"member": m, "checkpoint": int(step), "step": t, "seed": s,
                                   "reward": float(np.clip(p1[c] + g * t / steps, 0, 1)), "n_samples": 128,
                                   "eval_pass1_before": p1[c], "eval_pass1_after": p1[c] + g, "gain": g,
                                   "rl_pass1_before": p1[c], "rl_pass1_after": p1[c] + g})
            for lr in lr_sweep:
                drop = 0.2 if lr > falls_above and p1[c] > 0.2 else 0.0
                for t in range(steps):
                    sweep.append({"member": m, "checkpoint": int(step), "lr": float(lr), "step": t, "seed": 0,
                                  "reward": p1[c] - drop * t / steps, "rl_pass1_before": p1[c],
                                  "gain": -drop, "n_samples": 128})
    return pd.DataFrame(metrics), pd.DataFrame(curves), pd.DataFrame(sweep), traj
