"""Test oracles: stand-alone, per-sample forms of what the library computes in one batched pass, which the tests
check the library against. No workflow rule runs these.

- Part A: `costates_along`, the costates lambda_t = dR/dx_t along differentiable LQ rollouts.
- Part B: `value_and_gradient` (V and g* = grad_x V by enumeration), `pd_costates` (lambda_PD(y) per given
  completion, a sequential straight-through forward), `score_costates` (grad_x log P(y | x) per completion) and
  `sf_costates` (independent lambda_SF estimates), against `vgh.costates.estimators`' exact expectations.
- Part C: `run_from_checkpoint`, one RL run alone (`vgh.trajectory.rl.run_group` with one run), against the runs
  that share a stacked model in `vgh.trajectory.checkpoint.measure_trajectory_points`.
"""
from __future__ import annotations

import logging

import pandas as pd
import torch

from vgh.costates.enumeration import enumerate_policy, prompt_embeddings, rewards_all, state_leaf, with_state
from vgh.costates.estimators import sf_coefficients, soft_reward
from vgh.lm.policy import answer_logits
from vgh.trajectory.rl import RLSettings, run_group


# ------------------------------------------------------------------------------------- Part A
def costates_along(returns: torch.Tensor, states: list[torch.Tensor]) -> torch.Tensor:
    """lambda_t = dR/dx_t for every t along batched rollouts: (T+1, N, n) (states from a differentiable rollout)."""
    grads = torch.autograd.grad(returns.sum(), states, allow_unused=True)
    return torch.stack([torch.zeros_like(s) if g is None else g for s, g in zip(states, grads)])


# ------------------------------------------------------------------------------------- Part B
def value_and_gradient(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                       tau: float, reward: str = "partial") -> tuple[torch.Tensor, torch.Tensor]:
    """V [Q] and g* = grad_x V [Q, E] exactly (enumeration, autograd)."""
    x = state_leaf(model, prompt_ids)
    enum = enumerate_policy(model, with_state(prompt_embeddings(model, prompt_ids), x), digit_ids,
                            answers.shape[1], tau)
    v = (enum.logP.exp() * rewards_all(enum.completions, answers, reward)).sum(-1)
    (g,) = torch.autograd.grad(v.sum(), x)
    return v.detach(), g


def pd_costates(model, prompt_ids: torch.Tensor, completions: torch.Tensor, answers: torch.Tensor,
                digit_ids: torch.Tensor, tau: float, reward: str = "partial") -> torch.Tensor:
    """lambda_PD(y) [B, E] for given completions [B, L] of prompts [B, P] (row-aligned), each row with its
    own copy of x, by a sequential straight-through forward (no enumeration). Used to check the exact
    expectation against a sample mean."""
    L = completions.shape[1]
    x = state_leaf(model, prompt_ids)
    emb_digits = model.get_input_embeddings()(digit_ids)
    rows = with_state(prompt_embeddings(model, prompt_ids), x)
    ps = []
    for t in range(L):
        logits = model(inputs_embeds=rows).logits[:, -1][:, digit_ids]
        p = torch.softmax(logits / tau, dim=-1)
        ps.append(p)
        if t < L - 1:
            ebar = p @ emb_digits
            nxt = emb_digits[completions[:, t]] + ebar - ebar.detach()
            rows = torch.cat([rows, nxt[:, None, :]], dim=1)
    probs = torch.stack(ps, dim=1)  # [B, L, 10]
    p_ans = probs.gather(-1, answers[:, :, None]).squeeze(-1)
    hits = (completions == answers).to(probs.dtype) + p_ans - p_ans.detach()
    (g,) = torch.autograd.grad(soft_reward(hits, reward).sum(), x)
    return g


def score_costates(model, prompt_ids: torch.Tensor, completions: torch.Tensor, digit_ids: torch.Tensor,
                   tau: float) -> torch.Tensor:
    """grad_x log P(y | x) [B, E] for completions [B, L] of prompts [B, P] (row-aligned, own x per row)."""
    x = state_leaf(model, prompt_ids)
    embeds = with_state(prompt_embeddings(model, prompt_ids), x)
    wte = model.get_input_embeddings()
    embeds = torch.cat([embeds, wte(digit_ids[completions[:, :-1]])], dim=1)
    logp = torch.log_softmax(answer_logits(model, embeds, prompt_ids.shape[1], completions.shape[1],
                                           digit_ids) / tau, dim=-1)
    lp = logp.gather(-1, completions[..., None]).squeeze(-1).sum(-1)
    (g,) = torch.autograd.grad(lp.sum(), x)
    return g


def sf_costates(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor, tau: float,
                reward: str, n_samples: int, generator: torch.Generator, n_repeats: int = 1) -> torch.Tensor:
    """[R, Q, E] independent lambda_SF estimates, each from N samples per prompt with a leave-one-out baseline."""
    x = state_leaf(model, prompt_ids)
    enum = enumerate_policy(model, with_state(prompt_embeddings(model, prompt_ids), x), digit_ids,
                            answers.shape[1], tau)
    r = rewards_all(enum.completions, answers, reward)
    py = enum.logP.detach().exp()
    out = []
    for i in range(n_repeats):
        coef = sf_coefficients(py, r, n_samples, generator)
        out.append(torch.autograd.grad((coef * enum.logP).sum(), x, retain_graph=i < n_repeats - 1)[0])
    return torch.stack(out)


# ------------------------------------------------------------------------------------- Part C
def run_from_checkpoint(model, rl_split: tuple[torch.Tensor, torch.Tensor],
                        eval_split: tuple[torch.Tensor, torch.Tensor], digit_ids: torch.Tensor, s: RLSettings,
                        seed: int, log: logging.Logger | None = None, progress: bool = True,
                        desc: str = "rl") -> pd.DataFrame:
    """One run of `run_group` (seed `seed`, lr s.lr)."""
    return run_group(model, rl_split, eval_split, digit_ids, s, [(seed, s.lr)], log=log, progress=progress,
                     desc=desc)[0]
