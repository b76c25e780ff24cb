"""Part B: empirical costates of a token policy against the exact value gradient, by enumeration.

The state x is the input embedding at the last prompt position (its output predicts the first answer digit).
Everything exact is computed by enumerating the 10^L completions of each prompt, in float64 (cast the model
with `.double()`), over the prefix tree of answer digits with a KV cache (`tree_logprobs`): level t feeds
the 10^t prefixes of length t one token each, giving every conditional p_t(. | y_<t); log P(y) of all 10^L
completions follows by gathering. Sampled quantities draw completions from this exact P(y) (the same law as
sampling digit by digit) with an explicit generator.

Quantities (SCIENCE.md, Part B):
- V(x) = sum_y P_tau(y | x) R(y) and g* = grad_x V (the reference).
- lambda_SF: the score-function costate grad_x (1/N) sum_i (R_i - b_i) log P(y_i | x) over N samples with a
  leave-one-out baseline; E[lambda_SF] = g*, so its error is measured at the fixed budget N.
- lambda_PD: the straight-through pathwise costate: forward on the hard sampled tokens, backward through
  their soft versions (next input e(y_t) + (e_bar_t - sg(e_bar_t)), reward on onehot(y) + (p - sg(p))).
  E[lambda_PD] is exact: one backward over the prefix tree, weighted by the (detached) probabilities.
- Policy entropy and sampling gaps, exactly in expectation over completions (not sampled).
- B3: the exact grad_theta J (J = mean over prompts of V) and the update directions of REINFORCE, RLOO and
  GRPO from sampled groups, with their cosines to grad_theta J.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .policy import REWARDS, all_completions, answer_logits, sequence_logprob
from .updates import ALGOS, advantages, rloo_advantages

# ----------------------------------------------------------------------------------- rewards on soft tokens


def soft_reward(hits: torch.Tensor, kind: str) -> torch.Tensor:
    """R on (soft) per-position indicators hits[..., L] = Y_t[a_t]; both rewards are multilinear in Y.

    partial: (1/L) sum_t Y_t[a_t];  exact: prod_t Y_t[a_t].
    """
    if kind == "partial":
        return hits.mean(-1)
    if kind == "exact":
        return hits.prod(-1)
    raise ValueError(f"reward must be one of {sorted(REWARDS)}, got {kind!r}")


# ----------------------------------------------------------------------------------- enumeration


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


def _cache_kwargs(model, cache) -> dict:
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
        logits = model(inputs_embeds=inp, **_cache_kwargs(model, cache)).logits[:, -1][:, digit_ids]
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


def _gather_tokens(probs: torch.Tensor, comps: torch.Tensor) -> torch.Tensor:
    """[Q, K, L] p_t(y_t | y_<t) of each completion's own tokens."""
    return probs.gather(-1, comps[None, :, :, None].expand(probs.shape[0], -1, -1, 1)).squeeze(-1)


def enumerate_policy(model, prompt_embeds: torch.Tensor, digit_ids: torch.Tensor, answer_len: int,
                     tau: float) -> Enumeration:
    """Exact policy over all 10^L completions from prompt embeddings [Q, P, E] (differentiable)."""
    comps = all_completions(answer_len, device=prompt_embeds.device)  # row = prefix_index * 10 + y_L
    logp = tree_logprobs(model, prompt_embeds, digit_ids, answer_len, tau)
    return Enumeration(comps, logp.exp(), _gather_tokens(logp, comps).sum(-1))


def rewards_all(comps: torch.Tensor, answers: torch.Tensor, kind: str) -> torch.Tensor:
    """[Q, K] reward of every completion for every prompt's answer [Q, L]."""
    return REWARDS[kind](comps[None, :, :], answers[:, None, :])


