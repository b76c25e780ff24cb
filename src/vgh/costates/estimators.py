"""Part B's costate estimators against the exact value gradient (SCIENCE.md, Part B), on `enumeration`.

- V(x) = sum_y P_tau(y | x) R(y) and g* = grad_x V (the reference, computed in `measure`).
- lambda_SF: the score-function costate grad_x (1/N) sum_i (R_i - b_i) log P(y_i | x) over N samples with a
  leave-one-out baseline; E[lambda_SF] = g*, so its error is measured at the fixed budget N (`sf_coefficients`).
- lambda_PD: the straight-through pathwise costate: forward on the hard sampled tokens, backward through
  their soft versions (next input e(y_t) + (e_bar_t - sg(e_bar_t)), reward on onehot(y) + (p - sg(p))).
  E[lambda_PD] is exact: one backward over the prefix tree, weighted by the (detached) probabilities
  (`expected_pd_costate`).

The per-sample / stand-alone forms the tests check these expectations against live in tests/oracles.py.
"""
from __future__ import annotations

import torch

from vgh.lm.policy import REWARDS, all_completions
from vgh.lm.updates import rloo_advantages

from .enumeration import gather_tokens, prompt_embeddings, state_leaf, tree_logprobs, with_state


def soft_reward(hits: torch.Tensor, kind: str) -> torch.Tensor:
    """R on (soft) per-position indicators hits[..., L] = Y_t[a_t]; both rewards are multilinear in Y.

    partial: (1/L) sum_t Y_t[a_t];  exact: prod_t Y_t[a_t].
    """
    if kind == "partial":
        return hits.mean(-1)
    if kind == "exact":
        return hits.prod(-1)
    raise ValueError(f"reward must be one of {sorted(REWARDS)}, got {kind!r}")


def expected_pd_costate(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                        tau: float, reward: str = "partial") -> torch.Tensor:
    """E_y[lambda_PD(y)] [Q, E] exactly: grad_x sum_y sg(P(y)) R_ST(y), one backward over the prefix tree."""
    x = state_leaf(model, prompt_ids)
    logp = tree_logprobs(model, with_state(prompt_embeddings(model, prompt_ids), x), digit_ids,
                         answers.shape[1], tau, straight_through=True)
    probs = logp.exp()
    comps = all_completions(answers.shape[1], device=prompt_ids.device)
    weight = gather_tokens(logp.detach(), comps).sum(-1).exp()  # [Q, K] = P(y), no gradient
    r_st = _st_reward(probs, comps, answers, reward)
    (g,) = torch.autograd.grad((weight * r_st).sum(), x)
    return g


def _st_reward(probs: torch.Tensor, comps: torch.Tensor, answers: torch.Tensor, kind: str) -> torch.Tensor:
    """R evaluated on onehot(y) + (p - sg(p)): [Q, K]. probs [Q, K, L, 10], comps [K, L], answers [Q, L]."""
    q = probs.shape[0]
    p_ans = probs.gather(-1, answers[:, None, :, None].expand(q, probs.shape[1], -1, 1)).squeeze(-1)
    hits = (comps[None] == answers[:, None]).to(probs.dtype) + p_ans - p_ans.detach()
    return soft_reward(hits, kind)


def sf_coefficients(probs_y: torch.Tensor, rewards: torch.Tensor, n_samples: int,
                    generator: torch.Generator) -> torch.Tensor:
    """[Q, K] coefficients c with lambda_SF = grad_x sum_y c_y log P(y): c_y = (1/N) sum_i (R_i - b_i)[y_i = y].

    N completions per prompt are drawn from the exact P(y) [Q, K] (the same law as sampling digit by
    digit); b_i is the leave-one-out mean of the other N - 1 rewards.
    """
    idx = torch.multinomial(probs_y, n_samples, replacement=True, generator=generator)  # [Q, N]
    adv = rloo_advantages(rewards.gather(1, idx))
    return torch.zeros_like(probs_y).scatter_add_(1, idx, adv / n_samples)
