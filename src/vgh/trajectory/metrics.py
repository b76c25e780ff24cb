"""Per-checkpoint measurements of Part C, exact (teacher-forced, no sampling), at temperature 1.

With the exact-match reward a prompt's pass@1 is p_q = P_theta(answer_q | prompt_q) under the digit-restricted
policy, one teacher-forced pass. pass@k = 1 - (1 - p_q)^k (k samples with replacement). Headroom
H = mean_q [pass@k - pass@1]; |grad_theta J|^2 with J = mean_q p_q; and the prompt-state value
gradient grad_x V with V = p_q (x = input embedding of the last prompt position, as in Part B).

The predictor's signal is the algorithm's (docs/SCIENCE.md, rule R6): the squared norm of the *expected update*
of the critic-free algorithm actually run. With the exact-match reward, a group of G completions with k successes
gives every success the advantage a_s(k) and every failure a_f(k) (signed, from `vgh.lm.updates.advantages`
itself, so the std convention is the code's: the unbiased group std plus 1e-4 for GRPO with
`scale_rewards: group`). E[grad log pi(y) | success] = grad p / p and E[grad log pi(y) | failure] =
-grad p / (1 - p), so the expected update of one prompt is c(p) grad p with

    c(p) = (1/G) sum_k Binom(k; G, p) [k a_s(k) / p - (G - k) a_f(k) / (1 - p)]
         = sum_k Binom(k - 1; G - 1, p) a_s(k) - sum_k Binom(k; G - 1, p) a_f(k)     (no division by p or 1 - p)

and S_alg = |mean_q c(p_q) grad p_q|^2 (one backward pass of mean_q c(p_q).detach() p_q). RLOO has c = 1 (its
update is unbiased for grad J), GRPO with `scale_rewards: none` c = (G - 1) / G. The loss's constant factor 1 / L
(tokens per completion) and the learning rate are left out: kappa absorbs any constant.
Call these on a float64 model for exact references.
"""
from __future__ import annotations

import math

import torch

from vgh.lm.policy import answer_logits, exact_pass1, sequence_logprob, teacher_forced_embeds

TEMPERATURE = 1.0  # all of Part C uses the digit-restricted policy at tau = 1


@torch.no_grad()
def mean_pass1(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor) -> float:
    """mean_q p_q, in float64 whatever the model's dtype (a float64 copy evaluates a float32 model)."""
    if next(model.parameters()).dtype != torch.float64:
        import copy

        model = copy.deepcopy(model).double()
    return float(exact_pass1(model, prompt_ids, answers, digit_ids).mean())


def pass_at_k(p: torch.Tensor, k: int) -> torch.Tensor:
    """Exact pass@k of each prompt from its pass@1: 1 - (1 - p)^k."""
    return 1.0 - (1.0 - p) ** k


def signal(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
           chunk: int = 1024) -> float:
    """S = |grad_theta J|^2, J = mean_q p_q, by autograd (chunks accumulate into one exact gradient)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for p in params]
    n = len(prompt_ids)
    for i in range(0, n, chunk):
        p = sequence_logprob(model, prompt_ids[i:i + chunk], answers[i:i + chunk], digit_ids, TEMPERATURE).exp()
        for g, d in zip(grads, torch.autograd.grad(p.sum() / n, params)):
            g += d
    return float(sum((g.double() ** 2).sum() for g in grads))


def advantage_table(advantage: str, num_generations: int, scale_rewards: str = "group"
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(a_s, a_f) [G + 1] float64: the advantage of a success and of a failure in a group with k = 0..G successes,
    computed by the RL code itself (`vgh.lm.updates.advantages`); a_s(0) and a_f(G) (no such completion) are 0.
    `advantage` is the estimator's name (`RLSettings.algo`)."""
    from vgh.lm.updates import advantages

    G = int(num_generations)
    a_s, a_f = torch.zeros(G + 1, dtype=torch.float64), torch.zeros(G + 1, dtype=torch.float64)
    for k in range(G + 1):
        r = torch.tensor([1.0] * k + [0.0] * (G - k), dtype=torch.float64)
        a = advantages(r, advantage, scale_rewards)
        if k > 0:
            a_s[k] = a[0]
        if k < G:
            a_f[k] = a[-1]
    return a_s, a_f


def update_coefficient(p: torch.Tensor, advantage: str, num_generations: int,
                       scale_rewards: str = "group") -> torch.Tensor:
    """c(p) of rule R6 (module docstring): the expected update of one prompt is c(p) grad p. Float64, same shape
    as p; finite at p = 0 and p = 1 (the form without division)."""
    G = int(num_generations)
    a_s, a_f = advantage_table(advantage, G, scale_rewards)
    p = torch.as_tensor(p, dtype=torch.float64)
    j = torch.arange(G, dtype=torch.float64)  # Binom(j; G - 1, p), j = 0..G-1
    logc = torch.tensor([math.lgamma(G) - math.lgamma(i + 1) - math.lgamma(G - i) for i in range(G)],
                        dtype=torch.float64, device=p.device)
    pp = p.unsqueeze(-1)
    pmf = torch.exp(logc) * pp ** j.to(p.device) * (1 - pp) ** (G - 1 - j).to(p.device)  # [..., G]
    # success term: Binom(k - 1; G - 1) a_s(k), k = 1..G; failure term: Binom(k; G - 1) a_f(k), k = 0..G-1
    return (pmf * a_s[1:].to(p.device)).sum(-1) - (pmf * a_f[:-1].to(p.device)).sum(-1)


