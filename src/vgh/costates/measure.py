"""B1 / B2 measurement: per prompt, the exact value gradient g*, E[lambda_PD] and one lambda_SF at budget N, the
policy entropy and sampling gaps (exact expectations over completions); `summarize` defines the headline
metrics the B1 / B2 checks read (pooled relative errors, mean entropy and gap per checkpoint and temperature).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .enumeration import (
    chunks,
    completion_index,
    enumerate_policy,
    prompt_embeddings,
    prompts_per_chunk,
    rewards_all,
    state_leaf,
    with_state,
)
from .estimators import expected_pd_costate, sf_coefficients


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
    for sl in chunks(len(prompt_ids), prompts_per_chunk(L, max_rows)):
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
        stats = token_stats(enum.probs.detach(), enum.completions, py.detach(), emb_digits)
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


def token_stats(probs: torch.Tensor, comps: torch.Tensor, py: torch.Tensor,
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


def measure_costates(model, prompt_ids: torch.Tensor, answers: torch.Tensor, meta: pd.DataFrame,
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