def _chunks(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def prompts_per_chunk(answer_len: int, max_rows: int) -> int:
    """How many prompts fit one forward pass of at most `max_rows` sequences (10^(L-1) per prompt)."""
    return max(1, max_rows // 10 ** (answer_len - 1))


# ----------------------------------------------------------------------------------- value and its gradient


def value_and_gradient(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                       tau: float, reward: str = "partial") -> tuple[torch.Tensor, torch.Tensor]:
    """V [Q] and g* = grad_x V [Q, E] exactly (enumeration, autograd)."""
    x = state_leaf(model, prompt_ids)
    enum = enumerate_policy(model, with_state(prompt_embeddings(model, prompt_ids), x), digit_ids,
                            answers.shape[1], tau)
    v = (enum.logP.exp() * rewards_all(enum.completions, answers, reward)).sum(-1)
    (g,) = torch.autograd.grad(v.sum(), x)
    return v.detach(), g


# ----------------------------------------------------------------------------------- straight-through pathwise


def expected_pd_costate(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                        tau: float, reward: str = "partial") -> torch.Tensor:
    """E_y[lambda_PD(y)] [Q, E] exactly: grad_x sum_y sg(P(y)) R_ST(y), one backward over the prefix tree."""
    x = state_leaf(model, prompt_ids)
    logp = tree_logprobs(model, with_state(prompt_embeddings(model, prompt_ids), x), digit_ids,
                         answers.shape[1], tau, straight_through=True)
    probs = logp.exp()
    comps = all_completions(answers.shape[1], device=prompt_ids.device)
    weight = _gather_tokens(logp.detach(), comps).sum(-1).exp()  # [Q, K] = P(y), no gradient
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


# ----------------------------------------------------------------------------------- per-prompt measurement


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


def measure_prompts(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                    tau: float, reward: str, n_samples: int, generator: torch.Generator,
                    max_rows: int = 4096) -> pd.DataFrame:
    """Per-prompt exact costate quantities at temperature tau (model in float64). One row per prompt.

    Columns: value V, p_answer (exact P(answer)), greedy_correct, moving_flip_fraction (`flip_analysis`),
    g_norm = |g*|, pd_norm, pd_abs_error = |E[lambda_PD] - g*|, pd_rel_error, pd_cosine, sf_abs_error and
    sf_rel_error (one lambda_SF estimate at budget N), entropy (mean per-token entropy, nats), gap (mean
    |onehot(y_t) - p_t|_2), gap_sq (mean |onehot(y_t) - p_t|^2), gap_embed (mean |e(y_t) - e_bar_t|_2).
    Entropy and gaps are exact expectations over completions (enumeration), not sample means.
    """
    L = answers.shape[1]
    emb_digits = model.get_input_embeddings().weight[digit_ids].detach()  # [10, E]
    out = []
    for sl in _chunks(len(prompt_ids), prompts_per_chunk(L, max_rows)):
        ids, ans = prompt_ids[sl], answers[sl]
        x = state_leaf(model, ids)
        enum = enumerate_policy(model, with_state(prompt_embeddings(model, ids), x), digit_ids, L, tau)
        r = rewards_all(enum.completions, ans, reward)
        py = enum.logP.exp()
        v = (py * r).sum(-1)
        coef = sf_coefficients(py.detach(), r, n_samples, generator)
        g_star, = torch.autograd.grad(v.sum(), x, retain_graph=True)
        g_sf, = torch.autograd.grad((coef * enum.logP).sum(), x)
        g_pd = expected_pd_costate(model, ids, ans, digit_ids, tau, reward)
        stats = _token_stats(enum.probs.detach(), enum.completions, py.detach(), emb_digits)
        p_answer = py.detach().gather(1, completion_index(ans)[:, None]).squeeze(1)
        greedy, moving = flip_analysis(enum.probs.detach())
        g_norm = g_star.norm(dim=-1)
        pd_err = (g_pd - g_star).norm(dim=-1)
        sf_err = (g_sf - g_star).norm(dim=-1)
        cols = {
            "value": v, "p_answer": p_answer, "greedy_correct": (greedy == ans).all(-1),
            "moving_flip_fraction": moving, "g_norm": g_norm, "pd_norm": g_pd.norm(dim=-1),
            "pd_abs_error": pd_err, "pd_rel_error": pd_err / g_norm,
            "pd_cosine": torch.nn.functional.cosine_similarity(g_pd, g_star, dim=-1),
            "sf_abs_error": sf_err, "sf_rel_error": sf_err / g_norm, **stats,
        }
        out.append(pd.DataFrame({k: c.detach().cpu().numpy() for k, c in cols.items()}))
    return pd.concat(out, ignore_index=True)


def flip_analysis(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy completion y* [Q, L] and the fraction [Q] of single-digit flip probability that moves later digits.

    probs [Q, K, L, 10] from an enumeration at temperature tau. Along y*, a flip of y_t to k has probability
    p_t(k | y*_<t); it "moves later digits" when the greedy continuation after (y*_<t, k) differs from
    y*_{>t}. Returned: sum of the moving flips' probabilities / sum of all flip probabilities (first order in
    the flip probabilities, so meaningful for a confident policy). Straight-through sees a flip only through
    the soft token's linear effect, so it misses what a discrete flip does to later digits (a carry chain in
    the model's own behaviour); where this fraction stays large as tau -> 0, E[lambda_PD] need not approach g*.
    """
    q, _, L, _ = probs.shape
    rows = torch.arange(q, device=probs.device)

    def greedy(prefix: torch.Tensor) -> torch.Tensor:
        y = torch.zeros(q, L, dtype=torch.long, device=probs.device)
        y[:, :prefix.shape[1]] = prefix
        for s in range(prefix.shape[1], L):  # p_s depends on y_<s only; later entries are placeholders
            y[:, s] = probs[rows, completion_index(y), s].argmax(-1)
        return y

    star = greedy(torch.zeros(q, 0, dtype=torch.long, device=probs.device))
    path = probs[rows, completion_index(star)]  # [Q, L, 10]: p_t(. | y*_<t)
    total = (1 - path.gather(-1, star[..., None]).squeeze(-1)).sum(-1)
    moving = torch.zeros(q, dtype=probs.dtype, device=probs.device)
    for t in range(L - 1):
        for k in range(10):
            alt = greedy(torch.cat([star[:, :t], torch.full((q, 1), k, device=probs.device)], dim=1))
            moved = (alt[:, t + 1:] != star[:, t + 1:]).any(-1) & (star[:, t] != k)
            moving += path[:, t, k] * moved
    return star, moving / total.clamp_min(1e-300)


def _token_stats(probs: torch.Tensor, comps: torch.Tensor, py: torch.Tensor,
                 emb_digits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Exact expectations over y ~ P of per-token entropy and sampling gaps, averaged over the L positions."""
    q = probs.shape[0]
    ent = -(probs * probs.clamp_min(1e-300).log()).sum(-1)  # [Q, K, L]
    p_y = probs.gather(-1, comps[None, :, :, None].expand(q, -1, -1, 1)).squeeze(-1)
    gap_sq = (1 - 2 * p_y + (probs ** 2).sum(-1)).clamp_min(0)
    ebar = probs @ emb_digits  # [Q, K, L, E]
    gap_emb = (emb_digits[comps][None] - ebar).norm(dim=-1)
    w = py[:, :, None]
    return {"entropy": (w * ent).sum(1).mean(-1), "gap": (w * gap_sq.sqrt()).sum(1).mean(-1),
            "gap_sq": (w * gap_sq).sum(1).mean(-1), "gap_embed": (w * gap_emb).sum(1).mean(-1)}


def summarize(prompts: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Aggregate per-prompt rows into one row per group `by` (e.g. checkpoint, temperature).

    pd_error / sf_error: pooled relative error sum_q |E[lambda] - g*_q| / sum_q |g*_q| (the headline);
    *_median: median per-prompt relative error; pd_error_carry / _nocarry: pooled over each subset.
    """
    def pooled(d: pd.DataFrame, col: str) -> float:
        return float(d[col].sum() / d["g_norm"].sum()) if len(d) else float("nan")

    rows = []
    for key, d in prompts.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({
            **dict(zip(by, key)), "n_prompts": len(d), "n_carry": int(d["carry"].sum()),
            "pd_error": pooled(d, "pd_abs_error"), "pd_error_median": float(d["pd_rel_error"].median()),
            "sf_error": pooled(d, "sf_abs_error"), "sf_error_median": float(d["sf_rel_error"].median()),
            "pd_error_carry": pooled(d[d["carry"]], "pd_abs_error"),
            "pd_error_nocarry": pooled(d[~d["carry"]], "pd_abs_error"),
            "pd_cosine_mean": float(d["pd_cosine"].mean()),
            "entropy": float(d["entropy"].mean()), "gap": float(d["gap"].mean()),
            "gap_sq": float(d["gap_sq"].mean()), "gap_embed": float(d["gap_embed"].mean()),
            "g_norm_mean": float(d["g_norm"].mean()), "value": float(d["value"].mean()),
            "p_answer": float(d["p_answer"].mean()),
        })
    return pd.DataFrame(rows)


def measure_checkpoint(model, prompt_ids: torch.Tensor, answers: torch.Tensor, meta: pd.DataFrame,
                       digit_ids: torch.Tensor, temperatures: list[float], reward: str, n_samples: int,
                       generator: torch.Generator, max_rows: int = 4096, log=None) -> pd.DataFrame:
    """Per-prompt table over a temperature sweep (model in float64): one row per (temperature, prompt).

    `meta` holds one row per prompt (e.g. a, b, prompt, answer, carry of the eval split); its columns are copied
    into every temperature's rows. Every prompt is kept (none is dropped for a small |g*|).
    """
    frames = []
    for tau in temperatures:
        d = measure_prompts(model, prompt_ids, answers, digit_ids, tau, reward, n_samples, generator, max_rows)
        d = pd.concat([meta.reset_index(drop=True), d], axis=1)
        d.insert(0, "prompt_index", np.arange(len(d)))
        d.insert(0, "temperature", float(tau))
        frames.append(d)
        if log is not None:
            s = summarize(d, ["temperature"]).iloc[0]
            log.info("tau %.3g: entropy %.3f nats, gap %.3f, E[lambda_PD] error %.4f (median %.4f), "
                     "lambda_SF error %.4f, P(answer) %.3f", tau, s["entropy"], s["gap"], s["pd_error"],
                     s["pd_error_median"], s["sf_error"], s["p_answer"])
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------- B3: parameter space


def _params(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _flat_grad(scalar: torch.Tensor, params: list[torch.nn.Parameter], retain_graph: bool = False):
    grads = torch.autograd.grad(scalar, params, retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def objective_gradient(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                       tau: float, reward: str = "partial",
                       max_rows: int = 4096) -> tuple[float, torch.Tensor, torch.Tensor]:
    """J = mean_q V_q, the exact grad_theta J (flattened over model.parameters()), and P(y) [Q, K].

    Enumeration, accumulated over prompt chunks.
    """
    params = _params(model)
    L = answers.shape[1]
    q = len(prompt_ids)
    grad = None
    j = 0.0
    pys = []
    for sl in _chunks(q, prompts_per_chunk(L, max_rows)):
        enum = enumerate_policy(model, prompt_embeddings(model, prompt_ids[sl]), digit_ids, L, tau)
        py = enum.logP.exp()
        v = (py * rewards_all(enum.completions, answers[sl], reward)).sum() / q
        g = _flat_grad(v, params)
        grad = g if grad is None else grad + g
        j += float(v.detach())
        pys.append(py.detach())
    return j, grad, torch.cat(pys)


def update_directions(model, prompt_ids: torch.Tensor, completions: torch.Tensor, rewards: torch.Tensor,
                      digit_ids: torch.Tensor, tau: float, scale_rewards: str = "group",
                      algos: tuple[str, ...] = ALGOS) -> dict[str, torch.Tensor]:
    """Flattened first-step update directions grad_theta (1/(QG)) sum A_i log P(y_i) of each algorithm.

    completions [Q, G, L] sampled from the policy, rewards [Q, G]. beta = 0 and PPO ratio 1 at the first
    step, so GRPO's clipped surrogate has exactly this gradient.
    """
    q, g, L = completions.shape
    params = _params(model)
    lp = group_logprob(model, prompt_ids, completions, digit_ids, tau)
    out = {}
    for i, name in enumerate(algos):
        adv = advantages(rewards, name, scale_rewards)
        out[name] = _flat_grad((adv.detach() * lp).sum() / (q * g), params,
                               retain_graph=i < len(algos) - 1)
    return out


def group_logprob(model, prompt_ids: torch.Tensor, completions: torch.Tensor, digit_ids: torch.Tensor,
                  tau: float) -> torch.Tensor:
    """[Q, G] log P_tau(y | prompt) of G completions [Q, G, L] per prompt; the prompt runs once (KV cache)."""
    from transformers import DynamicCache

    q, g, L = completions.shape
    cache = DynamicCache(config=model.config)
    first = model(input_ids=prompt_ids, **_cache_kwargs(model, cache)).logits[:, -1][:, digit_ids]
    lp = torch.log_softmax(first / tau, dim=-1).gather(1, completions[:, :, 0])  # [Q, G]
    if L > 1:
        cache.batch_repeat_interleave(g)
        nxt = digit_ids[completions[:, :, :-1].reshape(q * g, L - 1)]
        logits = model(input_ids=nxt, **_cache_kwargs(model, cache)).logits[..., digit_ids]
        rest = torch.log_softmax(logits / tau, dim=-1).gather(-1, completions[:, :, 1:].reshape(q * g, L - 1, 1))
        lp = lp + rest.view(q, g, L - 1).sum(-1)
    return lp


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-300))


def update_alignment(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                     tau: float, reward: str, group_sizes: list[int], n_batches: int,
                     generator: torch.Generator, scale_rewards: str = "group", max_rows: int = 4096,
                     log=None) -> pd.DataFrame:
    """Cosine of each algorithm's update direction with the exact grad_theta J, per group size and batch.

    A batch is G completions for every prompt, drawn from the exact P(y) with `generator`. Rows:
    estimate = "batch" (one per batch; cosine, cosine_to_rloo, relative norm |d| / |grad J|) and
    estimate = "mean_over_batches" (the direction averaged over the n_batches batches).
    """
    j, grad_j, py = objective_gradient(model, prompt_ids, answers, digit_ids, tau, reward, max_rows)
    comps = all_completions(answers.shape[1], device=prompt_ids.device)
    r_all = rewards_all(comps, answers, reward)
    gnorm = float(grad_j.norm())
    rows = []
    bar = tqdm(total=len(group_sizes) * n_batches, desc="update alignment", mininterval=2.0)
    for g in group_sizes:
        total = {a: torch.zeros_like(grad_j) for a in ALGOS}
        frac_zero = []
        for b in range(n_batches):
            bar.update()
            idx = torch.multinomial(py, g, replacement=True, generator=generator)  # [Q, G]
            rewards = r_all.gather(1, idx)
            frac_zero.append(float((rewards.std(-1) == 0).double().mean()))
            dirs = update_directions(model, prompt_ids, comps[idx], rewards, digit_ids, tau, scale_rewards)
            for a in ALGOS:
                total[a] += dirs[a]
                rows.append({"group_size": g, "batch": b, "algo": a, "estimate": "batch",
                             "cosine": _cos(dirs[a], grad_j), "cosine_to_rloo": _cos(dirs[a], dirs["rloo"]),
                             "rel_norm": float(dirs[a].norm()) / gnorm, "frac_reward_zero_std": frac_zero[-1]})
        for a in ALGOS:
            mean = total[a] / n_batches
            rows.append({"group_size": g, "batch": -1, "algo": a, "estimate": "mean_over_batches",
                         "cosine": _cos(mean, grad_j), "cosine_to_rloo": _cos(mean, total["rloo"]),
                         "rel_norm": float(mean.norm()) / gnorm, "frac_reward_zero_std": float(np.mean(frac_zero))})
        if log is not None:
            m = {a: np.mean([r["cosine"] for r in rows if r["group_size"] == g and r["algo"] == a
                             and r["estimate"] == "batch"]) for a in ALGOS}
            log.info("G %d: mean cosine to grad J  reinforce %.3f  rloo %.3f  grpo %.3f", g, m["reinforce"],
                     m["rloo"], m["grpo"])
    bar.close()
    df = pd.DataFrame(rows)
    df["objective"] = j
    df["grad_norm"] = gnorm
    df["n_params"] = int(grad_j.numel())
    return df
