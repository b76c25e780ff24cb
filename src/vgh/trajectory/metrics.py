"""Per-checkpoint measurements of Part C, exact (teacher-forced, no sampling), at temperature 1.

With the exact-match reward a prompt's pass@1 is p_q = P_theta(answer_q | prompt_q) under the digit-restricted
policy, one teacher-forced pass. pass@k = 1 - (1 - p_q)^k (k samples with replacement). Headroom
H = mean_q [pass@k - pass@1]; signal S = |grad_theta J|^2 with J = mean_q p_q; and the prompt-state value
gradient grad_x V with V = p_q (x = input embedding of the last prompt position, as in Part B).
Call these on a float64 model for exact references.
"""
from __future__ import annotations

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
                       pass_k: list[int], headroom_k: int) -> dict[str, float]:
    """Every Part C measurement of one checkpoint on one prompt split, as one flat row.

    Columns: pass@k for each k (`pass_at_<k>`), `headroom` (pass@headroom_k - pass@1), `signal` (S),
    `mean_pq1mq` (mean p(1 - p)), `value_grad_norm` (mean_q |grad_x V_q|), `n_prompts`.
    """
    p = exact_pass1(model, prompt_ids, answers, digit_ids)
    row: dict[str, float] = {f"pass_at_{k}": float(pass_at_k(p, k).mean()) for k in sorted(set(pass_k) | {1})}
    row["headroom"] = float((pass_at_k(p, headroom_k) - p).mean())
    row["headroom_k"] = int(headroom_k)
    row["signal"] = signal(model, prompt_ids, answers, digit_ids)
    row["mean_pq1mq"] = float((p * (1 - p)).mean())
    row["value_grad_norm"] = float(value_gradients(model, prompt_ids, answers, digit_ids).double()
                                   .norm(dim=-1).mean())
    row["n_prompts"] = int(len(p))
    return row
