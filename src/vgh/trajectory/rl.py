"""Critic-free RL from a checkpoint with the exact-match reward (digit-restricted policy at tau = 1).

Vocabulary and metric names follow TRL's GRPO trainer: `num_generations` (G, completions per prompt),
`num_iterations` (optimizer steps per generated batch), `epsilon` (ratio clipping), `scale_rewards`. There is no KL
term (TRL's default beta = 0), so no reference model.

One step: draw `prompts_per_step` distinct RL prompts from the generator, sample G completions for each, score
them, compute advantages (`vgh.lm.updates.advantages`), then take `num_iterations` optimizer steps on the clipped
surrogate, as TRL's GRPO does, with the per-token ratio rho = pi / pi_old clipped to [1 - epsilon, 1 + epsilon]
(pi_old: the policy that sampled the batch, so the first step has rho = 1 exactly and num_iterations = 1 is the
plain policy gradient, where clipping does nothing):
- grpo: A = (r - mean_group r) / (std_group r + 1e-4)   (or no division with scale_rewards = none)
- rloo: A = r - mean of the other G - 1 rewards of the group
Loss per token: -min(rho A, clip(rho) A), averaged over all B*G*L completion tokens (every completion has the
same length L, so TRL's grpo / bnpo / dapo normalizations coincide up to a constant). At rho = 1 its gradient
is the policy gradient -mean A grad log pi. No gradient clipping: the first-order picture (gain rate ~ S)
assumes plain SGD steps.

The runs of one checkpoint step (RL seeds and the lr sweep's learning rates of every member of a group, each run from
its member's checkpoint) advance in lockstep as one stack (`vgh.lm.stack`, run by `vgh.lm.stacked`): one batched
forward / backward per step for all of them, each run with its own starting point, parameters, learning rate,
optimizer state and generator. A run draws the same samples and gives the same numbers whichever
other runs share its stack, up to the last float32 bit of batched matmuls of another size (`tests/test_stacked.py`
checks every run of a stack against the run alone).

The learning-rate rule that fixes `lr` lives in `vgh.trajectory.lr_rule`.
"""
from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, fields

import pandas as pd
import torch
from tqdm import tqdm

from vgh.lm import stacked
from vgh.lm.policy import exact_match
from vgh.lm.stack import Stack, StackedOptimizer
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
    epsilon: float
    num_iterations: int
    scale_rewards: str

    @classmethod
    def from_config(cls, section: dict, **overrides) -> "RLSettings":
        """From the `trajectory.rl` config section (keys that are not settings, like `seeds`, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in section.items() if k in names}, **overrides})

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.num_iterations < 1:
            raise ValueError(f"num_iterations must be >= 1, got {self.num_iterations}")


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor,
                      epsilon: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO-clip loss per token of every run: -mean min(rho A, clip(rho, 1 - eps, 1 + eps) A), rho = exp(logp - old),
    the mean over every axis but the first (the run axis).

    logp, old_logp [K, N, L] per-token log-probabilities; adv [K, N, 1] (broadcast over tokens). Returns the loss
    [K] and TRL's clip fractions [K]: `low` (rho < 1 - eps where A < 0), `high` (rho > 1 + eps where A > 0),
    `region` (either): the tokens whose gradient the clipping removes.
    """
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    loss = -torch.minimum(ratio * adv, clipped * adv).flatten(1).mean(1)
    with torch.no_grad():
        low = ((ratio < 1 - epsilon) & (adv < 0)).flatten(1)
        high = ((ratio > 1 + epsilon) & (adv > 0)).flatten(1)
        stats = {"low": low.double().mean(1), "high": high.double().mean(1), "region": (low | high).double().mean(1)}
    return loss, stats


STAT_COLUMNS = ("reward", "reward_std", "frac_reward_zero_std", "entropy", "clip_ratio", "clip_ratio_low",
                "clip_ratio_high", "loss", "grad_norm")


