"""B3: the exact grad_theta J (J = mean over prompts of V, by enumeration) and the first-step update directions
of REINFORCE, RLOO and GRPO from sampled groups (`vgh.lm.updates.advantages`), with their cosines to grad J.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .enumeration import cache_kwargs, chunks, enumerate_policy, prompt_embeddings, prompts_per_chunk, rewards_all
from .policy import all_completions
from .updates import ALGOS, advantages


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
    for sl in chunks(q, prompts_per_chunk(L, max_rows)):
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
    first = model(input_ids=prompt_ids, **cache_kwargs(model, cache)).logits[:, -1][:, digit_ids]
    lp = torch.log_softmax(first / tau, dim=-1).gather(1, completions[:, :, 0])  # [Q, G]
    if L > 1:
        cache.batch_repeat_interleave(g)
        nxt = digit_ids[completions[:, :, :-1].reshape(q * g, L - 1)]
        logits = model(input_ids=nxt, **cache_kwargs(model, cache)).logits[..., digit_ids]
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
