"""Everything Part C measures from one checkpoint step of a group of ensemble members, in one process: the exact
metrics, RL with every seed, and the learning-rate sweep's runs.

All the RL runs of the step (for each member: every seed at the configured lr, then one run at each other lr of the
sweep) advance in lockstep as one stacked model (`vgh.trajectory.rl.run_group`), each from its member's float32 load
and with its own seeded generator, so each run draws what it draws alone and gives its numbers up to float32
rounding (`tests/test_trajectory.py` checks a member in a group against the member alone). Each member runs on its
own RL and eval prompts, and each of its runs on its own stream (R20: `run_seed`, `lr_seed`). The sweep's runs at the
configured learning rate are the RL runs themselves (every seed; R11: a fall there must repeat over them); each
other lr's run has its own generator, seeded by `lr_seed` from the member, the first seed and the lr (R11: no two
lrs share samples).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from vgh.lm.model import load_checkpoint, load_model
from vgh.lm.task import encode_split
from vgh.streams import seed_of

from .metrics import checkpoint_metrics, rl_split_stats
from .rl import RLSettings, run_group


def run_seed(member: int, seed: int) -> int:
    """The generator seed of member `member`'s RL run with RL seed `seed` at the configured lr (R20: every member's
    runs on their own streams)."""
    return seed_of(int(member), "rl", int(seed))


def lr_seed(member: int, seed: int, lr: float) -> int:
    """The generator seed of member `member`'s lr-sweep run at `lr` (an lr other than the configured one) from the
    first RL seed (R11, R20): its own stream per member and lr, fixed by the numbers (the lr by its float64 bits)."""
    bits = np.array([lr], np.float64).view(np.uint32).tolist()
    return seed_of(int(member), "lr_sweep", int(seed), *bits)


def measure_trajectory_points(paths: list[str], members: list[int], step: int, rl_frames: list[pd.DataFrame],
                              eval_frames: list[pd.DataFrame], trajectory: dict, device: str | torch.device,
                              log: logging.Logger) -> list[dict[str, pd.DataFrame]]:
    """For each checkpoint folder of `paths` (the checkpoints at `step` of `members`, one architecture and tokenizer,
    member i with its own RL and eval prompts rl_frames[i], eval_frames[i], R20), the tables `metrics` (one row:
    `checkpoint_metrics` with the RL settings' S_alg, plus `rl_split_stats` of the RL split), `rl` (the curves of
    every seed of `trajectory.rl.seeds`) and `sweep` (the curves of every lr of `trajectory.lr_sweep`: at the
    configured lr every seed's RL run, at another lr one run seeded by `lr_seed`; column `seed` is the RL seed at
    the configured lr and the run's generator seed at another). The exact float64 metrics run member by member; the
    RL runs of all the members run as one stack."""
    settings = RLSettings.from_config(trajectory["rl"])
    metrics, splits, digit_ids = [], [], None
    for path, rl_frame, eval_frame in zip(paths, rl_frames, eval_frames, strict=True):
        model, tok, digits = load_checkpoint(path, dtype=torch.float64, device=device)
        if digit_ids is None:
            digit_ids = digits
        elif not torch.equal(digits, digit_ids):
            raise ValueError(f"{path} tokenizes the digits differently from {paths[0]}: one group, one tokenizer")
        rl_split, eval_split = encode_split(tok, rl_frame, device), encode_split(tok, eval_frame, device)
        splits.append((rl_split, eval_split))
        # S_alg (rule R6) of the algorithm run, on the eval split; the RL split's exact p_q statistics for the lr rule
        m = checkpoint_metrics(model, *eval_split, digit_ids, trajectory["pass_k"], trajectory["headroom_k"],
                               settings.algo, settings.num_generations, settings.scale_rewards)
        m.update(rl_split_stats(model, *rl_split, digit_ids))
        log.info("step %d, %s: %s", step, path, ", ".join(f"{k} {v:.4g}" for k, v in m.items()))
        metrics.append(m)

    seeds = trajectory["rl"]["seeds"]
    log.info("RL settings: %s", settings)
    extra = [float(lr) for lr in trajectory["lr_sweep"] if RLSettings.from_config(trajectory["rl"], lr=lr) != settings]
    runs, labels = [], []
    for i, member in enumerate(members):
        runs += [(i, run_seed(member, seed), settings.lr) for seed in seeds]
        runs += [(i, lr_seed(member, seeds[0], lr), lr) for lr in extra]
        labels += [int(seed) for seed in seeds] + [lr_seed(member, seeds[0], lr) for lr in extra]
    models = [load_model(path, dtype=torch.float32, device=device) for path in paths]
    curves = run_group(models, [rl for rl, _ in splits], [ev for _, ev in splits], digit_ids, settings, runs, log=log,
                       desc=f"rl step_{step}")
    curves = [c.assign(seed=label) for c, label in zip(curves, labels)]
    per_member = len(seeds) + len(extra)
    out = []
    for i, m in enumerate(metrics):
        mine = curves[i * per_member:(i + 1) * per_member]
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


def measure_trajectory_point(path: str, member: int, step: int, rl_frame: pd.DataFrame, eval_frame: pd.DataFrame,
                             trajectory: dict, device: str | torch.device,
                             log: logging.Logger) -> dict[str, pd.DataFrame]:
    """`measure_trajectory_points` of one checkpoint folder alone."""
    return measure_trajectory_points([path], [member], step, [rl_frame], [eval_frame], trajectory, device, log)[0]
