"""K causal LMs of one architecture as one stacked model: every parameter gets a leading run axis [K, ...]; for GPT-2
one forward / backward pass of batched matmuls serves all K.

Part C advances the RL runs of one checkpoint step (for every member of a group: its seeds and the lr sweep's runs,
each from its member's checkpoint) in lockstep this way, and pretraining its groups of members; the parameters come
from a `vgh.lm.stack.Stack` (`params()`, [K, ...] views of one buffer). On a GPU a tiny model's step is
launch-bound (about 12 ms whatever the batch), so K runs cost about what one costs; on a CPU the work is the same as
K separate runs. The G completions of a prompt share its prefix: sampling keeps each prompt's per-layer keys /
values (a KV cache over the run axis) and runs only the new position per digit, and the teacher-forced pass of RL
(`group_logprobs`) runs each prompt's prefix once for its G completions.

For GPT-2 (the workflow's own models) the forward is Hugging Face's `GPT2LMHeadModel` (eager attention, no dropout,
tied LM head) written out over the run axis, with only the digit rows of the LM head computed (Part C's policy is
the digit-restricted one, `vgh.lm.policy`). Any other causal LM (an external checkpoint) runs its K parameter sets
one after another through the model itself (`torch.func.functional_call`): the same numbers, without the batching.
`tests/test_stacked.py` checks both against the model.

Every function takes the model itself as the template (architecture, config, buffers); its own weights are unused.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    shape = (weight.shape[0],) + (1,) * (x.dim() - 2) + (weight.shape[-1],)
    return F.layer_norm(x, x.shape[-1:], eps=eps) * weight.view(shape) + bias.view(shape)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """GPT-2's Conv1D per run: x [K, ..., I] @ weight [K, I, O] + bias [K, O]."""
    k, out = weight.shape[0], weight.shape[-1]
    y = torch.baddbmm(bias.unsqueeze(1), x.reshape(k, -1, x.shape[-1]), weight)
    return y.view(*x.shape[:-1], out)


def _embed(params: dict[str, torch.Tensor], ids: torch.Tensor, start: int = 0) -> torch.Tensor:
    """[K, ..., T, E] input embeddings of every run's ids [K, ..., T] at positions start..start+T-1."""
    k, t = ids.shape[0], ids.shape[-1]
    runs = torch.arange(k, device=ids.device).view(k, *([1] * (ids.dim() - 1)))
    wpe = params["transformer.wpe.weight"][:, start:start + t]
    return params["transformer.wte.weight"][runs, ids] + wpe.view(k, *([1] * (ids.dim() - 2)), t, -1)


def _blocks(params: dict[str, torch.Tensor], config, h: torch.Tensor,
            past: list[tuple[torch.Tensor, torch.Tensor]] | None = None
            ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The transformer blocks on input embeddings h [K, R, T, E] (before ln_f), each new position attending to the
    Tp positions of `past` (per layer (keys, values) [K, R, H, Tp, D], or None) and causally to the new ones.
    Returns the hidden states [K, R, T, E] and every layer's (keys, values) over the Tp + T positions (the KV cache
    of the next call)."""
    k, r, t, e = h.shape
    n_head, eps = config.n_head, config.layer_norm_epsilon
    tp = 0 if past is None else past[0][0].shape[-2]
    masked = None if t == 1 else ~torch.ones(t, tp + t, dtype=torch.bool, device=h.device).tril(tp)
    cache = []
    for i in range(config.n_layer):
        pre = f"transformer.h.{i}."
        a = _layer_norm(h, params[pre + "ln_1.weight"], params[pre + "ln_1.bias"], eps)
        q, key, v = _linear(a, params[pre + "attn.c_attn.weight"], params[pre + "attn.c_attn.bias"]).split(e, dim=-1)
        q, key, v = (z.view(k, r, t, n_head, -1).transpose(2, 3) for z in (q, key, v))  # [K, R, H, T, D]
        if past is not None:
            key, v = torch.cat([past[i][0], key], dim=-2), torch.cat([past[i][1], v], dim=-2)
        cache.append((key, v))
        w = torch.matmul(q, key.transpose(-1, -2)) * q.shape[-1] ** -0.5
        if masked is not None:
            w = w.masked_fill(masked, torch.finfo(w.dtype).min)
        att = torch.matmul(torch.softmax(w, dim=-1), v).transpose(2, 3).reshape(k, r, t, -1)
        h = h + _linear(att, params[pre + "attn.c_proj.weight"], params[pre + "attn.c_proj.bias"])
        m = _layer_norm(h, params[pre + "ln_2.weight"], params[pre + "ln_2.bias"], eps)
        m = F.gelu(_linear(m, params[pre + "mlp.c_fc.weight"], params[pre + "mlp.c_fc.bias"]), approximate="tanh")
        h = h + _linear(m, params[pre + "mlp.c_proj.weight"], params[pre + "mlp.c_proj.bias"])
    return h, cache


def _final(params: dict[str, torch.Tensor], config, h: torch.Tensor) -> torch.Tensor:
    return _layer_norm(h, params["transformer.ln_f.weight"], params["transformer.ln_f.bias"],
                       config.layer_norm_epsilon)


def _repeat_cache(cache: list[tuple[torch.Tensor, torch.Tensor]], n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each row's (keys, values) n times in a row ([K, R, ...] -> [K, R * n, ...]): the prompt's cache for each of
    its n generations."""
    return [(key.repeat_interleave(n, dim=1), v.repeat_interleave(n, dim=1)) for key, v in cache]


