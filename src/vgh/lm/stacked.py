"""K causal LMs of one architecture as one stacked model: every parameter gets a leading run axis [K, ...]; for GPT-2
one forward / backward pass of batched matmuls serves all K.

Part C advances the RL runs from one checkpoint (its seeds and the lr sweep's runs) in lockstep this way. On a GPU a
tiny model's step is launch-bound (about 12 ms whatever the batch), so K runs cost about what one costs; on a CPU
the work is the same as K separate runs. For GPT-2 (the workflow's own models) the forward is Hugging Face's
`GPT2LMHeadModel` (eager attention, no dropout, tied LM head) written out over the run axis, with only the digit
rows of the LM head computed (Part C's policy is the digit-restricted one, `vgh.lm.policy`). Any other causal LM (an
external checkpoint) runs its K parameter sets one after another through the model itself
(`torch.func.functional_call`): the same numbers, without the batching. `tests/test_stacked.py` checks both against
the model.

Every function takes the model itself as the template (architecture, config, buffers); its own weights are unused.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def stack_parameters(model, k: int) -> dict[str, torch.Tensor]:
    """K copies of `model`'s trainable parameters, by name ([K, ...] leaves that require grad, on its device and
    dtype). A tied LM head is the input embedding itself, as in the model (`named_parameters` lists it once)."""
    return {name: p.detach().unsqueeze(0).repeat(k, *([1] * p.dim())).requires_grad_(True)
            for name, p in model.named_parameters() if p.requires_grad}


def unstack_into(model, params: dict[str, torch.Tensor], k: int):
    """Copy run k's parameters into `model` (same architecture) in place; return it."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in params:
                p.copy_(params[name][k])
    return model


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    shape = (weight.shape[0],) + (1,) * (x.dim() - 2) + (weight.shape[-1],)
    return F.layer_norm(x, x.shape[-1:], eps=eps) * weight.view(shape) + bias.view(shape)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """GPT-2's Conv1D per run: x [K, ..., I] @ weight [K, I, O] + bias [K, O]."""
    k, out = weight.shape[0], weight.shape[-1]
    y = torch.baddbmm(bias.unsqueeze(1), x.reshape(k, -1, x.shape[-1]), weight)
    return y.view(*x.shape[:-1], out)


def hidden_states(params: dict[str, torch.Tensor], config, input_ids: torch.Tensor) -> torch.Tensor:
    """[K, B, T, E] final (ln_f) hidden states of every run on its own ids [K, B, T] (positions 0..T-1)."""
    k, b, t = input_ids.shape
    n_head, eps = config.n_head, config.layer_norm_epsilon
    wte = params["transformer.wte.weight"]
    runs = torch.arange(k, device=input_ids.device).view(k, 1, 1)
    h = wte[runs, input_ids] + params["transformer.wpe.weight"][:, None, :t]
    causal = torch.ones(t, t, dtype=torch.bool, device=h.device).tril()
    for i in range(config.n_layer):
        pre = f"transformer.h.{i}."
        a = _layer_norm(h, params[pre + "ln_1.weight"], params[pre + "ln_1.bias"], eps)
        q, key, v = _linear(a, params[pre + "attn.c_attn.weight"], params[pre + "attn.c_attn.bias"]).split(
            h.shape[-1], dim=-1)
        q, key, v = (z.view(k, b, t, n_head, -1).transpose(2, 3) for z in (q, key, v))  # [K, B, H, T, D]
        w = torch.matmul(q, key.transpose(-1, -2)) * q.shape[-1] ** -0.5
        w = torch.softmax(w.masked_fill(~causal, torch.finfo(w.dtype).min), dim=-1)
        att = torch.matmul(w, v).transpose(2, 3).reshape(k, b, t, -1)
        h = h + _linear(att, params[pre + "attn.c_proj.weight"], params[pre + "attn.c_proj.bias"])
        m = _layer_norm(h, params[pre + "ln_2.weight"], params[pre + "ln_2.bias"], eps)
        m = F.gelu(_linear(m, params[pre + "mlp.c_fc.weight"], params[pre + "mlp.c_fc.bias"]), approximate="tanh")
        h = h + _linear(m, params[pre + "mlp.c_proj.weight"], params[pre + "mlp.c_proj.bias"])
    return _layer_norm(h, params["transformer.ln_f.weight"], params["transformer.ln_f.bias"], eps)


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


@torch.no_grad()
def sample_completions(params: dict[str, torch.Tensor], model, prompt_ids: torch.Tensor, digit_ids: torch.Tensor,
                       answer_len: int, temperature: float, n: int,
                       generators: list[torch.Generator]) -> torch.Tensor:
    """[K, B, n, L] completions of every run, n per prompt, digit by digit; run k draws from generators[k] exactly
    as `vgh.lm.policy.sample_completions` draws one run (same calls, same order)."""
    k, b = prompt_ids.shape[:2]
    ids = prompt_ids.repeat_interleave(n, dim=1)
    digits = torch.empty(k, b * n, 0, dtype=torch.long, device=prompt_ids.device)
    for _ in range(answer_len):
        logits = digit_logits_at(params, model, ids, slice(ids.shape[-1] - 1, None), digit_ids)[:, :, 0]
        probs = torch.softmax(logits.double() / temperature, dim=-1)
        nxt = torch.stack([torch.multinomial(probs[r], 1, generator=g) for r, g in enumerate(generators)])
        digits = torch.cat([digits, nxt], dim=-1)
        ids = torch.cat([ids, digit_ids[nxt]], dim=-1)
    return digits.view(k, b, n, answer_len)


@torch.no_grad()
def exact_pass1(params: dict[str, torch.Tensor], model, prompt_ids: torch.Tensor, answers: torch.Tensor,
                digit_ids: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """[K, N] exact pass@1 p_q of every run on the same prompts (prompt_ids [N, P], answers [N, L]), computed in
    float64 whatever the runs' dtype (`vgh.lm.policy.exact_pass1`)."""
    params = {name: p.detach().double() for name, p in params.items()}
    if model.config.model_type != "gpt2" and next(model.parameters()).dtype != torch.float64:
        import copy

        model = copy.deepcopy(model).double()  # the template's buffers in float64 too
    k = next(iter(params.values())).shape[0]
    out = []
    for i in range(0, len(prompt_ids), chunk):
        ids, ans = prompt_ids[i:i + chunk].expand(k, -1, -1), answers[i:i + chunk].expand(k, -1, -1)
        logp = completion_logprobs(params, model, ids, ans, digit_ids, 1.0)
        out.append(logp.gather(-1, ans.unsqueeze(-1)).squeeze(-1).sum(-1).exp())
    return torch.cat(out, dim=1)