def algorithm_signal(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                     advantage: str, num_generations: int, scale_rewards: str = "group",
                     chunk: int = 1024) -> dict[str, float]:
    """Rule R6: S_alg = |mean_q c(p_q) grad p_q|^2 (the expected update of the algorithm), beside
    |grad J|^2 and <grad J, E[update]>, both gradients from the same forward pass per chunk.
    Keys: signal (= S_alg), signal_grad_j, grad_j_dot_update, update_coef_mean (mean_q c(p_q))."""
    params = [p for p in model.parameters() if p.requires_grad]
    gj = [torch.zeros_like(p) for p in params]
    gu = [torch.zeros_like(p) for p in params]
    n, coef_sum = len(prompt_ids), 0.0
    for i in range(0, n, chunk):
        p = sequence_logprob(model, prompt_ids[i:i + chunk], answers[i:i + chunk], digit_ids, TEMPERATURE).exp()
        c = update_coefficient(p.detach(), advantage, num_generations, scale_rewards).to(p.dtype)
        coef_sum += float(c.double().sum())
        for g, d in zip(gj, torch.autograd.grad(p.sum() / n, params, retain_graph=True)):
            g += d
        for g, d in zip(gu, torch.autograd.grad((c * p).sum() / n, params)):
            g += d
    return {"signal": float(sum((g.double() ** 2).sum() for g in gu)),
            "signal_grad_j": float(sum((g.double() ** 2).sum() for g in gj)),
            "grad_j_dot_update": float(sum((a.double() * b.double()).sum() for a, b in zip(gj, gu))),
            "update_coef_mean": coef_sum / n}


@torch.no_grad()
def rl_split_stats(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor
                   ) -> dict[str, float]:
    """What the lr rule's exact null variance (rule R8) needs from the RL split, from its exact per-prompt p_q:
    rl_n_prompts (N), rl_pass_at_1 (mean p_q), rl_var_pq (population variance of p_q, ddof 0) and
    rl_mean_pq1mq (mean p_q (1 - p_q))."""
    p = exact_pass1(model, prompt_ids, answers, digit_ids).double()
    return {"rl_n_prompts": int(len(p)), "rl_pass_at_1": float(p.mean()),
            "rl_var_pq": float(p.var(unbiased=False)) if len(p) else float("nan"),
            "rl_mean_pq1mq": float((p * (1 - p)).mean())}


def value_gradients(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                    chunk: int = 1024) -> torch.Tensor:
    """[N, E] grad_x V for every prompt, V = p_q (exact match), x = input embedding at the last prompt position.

    Rows are independent sequences, so one backward of sum_q p_q gives every prompt's own gradient.
    """
    prompt_len, answer_len = prompt_ids.shape[1], answers.shape[1]
    out = []
    for i in range(0, len(prompt_ids), chunk):
        ans = answers[i:i + chunk]
        embeds = teacher_forced_embeds(model, prompt_ids[i:i + chunk], ans, digit_ids).detach()
        x = embeds[:, prompt_len - 1].clone().requires_grad_(True)
        embeds = torch.cat([embeds[:, :prompt_len - 1], x[:, None], embeds[:, prompt_len:]], dim=1)
        logits = answer_logits(model, embeds, prompt_len, answer_len, digit_ids)
        logp = torch.log_softmax(logits / TEMPERATURE, dim=-1).gather(-1, ans.unsqueeze(-1)).sum((-1, -2))
        (g,) = torch.autograd.grad(logp.exp().sum(), x)
        out.append(g)
    return torch.cat(out)


def checkpoint_metrics(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                       pass_k: list[int], headroom_k: int, advantage: str = "rloo", num_generations: int = 2,
                       scale_rewards: str = "group") -> dict[str, float]:
    """Every Part C measurement of one checkpoint on one prompt split, as one flat row.

    Columns: pass@k for each k (`pass_at_<k>`), `headroom` (pass@headroom_k - pass@1), `signal` (S_alg of rule
    R6 for the advantage estimator `advantage` with G = `num_generations` and `scale_rewards`; the default
    "rloo" has c = 1, so S_alg = |grad J|^2), `signal_grad_j` (|grad J|^2), `grad_j_dot_update`,
    `update_coef_mean`, `mean_pq1mq` (mean p(1 - p)), `value_grad_norm` (mean_q |grad_x V_q|), `n_prompts`.
    """
    p = exact_pass1(model, prompt_ids, answers, digit_ids)
    row: dict[str, float] = {f"pass_at_{k}": float(pass_at_k(p, k).mean()) for k in sorted(set(pass_k) | {1})}
    row["headroom"] = float((pass_at_k(p, headroom_k) - p).mean())
    row["headroom_k"] = int(headroom_k)
    row.update(algorithm_signal(model, prompt_ids, answers, digit_ids, advantage, num_generations, scale_rewards))
    row["mean_pq1mq"] = float((p * (1 - p)).mean())
    row["value_grad_norm"] = float(value_gradients(model, prompt_ids, answers, digit_ids).double()
                                   .norm(dim=-1).mean())
    row["n_prompts"] = int(len(p))
    return row
