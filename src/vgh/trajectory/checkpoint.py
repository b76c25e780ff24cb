"""Everything Part C measures from one checkpoint, in one process: the exact metrics, RL with every seed, and
the learning-rate sweep's runs.

All the RL runs of a checkpoint (every seed at the configured lr, then the first seed at each other lr of the
sweep) start from one float32 load and advance in lockstep as one stacked model (`vgh.trajectory.rl.run_group`),
each with its own seeded generator, so each run draws what it draws alone and gives its numbers up to float32
rounding. The sweep's run at the configured learning rate is the first seed's RL run itself (same settings, same
seed), so it is not run twice.
"""
from __future__ import annotations

import logging

import pandas as pd
import torch

from vgh.lm.model import load_checkpoint, load_model
from vgh.lm.task import encode_split

from .metrics import checkpoint_metrics, rl_split_stats
from .rl import RLSettings, run_group


def measure_trajectory_point(path: str, step: int, rl_frame: pd.DataFrame, eval_frame: pd.DataFrame,
                             trajectory: dict, device: str | torch.device,
                             log: logging.Logger) -> dict[str, pd.DataFrame]:
    """Tables `metrics` (one row: `checkpoint_metrics` with the RL settings' S_alg, plus `rl_split_stats` of the RL
    split), `rl` (the curves of every seed of `trajectory.rl.seeds`) and `sweep` (the
    curves of every lr of `trajectory.lr_sweep`, first seed) of the checkpoint folder `path`."""
    model, tok, digit_ids = load_checkpoint(path, dtype=torch.float64, device=device)
    rl_split, eval_split = encode_split(tok, rl_frame, device), encode_split(tok, eval_frame, device)
    settings = RLSettings.from_config(trajectory["rl"])
    # S_alg (rule R6) of the algorithm run, on the eval split; the RL split's exact p_q statistics for the lr rule
    metrics = checkpoint_metrics(model, *eval_split, digit_ids, trajectory["pass_k"], trajectory["headroom_k"],
                                 settings.algo, settings.num_generations, settings.scale_rewards)
    metrics.update(rl_split_stats(model, *rl_split, digit_ids))
    log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    seeds = trajectory["rl"]["seeds"]
    log.info("RL settings: %s", settings)
    extra = [float(lr) for lr in trajectory["lr_sweep"] if RLSettings.from_config(trajectory["rl"], lr=lr) != settings]
    runs = [(int(seed), settings.lr) for seed in seeds] + [(int(seeds[0]), lr) for lr in extra]
    curves = run_group(load_model(path, dtype=torch.float32, device=device), rl_split, eval_split, digit_ids,
                       settings, runs, log=log, desc=f"rl step_{step}")
    by_seed = dict(zip(seeds, curves))
    by_lr = dict(zip(extra, curves[len(seeds):]))
    sweep = [(by_lr[float(lr)] if float(lr) in by_lr else by_seed[seeds[0]]).assign(checkpoint=step, lr=lr)
             for lr in trajectory["lr_sweep"]]
    rl = pd.concat([by_seed[seed].copy() for seed in seeds], ignore_index=True)
    rl.insert(0, "checkpoint", step)
    return {"metrics": pd.DataFrame([{"checkpoint": step, **metrics}]), "rl": rl,
            "sweep": pd.concat(sweep, ignore_index=True)}
