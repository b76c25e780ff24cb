"""Everything Part C measures from one checkpoint, in one process: the exact metrics, RL with every seed, and
the learning-rate sweep's runs.

One process per checkpoint pays the torch / transformers import (and, on a GPU, the CUDA start-up) once
instead of once per run. Every run starts from a fresh load of the checkpoint with its own seeded generator,
so each number is the one a separate process would give. The sweep's run at the configured learning rate is
the first seed's RL run itself (same settings, same seed), so it is not run twice.
"""
from __future__ import annotations

import logging

import pandas as pd
import torch

from vgh.lm.model import load_checkpoint, load_model
from vgh.lm.task import encode_split

from .metrics import checkpoint_metrics, rl_split_stats
from .rl import RLSettings, run_from_checkpoint


def measure_checkpoint(path: str, step: int, rl_frame: pd.DataFrame, eval_frame: pd.DataFrame, trajectory: dict,
                       device: str | torch.device, log: logging.Logger) -> dict[str, pd.DataFrame]:
    """Tables `metrics` (one row: `checkpoint_metrics` with the RL settings' S_alg, plus `rl_split_stats` of the RL
    split), `rl` (the curves of every seed of `trajectory.rl.seeds`) and `sweep` (the
    curves of every lr of `trajectory.lr_sweep`, first seed) of the checkpoint folder `path`."""
    model, tok, digit_ids = load_checkpoint(path, dtype=torch.float64, device=device)
    rl_split, eval_split = encode_split(tok, rl_frame, device), encode_split(tok, eval_frame, device)
    settings = RLSettings.from_config(trajectory["rl"])
    # S_alg (rule R6) of the algorithm run, on the eval split; the RL split's exact p_q statistics for the lr rule
    metrics = checkpoint_metrics(model, *eval_split, digit_ids, trajectory["pass_k"], trajectory["headroom_k"],
                                 settings.advantage, settings.num_generations, settings.scale_rewards)
    metrics.update(rl_split_stats(model, *rl_split, digit_ids))
    log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    def rl_run(settings: RLSettings, seed: int, desc: str) -> pd.DataFrame:
        """RL from a fresh float32 load of the checkpoint (training changes the model in place)."""
        return run_from_checkpoint(load_model(path, dtype=torch.float32, device=device), rl_split, eval_split,
                                   digit_ids, settings, seed, log=log, desc=desc)

    seeds = trajectory["rl"]["seeds"]
    log.info("RL settings: %s", settings)
    curves = {seed: rl_run(settings, seed, f"rl step_{step} seed_{seed}") for seed in seeds}
    sweep = []
    for lr in trajectory["lr_sweep"]:
        at_lr = RLSettings.from_config(trajectory["rl"], lr=lr)
        curve = curves[seeds[0]] if at_lr == settings else rl_run(at_lr, seeds[0], f"lr {lr:g} step_{step}")
        sweep.append(curve.assign(checkpoint=step, lr=lr))
    rl = pd.concat([curves[seed].copy() for seed in seeds], ignore_index=True)
    rl.insert(0, "checkpoint", step)
    return {"metrics": pd.DataFrame([{"checkpoint": step, **metrics}]), "rl": rl,
            "sweep": pd.concat(sweep, ignore_index=True)}
