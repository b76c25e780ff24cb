"""Critic-free RL from a checkpoint with the exact-match reward (digit-restricted policy at tau = 1).

Vocabulary and metric names follow TRL's GRPO trainer: `num_generations` (G, completions per prompt), `beta`
(KL coefficient; only 0 here, so no reference model), `epsilon` (ratio clipping), `scale_rewards`.

One step: draw `prompts_per_step` distinct RL prompts from the generator, sample G completions for each, score
them, compute advantages (`vgh.lm.updates.advantages`), then take `num_iterations` optimizer steps on the
clipped surrogate (ppo_clip) or one step (grpo, rloo):
- grpo:     A = (r - mean_group r) / (std_group r + 1e-4)   (or no division with scale_rewards = none)
- rloo:     A = r - mean of the other G - 1 rewards of the group
- ppo_clip: GRPO with several iterations (TRL's `num_iterations`): grpo's advantages, `num_iterations` passes
            over the batch, per-token ratio
            rho = pi / pi_old clipped to [1 - epsilon, 1 + epsilon]; the first pass has rho = 1 exactly.
Loss per token: -min(rho A, clip(rho) A), averaged over all B*G*L completion tokens (every completion has the
same length L, so TRL's grpo / bnpo / dapo normalizations coincide up to a constant). At rho = 1 its gradient
is the policy gradient -mean A grad log pi. No gradient clipping: the first-order picture (gain rate ~ S)
assumes plain SGD steps.

The learning-rate rule that fixes `lr` lives in `vgh.trajectory.lr_rule`.
"""
from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from vgh.lm.policy import completion_logprobs, exact_match, sample_completions
from vgh.lm.updates import ALGOS, advantages

from .metrics import TEMPERATURE


@dataclass(frozen=True)
class RLSettings:
    """The `trajectory.rl` config section (its defaults live in the schema only)."""

    algo: str
    optimizer: str
    lr: float
    steps: int
    num_generations: int
    prompts_per_step: int
    beta: float
    epsilon: float
    num_iterations: int
    scale_rewards: str

    @classmethod
    def from_config(cls, section: dict, **overrides) -> "RLSettings":
        """From the `trajectory.rl` config section (keys that are not settings, like `seeds`, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in section.items() if k in names}, **overrides})

    def __post_init__(self):
        if self.algo not in (*ALGOS, "ppo_clip"):
            raise ValueError(f"algo must be one of {(*ALGOS, 'ppo_clip')}, got {self.algo!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.beta != 0:
            raise ValueError("beta != 0 (a KL penalty to a reference model) is not supported")

    @property
    def iterations(self) -> int:
        """Optimizer passes over each batch: num_iterations for ppo_clip, one otherwise."""
        return self.num_iterations if self.algo == "ppo_clip" else 1

    @property
    def advantage(self) -> str:
        """The advantage estimator (`vgh.lm.updates.advantages`): ppo_clip is GRPO with several iterations."""
        return "grpo" if self.algo == "ppo_clip" else self.algo


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor,
                      epsilon: float) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clip loss per token, averaged: -mean min(rho A, clip(rho, 1 - eps, 1 + eps) A), rho = exp(logp - old).

    logp, old_logp [N, L] per-token log-probabilities; adv [N, 1] (broadcast over tokens). Also returns TRL's
    clip fractions: `low` (rho < 1 - eps where A < 0), `high` (rho > 1 + eps where A > 0), `region` (either):
    the tokens whose gradient the clipping removes.
    """
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    loss = -torch.minimum(ratio * adv, clipped * adv).mean()
    with torch.no_grad():
        low = (ratio < 1 - epsilon) & (adv < 0)
        high = (ratio > 1 + epsilon) & (adv > 0)
        stats = {"low": float(low.double().mean()), "high": float(high.double().mean()),
                 "region": float((low | high).double().mean())}
    return loss, stats


def _optimizer(model, s: RLSettings) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr)
    return torch.optim.SGD(params, lr=s.lr)