def rl_train_runs(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor, s: RLSettings,
                  lrs: list[float], generators: list[torch.Generator], log: logging.Logger | None = None,
                  progress: bool = True, desc: str = "rl", start: Stack | None = None,
                  names: list[str] | None = None) -> tuple[list[pd.DataFrame], Stack]:
    """K = len(lrs) RL runs on the prompts (prompt_ids [N, P], answers [N, L] digit values; or each run on its own,
    prompt_ids [K, N, P], answers [K, N, L]), run k with learning rate lrs[k] and generator generators[k], every
    other setting from `s`, from the rows of `start` (a `vgh.lm.stack.Stack` of K rows; left unchanged) or by
    default all from `model`'s. `model` is the template (architecture) and is left unchanged. `names` label the runs
    in the log (default: their lr). Returns each run's curve and the trained stack.

    Row `step` = s describes the batch sampled from the run after s updates (so step 0 is the checkpoint itself).
    Columns (TRL names): reward, reward_std (mean within-group std), frac_reward_zero_std, entropy (mean per-token
    entropy of the restricted policy, nats), clip_ratio (TRL's clip_ratio/region_mean, averaged over the
    iterations of the step), clip_ratio_low, clip_ratio_high, loss, grad_norm (first iteration), learning_rate,
    n_samples (B*G). Raises FloatingPointError, naming the run, on a NaN / Inf loss or gradient (checked once a
    step, when the step's numbers leave the device).
    """
    if len(lrs) != len(generators) or not lrs:
        raise ValueError(f"one generator per run: {len(lrs)} learning rates, {len(generators)} generators")
    k, b, g, L = len(lrs), s.prompts_per_step, s.num_generations, answers.shape[-1]
    if prompt_ids.dim() == 2:  # the same prompts for every run
        prompt_ids, answers = prompt_ids.expand(k, -1, -1), answers.expand(k, -1, -1)
    if s.prompts_per_step > prompt_ids.shape[1]:
        raise ValueError(f"prompts_per_step ({s.prompts_per_step}) exceeds the {prompt_ids.shape[1]} RL prompts")
    log = log or logging.getLogger("vgh")
    rows = torch.arange(k, device=prompt_ids.device).unsqueeze(1)
    if start is None:
        stack = Stack.of_model(model, k)
    else:
        if start.k != k:
            raise ValueError(f"{start.k} starting points for {k} runs")
        stack = start.rows(range(k))
    labels = names or [f"lr {lr:g}" for lr in lrs]
    dtype = stack.flat.dtype
    opt = StackedOptimizer(stack.flat, s.optimizer)  # torch's Adam defaults: betas 0.9 / 0.999, eps 1e-8
    lr_rows = torch.tensor(lrs, dtype=torch.float64).to(device=stack.flat.device, dtype=dtype).view(k, 1)
    every = max(1, s.steps // 10)
    stats_per_step = []
    for step in tqdm(range(s.steps), desc=desc, file=sys.stderr, disable=not progress, mininterval=1.0):
        idx = torch.stack([torch.randperm(prompt_ids.shape[1], generator=gen, device=gen.device)[:b]
                           for gen in generators]).to(prompt_ids.device)  # [K, B]
        prompts = prompt_ids[rows, idx]  # [K, B, P]: each prompt's prefix runs once for its G completions
        comps = stacked.sample_completions(stack.params(), model, prompts, digit_ids, L, TEMPERATURE, g,
                                           generators)  # [K, B, G, L]
        rewards = exact_match(comps, answers[rows, idx].unsqueeze(2))  # [K, B, G]
        adv = advantages(rewards, s.algo, s.scale_rewards).to(dtype).reshape(k, b * g, 1)
        flat = comps.reshape(k, b * g, L)
        old = None
        per_iteration = []  # [5, K] each: clip low, high, region, loss, grad norm
        for iteration in range(s.num_iterations):  # TRL's num_iterations: steps on this batch
            logp_all = stacked.group_logprobs(stack.params(), model, prompts, comps, digit_ids,
                                              TEMPERATURE).reshape(k, b * g, L, -1)  # [K, BG, L, 10]
            logp = logp_all.gather(-1, flat.unsqueeze(-1)).squeeze(-1)  # [K, BG, L]
            if old is None:  # first pass: rho = 1 exactly
                old = logp.detach()
                with torch.no_grad():
                    entropy = -(logp_all.exp() * logp_all).sum(-1).flatten(1).mean(1)
            loss, clip = clipped_surrogate(logp, old, adv, s.epsilon)
            (grad,) = torch.autograd.grad(loss.sum(), stack.flat)  # [K, P]: every run's own gradient
            gnorm = _grad_norms(grad)
            opt.step(grad, lr_rows)
            per_iteration.append(torch.stack([clip["low"], clip["high"], clip["region"], loss.detach().double(),
                                              gnorm]))
        group_std = rewards.std(-1)  # [K, B]
        # everything the step reports leaves the device together: the step's one wait for it
        host = torch.cat([torch.stack([rewards.mean((1, 2)), group_std.mean(1), (group_std == 0).double().mean(1),
                                       entropy.double()]), *per_iteration]).cpu()
        iterations = host[4:].view(s.num_iterations, 5, k)
        _check_finite(iterations, step, s, lrs)
        low, high, region, mean_loss = iterations[:, :4].mean(0)
        stats_per_step.append(torch.stack([*host[:4], region, low, high, mean_loss, iterations[0, 4]]))
        if step % every == 0 or step == s.steps - 1:
            for run, row in enumerate(stats_per_step[-1].T.tolist()):
                r = dict(zip(STAT_COLUMNS, row))
                log.info("%s %s step %d reward %.4f reward_std %.4f zero_std %.2f entropy %.4f clip %.3f "
                         "grad_norm %.3g", desc, labels[run], step, r["reward"], r["reward_std"],
                         r["frac_reward_zero_std"], r["entropy"], r["clip_ratio"], r["grad_norm"])
    table = torch.stack(stats_per_step).numpy()  # [steps, stats, K]
    curves = [pd.DataFrame(table[:, :, run], columns=list(STAT_COLUMNS))
              .assign(learning_rate=float(lrs[run]), n_samples=b * g)
              .rename_axis("step").reset_index() for run in range(k)]
    return curves, stack


def _grad_norms(grad: torch.Tensor) -> torch.Tensor:
    """[K] float64 norm of every run's gradient (grad: [K, P]), each run's sum of squares reduced on its own (a
    reduction over the rows of a [K, n] tensor may round by K, and a run's numbers must not depend on the other runs
    of its stack)."""
    return torch.stack([row.pow(2).sum() for row in grad.double().unbind(0)]).sqrt()


def _check_finite(iterations: torch.Tensor, step: int, s: RLSettings, lrs: list[float]):
    """Raise FloatingPointError on the first non-finite loss or gradient norm of a step (iterations [I, 5, K] on the
    host: clip low, high, region, loss, grad norm per iteration and run), naming the iteration and the run."""
    for iteration, rows in enumerate(iterations):
        for what, values in (("RL loss", rows[3]), ("RL gradient norm", rows[4])):
            bad = [run for run, v in enumerate(values.tolist()) if not math.isfinite(v)]
            if bad:
                run = bad[0]
                raise FloatingPointError(f"{what} is {values[run].item()} at step {step} (iteration {iteration}, "
                                         f"algo {s.algo}, lr {lrs[run]}, run {run} of {len(lrs)}); lower "
                                         "trajectory.rl.lr")


def rl_train(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor, s: RLSettings,
             generator: torch.Generator, log: logging.Logger | None = None, progress: bool = True,
             desc: str = "rl") -> tuple[pd.DataFrame, torch.nn.Module]:
    """One RL run (`rl_train_runs` with K = 1 at s.lr): its curve and `model` with the trained weights."""
    (curve,), stack = rl_train_runs(model, prompt_ids, answers, digit_ids, s, [s.lr], [generator], log=log,
                                    progress=progress, desc=desc)
    return curve, stack.unstack_into(model, 0)


def run_group(models, rl_split, eval_split, digit_ids: torch.Tensor, s: RLSettings, runs: list[tuple],
              log: logging.Logger | None = None, progress: bool = True, desc: str = "rl") -> list[pd.DataFrame]:
    """RL runs as one stack, each from its own starting model: `models` is one model or a list of models of one
    architecture (left unchanged), and each run of `runs` is (seed, lr) from models[0] or (start, seed, lr) from
    models[start], with a generator seeded by its seed. `rl_split` and `eval_split` are (prompt_ids, answers), the
    same for every model, or a list of them, one per model (each member's own prompts, R20): a run trains on its
    start's RL split and is measured on its start's splits. Every run's curve with exact pass@1 columns from its own
    start: eval_pass1_before/after, gain (= after - before), rl_pass1_before/after (RL split)."""
    log = log or logging.getLogger("vgh")
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    runs = [(0, *run) if len(run) == 2 else tuple(run) for run in runs]

    def per_model(split):  # (prompt_ids [M, N, P], answers [M, N, L]), one row per model
        splits = split if isinstance(split, list) else [split] * len(models)
        if len(splits) != len(models):
            raise ValueError(f"{len(splits)} prompt splits for {len(models)} models")
        return torch.stack([p for p, _ in splits]), torch.stack([a for _, a in splits])

    rl_by_model, eval_by_model = per_model(rl_split), per_model(eval_split)
    device = rl_by_model[0].device
    gens = [torch.Generator(device=device).manual_seed(int(seed)) for _, seed, _ in runs]
    starts = Stack.of_models(models)  # one row per model: pass@1 before RL
    before = {split: stacked.exact_pass1(starts.params(), models[0], *data, digit_ids).mean(1).tolist()
              for split, data in (("eval", eval_by_model), ("rl", rl_by_model))}
    index = torch.tensor([start for start, _, _ in runs], device=device)
    rl_runs, eval_runs = [tuple(t[index] for t in data) for data in (rl_by_model, eval_by_model)]
    names = [(f"model {start} " if len(models) > 1 else "") + f"seed {seed} lr {lr:g}" for start, seed, lr in runs]
    curves, params = rl_train_runs(models[0], *rl_runs, digit_ids, s, [lr for _, _, lr in runs], gens, log=log,
                                   progress=progress, desc=desc, start=starts.rows(index), names=names)
    after = {split: stacked.exact_pass1(params.params(), models[0], *data, digit_ids).mean(1).tolist()
             for split, data in (("eval", eval_runs), ("rl", rl_runs))}
    out = []
    for run, ((start, seed, lr), curve) in enumerate(zip(runs, curves)):
        gain = after["eval"][run] - before["eval"][start]
        out.append(curve.assign(seed=int(seed), eval_pass1_before=before["eval"][start],
                                eval_pass1_after=after["eval"][run], gain=gain, rl_pass1_before=before["rl"][start],
                                rl_pass1_after=after["rl"][run], algo=s.algo, optimizer=s.optimizer))
        log.info("%s %s: eval pass@1 %.5f -> %.5f (gain %+.5f)", desc, names[run], before["eval"][start],
                 after["eval"][run], gain)
    return out
