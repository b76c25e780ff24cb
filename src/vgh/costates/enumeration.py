"""Part B's exact engine: the policy over all 10^L completions of each prompt, by a prefix tree with a KV cache.

The state x is the input embedding at the last prompt position (its output predicts the first answer digit).
Everything exact is computed by enumerating the 10^L completions of each prompt, in float64 (cast the model
with `.double()`), over the prefix tree of answer digits with a KV cache (`tree_logprobs`): level t feeds
the 10^t prefixes of length t one token each, giving every conditional p_t(. | y_<t); log P(y) of all 10^L
completions follows by gathering. Sampled quantities draw completions from this exact P(y) (the same law as
sampling digit by digit) with an explicit generator.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from vgh.lm.policy import REWARDS, all_completions


def prompt_embeddings(model, prompt_ids: torch.Tensor) -> torch.Tensor:
    """[Q, P, E] input (token) embeddings of the prompts; GPT-2 adds position embeddings itself."""
    return model.get_input_embeddings()(prompt_ids)


def state_leaf(model, prompt_ids: torch.Tensor) -> torch.Tensor:
    """[Q, E] the state x (embedding of the last prompt token) as a fresh leaf that requires grad."""
    x = model.get_input_embeddings()(prompt_ids[:, -1])
    return x.detach().clone().requires_grad_(True)


def with_state(prompt_embeds: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[Q, P, E] the prompt embeddings with the last position replaced by x [Q, E]."""
    return torch.cat([prompt_embeds[:, :-1], x[:, None, :]], dim=1)


def completion_index(completions: torch.Tensor) -> torch.Tensor:
    """Row index into `all_completions(L)` (lexicographic) of completions [..., L]."""
    L = completions.shape[-1]
    powers = 10 ** torch.arange(L - 1, -1, -1, device=completions.device)
    return (completions * powers).sum(-1)


@dataclass
class Enumeration:
    """Exact restricted policy over all completions of Q prompts.

    probs[q, y, t, :] = p_t(. | y_<t) for completion y (index into all_completions(L)), logP[q, y] =
    log P(y | prompt q). Both carry the autograd graph of the forward pass that made them.
    """

    completions: torch.Tensor  # [K, L], K = 10^L
    probs: torch.Tensor  # [Q, K, L, 10]
    logP: torch.Tensor  # [Q, K]


def cache_kwargs(model, cache) -> dict:
    """The KV-cache keyword of this transformers version (`cache` in recent 5.x, `past_key_values` before)."""
    import inspect

    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    return {name: cache, "use_cache": True}


def tree_logprobs(model, prompt_embeds: torch.Tensor, digit_ids: torch.Tensor, answer_len: int, tau: float,
                  straight_through: bool = False) -> torch.Tensor:
    """[Q, K, L, 10] log p_t(. | y_<t) for every completion (K = 10^L), over the prefix tree with a KV cache.

    Level t feeds the 10^t answer prefixes of length t one token at a time, sharing the cached keys and
    values of their common prefix (repeat_interleave keeps the autograd graph), so a prompt costs
    P + 10 + ... + 10^(L-1) positions instead of 10^(L-1) * (P + L - 1).
    With `straight_through`, each child's input is e(y_t) + (e_bar_t - sg(e_bar_t)), e_bar_t = p_t @ e
    (value: the hard token; gradient: through the soft token).
    """
    from transformers import DynamicCache

    q, _, e = prompt_embeds.shape
    L = answer_len
    emb_digits = model.get_input_embeddings()(digit_ids)  # [10, E]
    cache = DynamicCache(config=model.config)
    inp = prompt_embeds
    levels = []
    for t in range(L):
        logits = model(inputs_embeds=inp, **cache_kwargs(model, cache)).logits[:, -1][:, digit_ids]
        logp = torch.log_softmax(logits / tau, dim=-1)  # [Q * 10^t, 10]
        levels.append(logp.view(q, 10 ** t, 10))
        if t < L - 1:
            p = logp.exp()
            cache.batch_repeat_interleave(10)
            child = emb_digits[None].expand(p.shape[0], 10, e)
            if straight_through:
                ebar = p @ emb_digits
                child = child + (ebar - ebar.detach())[:, None, :]
            inp = child.reshape(-1, 1, e)
    k = 10 ** L
    return torch.stack([lv.repeat_interleave(k // lv.shape[1], dim=1) for lv in levels], dim=2)


def gather_tokens(probs: torch.Tensor, comps: torch.Tensor) -> torch.Tensor:
    """[Q, K, L] p_t(y_t | y_<t) of each completion's own tokens."""
    return probs.gather(-1, comps[None, :, :, None].expand(probs.shape[0], -1, -1, 1)).squeeze(-1)


def enumerate_policy(model, prompt_embeds: torch.Tensor, digit_ids: torch.Tensor, answer_len: int,
                     tau: float) -> Enumeration:
    """Exact policy over all 10^L completions from prompt embeddings [Q, P, E] (differentiable)."""
    comps = all_completions(answer_len, device=prompt_embeds.device)  # row = prefix_index * 10 + y_L
    logp = tree_logprobs(model, prompt_embeds, digit_ids, answer_len, tau)
    return Enumeration(comps, logp.exp(), gather_tokens(logp, comps).sum(-1))


def rewards_all(comps: torch.Tensor, answers: torch.Tensor, kind: str) -> torch.Tensor:
    """[Q, K] reward of every completion for every prompt's answer [Q, L]."""
    return REWARDS[kind](comps[None, :, :], answers[:, None, :])


def chunks(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def prompts_per_chunk(answer_len: int, max_rows: int) -> int:
    """How many prompts fit one forward pass of at most `max_rows` sequences (10^(L-1) per prompt)."""
    return max(1, max_rows // 10 ** (answer_len - 1))
