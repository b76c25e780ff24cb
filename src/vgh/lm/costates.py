"""Part B's costate estimators against the exact value gradient (SCIENCE.md, Part B), on `enumeration`.

- V(x) = sum_y P_tau(y | x) R(y) and g* = grad_x V (the reference).
- lambda_SF: the score-function costate grad_x (1/N) sum_i (R_i - b_i) log P(y_i | x) over N samples with a
  leave-one-out baseline; E[lambda_SF] = g*, so its error is measured at the fixed budget N.
- lambda_PD: the straight-through pathwise costate: forward on the hard sampled tokens, backward through
  their soft versions (next input e(y_t) + (e_bar_t - sg(e_bar_t)), reward on onehot(y) + (p - sg(p))).
  E[lambda_PD] is exact: one backward over the prefix tree, weighted by the (detached) probabilities.

`value_and_gradient`, `pd_costates`, `score_costates` and `sf_costates` are the per-sample / stand-alone
forms the tests check the exact expectations against; the measurement (`measure`) uses the rest.
"""
from __future__ import annotations

import torch

from .enumeration import (enumerate_policy, gather_tokens, prompt_embeddings, rewards_all, state_leaf,
                          tree_logprobs, with_state)
from .policy import REWARDS, all_completions, answer_logits
from .updates import rloo_advantages


def soft_reward(hits: torch.Tensor, kind: str) -> torch.Tensor:
    """R on (soft) per-position indicators hits[..., L] = Y_t[a_t]; both rewards are multilinear in Y.

    partial: (1/L) sum_t Y_t[a_t];  exact: prod_t Y_t[a_t].
    """
    if kind == "partial":
        return hits.mean(-1)
    if kind == "exact":
        return hits.prod(-1)
    raise ValueError(f"reward must be one of {sorted(REWARDS)}, got {kind!r}")


def value_and_gradient(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                       tau: float, reward: str = "partial") -> tuple[torch.Tensor, torch.Tensor]:
    """V [Q] and g* = grad_x V [Q, E] exactly (enumeration, autograd)."""
    x = state_leaf(model, prompt_ids)
    enum = enumerate_policy(model, with_state(prompt_embeddings(model, prompt_ids), x), digit_ids,
                            answers.shape[1], tau)
    v = (enum.logP.exp() * rewards_all(enum.completions, answers, reward)).sum(-1)
    (g,) = torch.autograd.grad(v.sum(), x)
    return v.detach(), g


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


def sf_coefficients(probs_y: torch.Tensor, rewards: torch.Tensor, n_samples: int,
                    generator: torch.Generator) -> torch.Tensor:
    """[Q, K] coefficients c with lambda_SF = grad_x sum_y c_y log P(y): c_y = (1/N) sum_i (R_i - b_i)[y_i = y].

    N completions per prompt are drawn from the exact P(y) [Q, K] (the same law as sampling digit by
    digit); b_i is the leave-one-out mean of the other N - 1 rewards.
    """
    idx = torch.multinomial(probs_y, n_samples, replacement=True, generator=generator)  # [Q, N]
    adv = rloo_advantages(rewards.gather(1, idx))
    return torch.zeros_like(probs_y).scatter_add_(1, idx, adv / n_samples)


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
