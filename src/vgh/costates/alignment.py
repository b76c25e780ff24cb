"""B3: the exact grad_theta J (J = mean over prompts of V, by enumeration), the exact expected first-step update of
REINFORCE, RLOO and GRPO (`expected_updates`, SCIENCE.md R14, from `vgh.costates.expected_advantages`), and their
update directions from sampled groups (`vgh.lm.updates.advantages`), with their cosines to grad J, the same
estimators with the rewards permuted within each group as a null (R5), and a bootstrap over batches of the
batch-mean direction's cosine (R14).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from vgh.lm.policy import all_completions
from vgh.lm.updates import ALGOS, advantages

from .enumeration import cache_kwargs, chunks, enumerate_policy, prompt_embeddings, prompts_per_chunk, rewards_all
from .expected_advantages import composition_advantages, expected_advantages, reward_levels


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


def expected_updates(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor, tau: float,
                     reward: str, group_sizes: list[int], algos: tuple[str, ...] = ALGOS,
                     scale_rewards: str = "group", max_rows: int = 4096) -> dict[tuple[str, int], torch.Tensor]:
    """{(algo, G): the exact expected first-step update E[grad_theta (1/(QG)) sum A_i log P(y_i)]} (SCIENCE.md R14).

    E[A_i grad log P(y_i)] = sum_j a_q(j) grad pi_qj, pi_qj = P(reward level j | prompt q) by enumeration and
    a_q(j) from `expected_advantages`; one backward pass per algorithm and G, accumulated over prompt chunks.
    REINFORCE's and RLOO's are grad_theta J exactly (an identity); GRPO's with scale_rewards "group" is not.
    """
    params = _params(model)
    L = answers.shape[1]
    q = len(prompt_ids)
    keys = [(a, g) for a in algos for g in group_sizes]
    out, tables = {}, {}
    for sl in chunks(q, prompts_per_chunk(L, max_rows)):
        enum = enumerate_policy(model, prompt_embeddings(model, prompt_ids[sl]), digit_ids, L, tau)
        level, values = reward_levels(rewards_all(enum.completions, answers[sl], reward), L)
        pi = torch.zeros(level.shape[0], L + 1, dtype=enum.logP.dtype, device=level.device)
        pi = pi.scatter_add(1, level, enum.logP.exp())  # [Qc, L + 1], with the graph
        values = values.to(pi.dtype)
        for i, (a, g) in enumerate(keys):
            if (a, g) not in tables:  # the same for every prompt chunk
                tables[a, g] = composition_advantages(values, g, a, scale_rewards)
            coef = expected_advantages(pi.detach(), values, g, a, scale_rewards, table=tables[a, g])
            grad = _flat_grad((coef * pi).sum() / q, params, retain_graph=i < len(keys) - 1)
            out[a, g] = grad if (a, g) not in out else out[a, g] + grad
    return out


def bootstrap_mean_cosines(directions: torch.Tensor, grad_j: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    """Cosine with grad_j of each bootstrap resample of the mean of directions [n, P]: weights [B, n] (resample
    counts / n). Exact from the Gram matrix, so a resample costs no pass over the P parameters."""
    gram = directions @ directions.T
    dots = directions @ grad_j
    w = weights.to(gram)
    norms = torch.einsum("bi,ij,bj->b", w, gram, w).clamp_min(0).sqrt() * grad_j.norm()
    return ((w @ dots) / norms.clamp_min(1e-300)).cpu().numpy()


def update_directions(model, prompt_ids: torch.Tensor, completions: torch.Tensor, rewards: torch.Tensor,
                      digit_ids: torch.Tensor, tau: float, scale_rewards: str = "group",
                      algos: tuple[str, ...] = ALGOS,
                      null_rewards: torch.Tensor | None = None,
                      null_algos: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """Flattened first-step update directions grad_theta (1/(QG)) sum A_i log P(y_i) of each algorithm.

    completions [Q, G, L] sampled from the policy, rewards [Q, G]. beta = 0 and PPO ratio 1 at the first
    step, so GRPO's clipped surrogate has exactly this gradient.

    null_rewards [Q, G] (optional, e.g. `permute_within_groups(rewards, gen)`): the same estimators with these
    rewards on the same completions, returned under "null_<algo>" for each algo of `null_algos` (default: algos).
    They reuse the forward pass and its graph (one more backward each), so the null costs no sampling and no forward
    pass.
    """
    q, g, L = completions.shape
    params = _params(model)
    lp = group_logprob(model, prompt_ids, completions, digit_ids, tau)
    jobs = [(name, advantages(rewards, name, scale_rewards)) for name in algos]
    if null_rewards is not None:
        jobs += [(f"null_{name}", advantages(null_rewards, name, scale_rewards)) for name in (null_algos or algos)]
    out = {}
    for i, (name, adv) in enumerate(jobs):
        out[name] = _flat_grad((adv.detach() * lp).sum() / (q * g), params, retain_graph=i < len(jobs) - 1)
    return out


def permute_within_groups(rewards: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """rewards [Q, G] with each group's (row's) G rewards shuffled by its own uniform random permutation drawn
    from `generator` (on the CPU; the result is on rewards' device). A reward no longer belongs to the completion
    that earned it, so E[update] = 0 for every critic-free estimator: B3's null (SCIENCE.md, R5)."""
    perm = torch.argsort(torch.rand(rewards.shape, generator=generator, dtype=torch.float64), dim=-1)
    return rewards.gather(-1, perm.to(rewards.device))


def null_generator(generator: torch.Generator) -> torch.Generator:
    """A CPU generator for the null permutations seeded from `generator`'s seed (not from its stream), so adding
    the null leaves the sampled batches, and every real number, as they were without it."""
    seed = int(np.random.SeedSequence([generator.initial_seed(), 0x6E756C6C]).generate_state(1)[0])
    return torch.Generator().manual_seed(seed)


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


def _cos(a: torch.Tensor, b: torch.Tensor | None) -> float:
    if b is None:
        return float("nan")
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-300))