def rl_train(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor, s: RLSettings,
             generator: torch.Generator, log: logging.Logger | None = None, progress: bool = True,
             desc: str = "rl") -> tuple[pd.DataFrame, torch.nn.Module]:
    """Train `model` in place on the prompts (prompt_ids [N, P], answers [N, L] digit values); return the curve.

    Row `step` = s describes the batch sampled from the model after s updates (so step 0 is the checkpoint
    itself). Columns (TRL names): reward, reward_std (mean within-group std), frac_reward_zero_std, entropy
    (mean per-token entropy of the restricted policy, nats), clip_ratio (TRL's clip_ratio/region_mean, averaged
    over the iterations of the step), clip_ratio_low, clip_ratio_high, loss, grad_norm (first iteration),
    learning_rate, n_samples (B*G). Raises FloatingPointError on a NaN / Inf loss or gradient.
    """
    if s.prompts_per_step > len(prompt_ids):
        raise ValueError(f"prompts_per_step ({s.prompts_per_step}) exceeds the {len(prompt_ids)} RL prompts")
    log = log or logging.getLogger("vgh")
    opt = _optimizer(model, s)
    params = [p for p in model.parameters() if p.requires_grad]
    dtype = next(model.parameters()).dtype
    b, g, L = s.prompts_per_step, s.num_generations, answers.shape[1]
    every = max(1, s.steps // 10)
    rows = []
    model.eval()  # no dropout: sampling and the loss see the same policy
    for step in tqdm(range(s.steps), desc=desc, file=sys.stderr, disable=not progress, mininterval=1.0):
        idx = torch.randperm(len(prompt_ids), generator=generator, device=generator.device)[:b]
        idx = idx.to(prompt_ids.device)
        comps = sample_completions(model, prompt_ids[idx], digit_ids, L, TEMPERATURE, g, generator)  # [B, G, L]
        rewards = exact_match(comps, answers[idx].unsqueeze(1))  # [B, G]
        adv = advantages(rewards, s.advantage, s.scale_rewards).to(dtype).reshape(b * g, 1)
        prompts = prompt_ids[idx].repeat_interleave(g, dim=0)
        comps = comps.reshape(b * g, L)
        old = None
        stats = {"low": [], "high": [], "region": [], "loss": []}
        for iteration in range(s.iterations):
            logp_all = completion_logprobs(model, prompts, comps, digit_ids, TEMPERATURE)  # [BG, L, 10]
            logp = logp_all.gather(-1, comps.unsqueeze(-1)).squeeze(-1)  # [BG, L]
            if old is None:  # first pass: rho = 1 exactly
                old = logp.detach()
                with torch.no_grad():
                    entropy = float(-(logp_all.exp() * logp_all).sum(-1).mean())
            loss, clip = clipped_surrogate(logp, old, adv, s.epsilon)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"RL loss is {loss.item()} at step {step} (iteration {iteration}, algo {s.algo}, "
                                         f"lr {s.lr}); lower trajectory.rl.lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = float(torch.linalg.vector_norm(torch.stack(
                [p.grad.detach().norm() for p in params if p.grad is not None])))
            if not math.isfinite(gnorm):
                raise FloatingPointError(f"RL gradient norm is {gnorm} at step {step} (algo {s.algo}, lr {s.lr})")
            if iteration == 0:
                grad_norm = gnorm
            opt.step()
            for k in ("low", "high", "region"):
                stats[k].append(clip[k])
            stats["loss"].append(float(loss.detach()))
        group_std = rewards.std(-1)
        rows.append({
            "step": step,
            "reward": float(rewards.mean()),
            "reward_std": float(group_std.mean()),
            "frac_reward_zero_std": float((group_std == 0).double().mean()),
            "entropy": entropy,
            "clip_ratio": float(np.mean(stats["region"])),
            "clip_ratio_low": float(np.mean(stats["low"])),
            "clip_ratio_high": float(np.mean(stats["high"])),
            "loss": float(np.mean(stats["loss"])),
            "grad_norm": grad_norm,
            "learning_rate": s.lr,
            "n_samples": b * g,
        })
        if step % every == 0 or step == s.steps - 1:
            r = rows[-1]
            log.info("%s step %d reward %.4f reward_std %.4f zero_std %.2f entropy %.4f clip %.3f grad_norm %.3g",
                     desc, step, r["reward"], r["reward_std"], r["frac_reward_zero_std"], r["entropy"],
                     r["clip_ratio"], r["grad_norm"])
    return pd.DataFrame(rows), model


def run_from_checkpoint(model, rl_split: tuple[torch.Tensor, torch.Tensor],
                        eval_split: tuple[torch.Tensor, torch.Tensor], digit_ids: torch.Tensor, s: RLSettings,
                        seed: int, log: logging.Logger | None = None, progress: bool = True,
                        desc: str = "rl") -> pd.DataFrame:
    """RL from `model` (trained in place) with a generator seeded by `seed`; the curve with exact pass@1
    columns: eval_pass1_before/after, gain (= after - before), rl_pass1_before/after (RL split)."""
    from .metrics import mean_pass1

    device = rl_split[0].device
    before = {"eval": mean_pass1(model, *eval_split, digit_ids), "rl": mean_pass1(model, *rl_split, digit_ids)}
    gen = torch.Generator(device=device).manual_seed(int(seed))
    curve, model = rl_train(model, *rl_split, digit_ids, s, gen, log=log, progress=progress, desc=desc)
    after = {"eval": mean_pass1(model, *eval_split, digit_ids), "rl": mean_pass1(model, *rl_split, digit_ids)}
    curve = curve.assign(seed=int(seed), eval_pass1_before=before["eval"], eval_pass1_after=after["eval"],
                         gain=after["eval"] - before["eval"], rl_pass1_before=before["rl"],
                         rl_pass1_after=after["rl"], algo=s.algo, optimizer=s.optimizer)
    (log or logging.getLogger("vgh")).info("%s: eval pass@1 %.5f -> %.5f (gain %+.5f)", desc, before["eval"],
                                           after["eval"], after["eval"] - before["eval"])
    return curve
