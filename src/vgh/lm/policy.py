"""The digit-restricted token policy at temperature tau.

At each answer position the policy is softmax(logits[digit tokens] / tau), so a completion is one of 10^L
digit strings. Completions are tensors of digit *values* 0..9 (indices into the restricted policy);
`digit_ids` maps them to token ids. Everything runs batched; the core entry point takes input embeddings so
that Part B can make the prompt state (or soft answer tokens) differentiable.
"""
from __future__ import annotations

import itertools

import torch


def all_completions(answer_len: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """[10^L, L] every digit string of length L, in lexicographic order."""
    rows = list(itertools.product(range(10), repeat=answer_len))
    return torch.tensor(rows, dtype=torch.long, device=device)


def teacher_forced_embeds(model, prompt_ids: torch.Tensor, completions: torch.Tensor,
                          digit_ids: torch.Tensor) -> torch.Tensor:
    """[B, P + L - 1, E] input embeddings of prompt + completion[:-1] (what predicts each answer digit)."""
    wte = model.get_input_embeddings()
    ids = torch.cat([prompt_ids, digit_ids[completions[:, :-1]]], dim=1)
    return wte(ids)


def answer_logits(model, embeds: torch.Tensor, prompt_len: int, answer_len: int,
                  digit_ids: torch.Tensor) -> torch.Tensor:
    """[B, L, 10] digit logits at the answer positions, from input embeddings [B, P + L - 1, E].

    Position P - 1 (the last prompt token) predicts the first answer digit, and so on.
    """
    out = model(inputs_embeds=embeds).logits
    return out[:, prompt_len - 1:prompt_len - 1 + answer_len][..., digit_ids]


def completion_logprobs(model, prompt_ids: torch.Tensor, completions: torch.Tensor, digit_ids: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """[B, L, 10] per-position log-probabilities of the restricted policy, teacher-forced on `completions`.

    prompt_ids [B, P] and completions [B, L] are aligned row by row.
    """
    embeds = teacher_forced_embeds(model, prompt_ids, completions, digit_ids)
    logits = answer_logits(model, embeds, prompt_ids.shape[1], completions.shape[1], digit_ids)
    return torch.log_softmax(logits / temperature, dim=-1)


def sequence_logprob(model, prompt_ids: torch.Tensor, completions: torch.Tensor, digit_ids: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """[B] log P_tau(completion | prompt)."""
    logp = completion_logprobs(model, prompt_ids, completions, digit_ids, temperature)
    return logp.gather(-1, completions.unsqueeze(-1)).squeeze(-1).sum(-1)



def exact_pass1(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                chunk: int = 1024, grad: bool = False) -> torch.Tensor:
    """[N] exact-match pass@1 p_q = P(answer_q | prompt_q) under the digit-restricted policy at temperature 1,
    in float64, from teacher-forced passes of `chunk` prompts; differentiable w.r.t. the parameters only with
    `grad` (otherwise computed under no_grad)."""
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        out = [sequence_logprob(model, prompt_ids[i:i + chunk], answers[i:i + chunk], digit_ids, 1.0).exp()
               for i in range(0, len(prompt_ids), chunk)]
    return torch.cat(out).double()


@torch.no_grad()
def sample_completions(model, prompt_ids: torch.Tensor, digit_ids: torch.Tensor, answer_len: int,
                       temperature: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """[B, n, L] completions sampled from the restricted policy, n per prompt, digit by digit."""
    b = prompt_ids.shape[0]
    ids = prompt_ids.repeat_interleave(n, dim=0)
    digits = torch.empty(b * n, 0, dtype=torch.long, device=prompt_ids.device)
    for _ in range(answer_len):
        logits = model(input_ids=ids).logits[:, -1, digit_ids]
        probs = torch.softmax(logits.double() / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=generator)
        digits = torch.cat([digits, nxt], dim=1)
        ids = torch.cat([ids, digit_ids[nxt]], dim=1)
    return digits.view(b, n, answer_len)


def exact_match(completions: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """1.0 where the completion equals the answer. completions [..., L], answers broadcastable [..., L]."""
    return (completions == answers).all(-1).to(torch.float64)


def partial_credit(completions: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """(1/L) * number of correct digits."""
    return (completions == answers).to(torch.float64).mean(-1)


REWARDS = {"exact": exact_match, "partial": partial_credit}