def bootstrap_generator(generator: torch.Generator) -> np.random.Generator:
    """The bootstrap's generator over batches (R14), seeded from `generator`'s seed (not its stream), so the
    bootstrap leaves the sampled batches and every other number as they were without it."""
    return np.random.default_rng(np.random.SeedSequence([generator.initial_seed(), 0x626F6F74]))


def update_alignment(model, prompt_ids: torch.Tensor, answers: torch.Tensor, digit_ids: torch.Tensor,
                     tau: float, reward: str, group_sizes: list[int], n_batches: int,
                     generator: torch.Generator, scale_rewards: str = "group", max_rows: int = 4096,
                     log=None, null: bool = True, null_algos: tuple[str, ...] = ("grpo",),
                     null_generator_: torch.Generator | None = None, n_bootstrap: int = 1000) -> pd.DataFrame:
    """Cosine of each algorithm's update direction with the exact grad_theta J, per group size and batch.

    A batch is G completions for every prompt, drawn from the exact P(y) with `generator`. Rows by `estimate`:
    "exact_expectation" (the exact expected update, `expected_updates`, R14), "batch" (one per batch; cosine,
    cosine_to_rloo, relative norm |d| / |grad J|), "mean_over_batches" (the direction averaged over the n_batches
    batches) and, at the largest G only, "bootstrap_of_mean" (`n_bootstrap` rows, batch = resample index: the cosine
    of the mean over batches resampled with replacement, from `bootstrap_generator(generator)`; the same resamples
    for every algorithm, real and null).

    With `null` (default), every batch also gives the null rows (reward_permuted = True): the same estimators on
    the same completions with the rewards permuted within each group (`permute_within_groups`, one permutation
    per group and batch, from `null_generator_`, default `null_generator(generator)`); their cosine_to_rloo is to
    the null RLOO direction (nan when "rloo" is not in `null_algos`). Each null direction costs one more backward
    pass on the batch's graph (no sampling, no forward): the null of the algorithm B3 decides on (GRPO, the
    default) adds about a quarter to the run time. The real rows (reward_permuted = False) are the same numbers as
    without the null, and a null algorithm's rows do not depend on which others are in `null_algos` (one
    permutation per group and batch, whatever the algorithms). The permuted rewards' exact expected update is the
    zero vector, so the null has no exact_expectation rows.
    """
    j, grad_j, py = objective_gradient(model, prompt_ids, answers, digit_ids, tau, reward, max_rows)
    exact = expected_updates(model, prompt_ids, answers, digit_ids, tau, reward, group_sizes, ALGOS,
                             scale_rewards, max_rows)
    comps = all_completions(answers.shape[1], device=prompt_ids.device)
    r_all = rewards_all(comps, answers, reward)
    gnorm = float(grad_j.norm())
    perm_gen = (null_generator_ or null_generator(generator)) if null else None
    boot_gen = bootstrap_generator(generator)
    kinds = [(False, "", ALGOS)] + ([(True, "null_", tuple(null_algos))] if null else [])
    rows = []

    def row(g, b, a, estimate, permuted, direction, to_rloo, frac):
        return {"group_size": g, "batch": b, "algo": a, "estimate": estimate, "reward_permuted": permuted,
                "cosine": _cos(direction, grad_j), "cosine_to_rloo": _cos(direction, to_rloo),
                "rel_norm": float(direction.norm()) / gnorm, "frac_reward_zero_std": frac}

    bar = tqdm(total=len(group_sizes) * n_batches, desc="update alignment", mininterval=2.0)
    for g in group_sizes:
        rows += [row(g, -1, a, "exact_expectation", False, exact[a, g], exact["rloo", g], float("nan"))
                 for a in ALGOS]
        batches = {p + a: torch.empty(n_batches, len(grad_j), dtype=grad_j.dtype, device=grad_j.device)
                   for _, p, algos in kinds for a in algos}
        frac_zero = []
        for b in range(n_batches):
            bar.update()
            idx = torch.multinomial(py, g, replacement=True, generator=generator)  # [Q, G]
            rewards = r_all.gather(1, idx)
            frac_zero.append(float((rewards.std(-1) == 0).double().mean()))
            nulls = permute_within_groups(rewards, perm_gen) if null else None
            dirs = update_directions(model, prompt_ids, comps[idx], rewards, digit_ids, tau, scale_rewards,
                                     null_rewards=nulls, null_algos=tuple(null_algos))
            for permuted, p, algos in kinds:
                for a in algos:
                    batches[p + a][b] = dirs[p + a]
                    rows.append(row(g, b, a, "batch", permuted, dirs[p + a], dirs.get(p + "rloo"), frac_zero[-1]))
        for permuted, p, algos in kinds:
            for a in algos:
                mean = batches[p + a].mean(0)
                rloo_mean = batches[p + "rloo"].mean(0) if p + "rloo" in batches else None
                rows.append(row(g, -1, a, "mean_over_batches", permuted, mean, rloo_mean, float(np.mean(frac_zero))))
        if g == max(group_sizes):  # R14 decides at the largest G: its bootstrap only
            counts = boot_gen.multinomial(n_batches, np.full(n_batches, 1.0 / n_batches), size=n_bootstrap)
            weights = torch.as_tensor(counts / n_batches)
            for permuted, p, algos in kinds:
                for a in algos:
                    boot = bootstrap_mean_cosines(batches[p + a], grad_j, weights)
                    rows += [{"group_size": g, "batch": k, "algo": a, "estimate": "bootstrap_of_mean",
                              "reward_permuted": permuted, "cosine": float(c), "cosine_to_rloo": float("nan"),
                              "rel_norm": float("nan"), "frac_reward_zero_std": float("nan")}
                             for k, c in enumerate(boot)]
        del batches
        if log is not None:
            m = {(pm, a): np.mean([r["cosine"] for r in rows if r["group_size"] == g and r["algo"] == a
                                   and r["estimate"] == "batch" and r["reward_permuted"] == pm])
                 for pm, _, algos in kinds for a in algos}
            ex = {a: _cos(exact[a, g], grad_j) for a in ALGOS}
            log.info("G %d: mean cosine to grad J  reinforce %.3f  rloo %.3f  grpo %.3f%s;  exact expectation  "
                     "reinforce %.6f  rloo %.6f  grpo %.4f", g, m[False, "reinforce"], m[False, "rloo"],
                     m[False, "grpo"], "".join(f"  null {a} {m[True, a]:.3f}" for a in (null_algos if null else ())),
                     ex["reinforce"], ex["rloo"], ex["grpo"])
    bar.close()
    df = pd.DataFrame(rows)
    df["objective"] = j
    df["grad_norm"] = gnorm
    df["n_params"] = int(grad_j.numel())
    return df