def hidden_states(params: dict[str, torch.Tensor], config, input_ids: torch.Tensor) -> torch.Tensor:
    """[K, B, T, E] final (ln_f) hidden states of every run on its own ids [K, B, T] (positions 0..T-1)."""
    return _final(params, config, _blocks(params, config, _embed(params, input_ids))[0])


def digit_logits(params: dict[str, torch.Tensor], hidden: torch.Tensor, digit_ids: torch.Tensor) -> torch.Tensor:
    """[K, ..., 10] logits of the digit tokens from hidden states [K, ..., E] (the tied head's digit rows)."""
    head = params["transformer.wte.weight"][:, digit_ids]  # [K, 10, E]
    k = hidden.shape[0]
    return torch.bmm(hidden.reshape(k, -1, hidden.shape[-1]), head.transpose(1, 2)).view(*hidden.shape[:-1], -1)


def digit_logits_at(params: dict[str, torch.Tensor], model, input_ids: torch.Tensor, positions: slice,
                    digit_ids: torch.Tensor) -> torch.Tensor:
    """[K, B, len(positions), 10] digit logits of every run at `positions` of its own ids [K, B, T]: batched over
    the runs for GPT-2, one `functional_call` of `model` per run otherwise."""
    if model.config.model_type == "gpt2":
        return digit_logits(params, hidden_states(params, model.config, input_ids)[:, :, positions], digit_ids)
    out = []
    for k in range(input_ids.shape[0]):
        logits = torch.func.functional_call(model, {n: p[k] for n, p in params.items()}, (input_ids[k],),
                                            {"use_cache": False}).logits
        out.append(logits[:, positions][..., digit_ids])
    return torch.stack(out)


