"""Everything Part C measures from one checkpoint step of a group of ensemble members, in one process: the exact
metrics, RL with every seed, and the learning-rate sweep's runs.

All the RL runs of the step (for each member: every seed at the configured lr, then one run at each other lr of the
sweep) advance in lockstep as one stacked model (`vgh.trajectory.rl.run_group`), each from its member's float32 load
and with its own seeded generator, so each run draws what it draws alone and gives its numbers up to float32
rounding (`tests/test_trajectory.py` checks a member in a group against the member alone). The sweep's runs at the
configured learning rate are the RL runs themselves (every seed; R11: a fall there must repeat over them); each
other lr's run has its own generator, seeded by `lr_seed` from the first seed and the lr (R11: no two lrs share
samples).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from vgh.lm.model import load_checkpoint, load_model
from vgh.lm.task import encode_split

from .metrics import checkpoint_metrics, rl_split_stats
from .rl import RLSettings, run_group


def lr_seed(seed: int, lr: float) -> int:
    """The generator seed of the lr sweep's run at `lr` (an lr other than the configured one) from the first RL seed
    (R11): its own stream per lr, fixed by the two numbers (the lr by its float64 bits)."""
    bits = np.array([lr], np.float64).view(np.uint32).tolist()
    return int(np.random.SeedSequence([int(seed), *bits]).generate_state(1)[0])


def measure_trajectory_points(paths: list[str], step: int, rl_frame: pd.DataFrame, eval_frame: pd.DataFrame,
                              trajectory: dict, device: str | torch.device,
                              log: logging.Logger) -> list[dict[str, pd.DataFrame]]:
    """For each checkpoint folder of `paths` (the members' checkpoints at `step`, one architecture and tokenizer),
    the tables `metrics` (one row: `checkpoint_metrics` with the RL settings' S_alg, plus `rl_split_stats` of the RL
    split), `rl` (the curves of every seed of `trajectory.rl.seeds`) and `sweep` (the curves of every lr of
    `trajectory.lr_sweep`: at the configured lr every seed's RL run, at another lr one run seeded by `lr_seed`;
    column `seed` is the run's generator seed). The exact float64 metrics run member by member; the RL runs of all
    the members run as one stack."""
    settings = RLSettings.from_config(trajectory["rl"])
    metrics, splits = [], None
    for path in paths:
        model, tok, digit_ids = load_checkpoint(path, dtype=torch.float64, device=device)
        rl_split, eval_split = encode_split(tok, rl_frame, device), encode_split(tok, eval_frame, device)
        if splits is None:
            splits = rl_split, eval_split, digit_ids
        elif not all(torch.equal(a, b) for a, b in zip((*rl_split, *eval_split, digit_ids),
                                                       (*splits[0], *splits[1], splits[2]))):
            raise ValueError(f"{path} tokenizes the prompts differently from {paths[0]}: one group, one tokenizer")
        # S_alg (rule R6) of the algorithm run, on the eval split; the RL split's exact p_q statistics for the lr rule
        m = checkpoint_metrics(model, *eval_split, digit_ids, trajectory["pass_k"], trajectory["headroom_k"],
                               settings.algo, settings.num_generations, settings.scale_rewards)
        m.update(rl_split_stats(model, *rl_split, digit_ids))
        log.info("step %d, %s: %s", step, path, ", ".join(f"{k} {v:.4g}" for k, v in m.items()))
        metrics.append(m)
    rl_split, eval_split, digit_ids = splits

    seeds = trajectory["rl"]["seeds"]
    log.info("RL settings: %s", settings)
    extra = [float(lr) for lr in trajectory["lr_sweep"] if RLSettings.from_config(trajectory["rl"], lr=lr) != settings]
    per_member = [(int(seed), settings.lr) for seed in seeds] + [(lr_seed(seeds[0], lr), lr) for lr in extra]
    runs = [(i, seed, lr) for i in range(len(paths)) for seed, lr in per_member]
    models = [load_model(path, dtype=torch.float32, device=device) for path in paths]
    curves = run_group(models, rl_split, eval_split, digit_ids, settings, runs, log=log, desc=f"rl step_{step}")
    out = []
    for i, m in enumerate(metrics):
        mine = curves[i * len(per_member):(i + 1) * len(per_member)]
        by_seed = dict(zip(seeds, mine))
        by_lr = dict(zip(extra, mine[len(seeds):]))
        sweep = [(by_lr[float(lr)] if float(lr) in by_lr
                  else pd.concat([by_seed[seed] for seed in seeds], ignore_index=True)).assign(checkpoint=step, lr=lr)
                 for lr in trajectory["lr_sweep"]]
        rl = pd.concat([by_seed[seed].copy() for seed in seeds], ignore_index=True)
        rl.insert(0, "checkpoint", step)
        out.append({"metrics": pd.DataFrame([{"checkpoint": step, **m}]), "rl": rl,
                    "sweep": pd.concat(sweep, ignore_index=True)})
    return out


def measure_trajectory_point(path: str, step: int, rl_frame: pd.DataFrame, eval_frame: pd.DataFrame,
                             trajectory: dict, device: str | torch.device,
                             log: logging.Logger) -> dict[str, pd.DataFrame]:
    """`measure_trajectory_points` of one checkpoint folder alone."""
    return measure_trajectory_points([path], step, rl_frame, eval_frame, trajectory, device, log)[0]