def completion_logprobs(params: dict[str, torch.Tensor], model, prompt_ids: torch.Tensor,
                        completions: torch.Tensor, digit_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """[K, B, L, 10] per-position log-probabilities of the restricted policy of every run, teacher-forced on its
    completions (prompt_ids [K, B, P], completions [K, B, L] digit values; `vgh.lm.policy.completion_logprobs`)."""
    p, L = prompt_ids.shape[-1], completions.shape[-1]
    ids = torch.cat([prompt_ids, digit_ids[completions[..., :-1]]], dim=-1)
    logits = digit_logits_at(params, model, ids, slice(p - 1, p - 1 + L), digit_ids)
    return torch.log_softmax(logits / temperature, dim=-1)


def group_logprobs(params: dict[str, torch.Tensor], model, prompt_ids: torch.Tensor, completions: torch.Tensor,
                   digit_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """[K, B, G, L, 10] `completion_logprobs` of every run's G completions of each of its prompts (prompt_ids
    [K, B, P], completions [K, B, G, L]).

    For GPT-2 each prompt's prefix runs once (not once per completion): its last position gives the first digit's
    logits of all G completions, and its per-layer keys / values serve the G completions' own positions. The
    gradient reaches the prompt positions through both, summed over the G completions, so values and gradients
    are those of `completion_logprobs` on the prompts repeated G times up to float rounding."""
    k, b, g, L = completions.shape
    if model.config.model_type != "gpt2":
        out = completion_logprobs(params, model, prompt_ids.repeat_interleave(g, dim=1),
                                  completions.reshape(k, b * g, L), digit_ids, temperature)
        return out.view(k, b, g, L, -1)
    cfg, p = model.config, prompt_ids.shape[-1]
    hidden, cache = _blocks(params, cfg, _embed(params, prompt_ids))
    logits = digit_logits(params, _final(params, cfg, hidden[:, :, -1:]), digit_ids)  # [K, B, 1, 10]
    logits = logits.unsqueeze(2).expand(k, b, g, 1, logits.shape[-1])
    if L > 1:
        ids = digit_ids[completions[..., :-1]].reshape(k, b * g, L - 1)
        hidden, _ = _blocks(params, cfg, _embed(params, ids, p), _repeat_cache(cache, g))
        rest = digit_logits(params, _final(params, cfg, hidden), digit_ids).view(k, b, g, L - 1, -1)
        logits = torch.cat([logits, rest], dim=3)
    return torch.log_softmax(logits / temperature, dim=-1)


def _draw(logits: torch.Tensor, temperature: float, generators: list[torch.Generator]) -> torch.Tensor:
    """[K, R, 1] one digit per row of every run from its logits [K, R, 10]: run k's draw from generators[k] on
    float64 probabilities, as `vgh.lm.policy.sample_completions` draws."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    return torch.stack([torch.multinomial(probs[r], 1, generator=gen) for r, gen in enumerate(generators)])


@torch.no_grad()
def sample_completions(params: dict[str, torch.Tensor], model, prompt_ids: torch.Tensor, digit_ids: torch.Tensor,
                       answer_len: int, temperature: float, n: int,
                       generators: list[torch.Generator]) -> torch.Tensor:
    """[K, B, n, L] completions of every run, n per prompt, digit by digit; run k draws from generators[k] exactly
    as `vgh.lm.policy.sample_completions` draws one run (same calls, same order, probabilities of the same shape).

    For GPT-2 with a KV cache: each prompt's prefix runs once, its per-layer keys / values serve its n
    generations, and each further digit runs only its own position. The logits are those of the full recompute
    (`_sample_recompute`, the path of any other architecture) up to float rounding, so the draws agree but where
    a rounding difference of the logits flips one (`tests/test_stacked.py`)."""
    if model.config.model_type != "gpt2":
        return _sample_recompute(params, model, prompt_ids, digit_ids, answer_len, temperature, n, generators)
    k, b, p = prompt_ids.shape
    cfg = model.config
    hidden, cache = _blocks(params, cfg, _embed(params, prompt_ids))
    logits = digit_logits(params, _final(params, cfg, hidden[:, :, -1]), digit_ids)  # [K, B, 10]
    logits = logits.repeat_interleave(n, dim=1)  # [K, B * n, 10]: each generation's row, as the recompute has
    cache = _repeat_cache(cache, n)
    digits = []
    for t in range(answer_len):
        digits.append(_draw(logits, temperature, generators))
        if t + 1 < answer_len:
            hidden, cache = _blocks(params, cfg, _embed(params, digit_ids[digits[-1]], p + t), cache)
            logits = digit_logits(params, _final(params, cfg, hidden[:, :, -1]), digit_ids)
    return torch.cat(digits, dim=-1).view(k, b, n, answer_len)


@torch.no_grad()
def _sample_recompute(params: dict[str, torch.Tensor], model, prompt_ids: torch.Tensor, digit_ids: torch.Tensor,
                      answer_len: int, temperature: float, n: int,
                      generators: list[torch.Generator]) -> torch.Tensor:
    """`sample_completions` by a full forward of prompt + digits so far for every generation and digit."""
    k, b = prompt_ids.shape[:2]
    ids = prompt_ids.repeat_interleave(n, dim=1)
    digits = torch.empty(k, b * n, 0, dtype=torch.long, device=prompt_ids.device)
    for _ in range(answer_len):
        logits = digit_logits_at(params, model, ids, slice(ids.shape[-1] - 1, None), digit_ids)[:, :, 0]
        nxt = _draw(logits, temperature, generators)
        digits = torch.cat([digits, nxt], dim=-1)
        ids = torch.cat([ids, digit_ids[nxt]], dim=-1)
    return digits.view(k, b, n, answer_len)


@torch.no_grad()
def exact_pass1(params: dict[str, torch.Tensor], model, prompt_ids: torch.Tensor, answers: torch.Tensor,
                digit_ids: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """[K, N] exact pass@1 p_q of every run on the same prompts (prompt_ids [N, P], answers [N, L]) or each run on
    its own (prompt_ids [K, N, P], answers [K, N, L]), computed in float64 whatever the runs' dtype
    (`vgh.lm.policy.exact_pass1`)."""
    params = {name: p.detach().double() for name, p in params.items()}
    if model.config.model_type != "gpt2" and next(model.parameters()).dtype != torch.float64:
        import copy

        model = copy.deepcopy(model).double()  # the template's buffers in float64 too
    k = next(iter(params.values())).shape[0]
    out = []
    if prompt_ids.dim() == 2:
        prompt_ids, answers = prompt_ids.expand(k, -1, -1), answers.expand(k, -1, -1)
    for i in range(0, prompt_ids.shape[1], chunk):
        ids, ans = prompt_ids[:, i:i + chunk], answers[:, i:i + chunk]
        logp = completion_logprobs(params, model, ids, ans, digit_ids, 1.0)
        out.append(logp.gather(-1, ans.unsqueeze(-1)).squeeze(-1).sum(-1).exp())
    return torch.cat(out, dim=1)
