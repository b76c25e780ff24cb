"""Gradient estimators on batched rollouts: score function (SF), pathwise (PD) and costates.

- SF (what REINFORCE / GRPO / PPO at ratio 1 compute): g_SF = mean_i (R_i - b_i) sum_t grad_K log pi(u_it | x_it)
  with the leave-one-out baseline b_i = mean_{j != i} R_j (unbiased); for the LQ policy
  grad_K log pi = eps x' / sigma.
- PD (backprop through time, reparameterized noise): autograd of mean_i R_i(K, eps_i) in K.
- Costates lambda_t = dR/dx_t along a rollout (policy inside the derivative, noise fixed): their
  conditional mean E[lambda_t | x_t = x] from M continuations started at (t, x) with fresh noise.

All estimators are batched over rollouts; large batches are processed in chunks (a loop over chunks, never
over rollouts), so memory stays bounded.
"""
from __future__ import annotations

from typing import Callable

import torch

from . import lq as _lq

DTYPE = torch.float64


class RunningMean:
    """Mean and variance over a stream of batches (Chan et al.'s pairwise update), per element of a shape."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, batch: torch.Tensor, dim: int = 0) -> None:
        k = batch.shape[dim]
        bmean = batch.mean(dim)
        bm2 = ((batch - bmean.unsqueeze(dim)) ** 2).sum(dim)
        if self.mean is None:
            self.n, self.mean, self.m2 = k, bmean, bm2
            return
        n = self.n + k
        delta = bmean - self.mean
        self.mean = self.mean + delta * (k / n)
        self.m2 = self.m2 + bm2 + delta ** 2 * (self.n * k / n)
        self.n = n

    @property
    def var(self) -> torch.Tensor:
        return self.m2 / (self.n - 1)

    @property
    def se(self) -> torch.Tensor:
        """Standard error of the mean, per element."""
        return torch.sqrt(self.var / self.n)


def _chunks(total: int, chunk: int):
    done = 0
    while done < total:
        k = min(chunk, total - done)
        yield k
        done += k


# ------------------------------------------------------------------------------------- SF and PD
def loo_sf_terms(returns: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Per-rollout SF terms (R_i - b_i) s_i with the leave-one-out baseline; their mean is g_SF.

    returns (N,), scores (N, ...) = sum_t grad log pi of rollout i.
    """
    N = returns.shape[0]
    baseline = (returns.sum() - returns) / (N - 1)
    adv = returns - baseline
    return adv.reshape(N, *([1] * (scores.dim() - 1))) * scores


def lq_sf_pd_terms(sys: _lq.LQSystem, N: int, generator: torch.Generator, chunk: int = 1 << 15
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-rollout SF and PD gradient terms (N, m, n) from the same N rollouts x0 ~ N(0, x0_std^2 I).

    PD: each rollout gets its own copy of K, so one backward pass of sum_i R_i gives every dR_i/dK.
    SF: (R_i - b_i) sum_t eps_it x_it' / sigma with the leave-one-out baseline b_i.
    The estimates are the means over rollouts of each.
    """
    m, n = sys.m, sys.n
    rets, scores, pds = [], [], []
    for k in _chunks(N, chunk):
        x0, eps = _lq.sample_start(sys, k, generator)
        K = sys.K.expand(k, m, n).clone().requires_grad_(True)
        ret, states = _lq.rollout(sys, x0, eps, K=K, keep_states=True)
        (pd,) = torch.autograd.grad(ret.sum(), K)
        xs = torch.stack([s.detach() for s in states[:-1]], 1)  # (k, T, n)
        scores.append(torch.einsum("ktm,ktn->kmn", eps, xs) / sys.sigma)
        rets.append(ret.detach())
        pds.append(pd)
    return loo_sf_terms(torch.cat(rets), torch.cat(scores)), torch.cat(pds)


def mean_estimate_stats(terms: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """Relative error of the mean of per-rollout terms vs a reference, and the per-rollout variance.

    per_rollout_var = tr Cov(term) / |reference|^2 (so the expected squared relative error is about
    per_rollout_var / N).
    """
    N = terms.shape[0]
    flat = terms.reshape(N, -1)
    ref = reference.reshape(-1)
    est = flat.mean(0)
    ref_norm = float(torch.linalg.norm(ref))
    return {
        "rel_error": float(torch.linalg.norm(est - ref)) / ref_norm,
        "per_rollout_var": float(flat.var(0).sum()) / ref_norm ** 2,
        "cosine": float(est @ ref / (torch.linalg.norm(est) * ref_norm)),
    }


# ------------------------------------------------------------------------------------- costates
def conditional_mean_gradient(return_fn: Callable[[torch.Tensor], dict[str, torch.Tensor]], x: torch.Tensor,
                              M: int, chunk: int = 1 << 16) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Mean and standard error over M continuations of d(return)/d(start state), per probe state.

    x (P, d) probe states. return_fn(x_rep) gets the probe states repeated (P*k, d, probe-major) as a leaf that
    requires grad, draws its own fresh noise, and returns {name: returns (P*k,)} (several backward passes of
    the same forward noise, e.g. detached vs reparameterized). Returns {name: (mean (P, d), se (P, d))}.
    """
    P, d = x.shape
    acc: dict[str, RunningMean] = {}
    per_chunk = max(1, chunk // P)
    for k in _chunks(M, per_chunk):
        xr = x.detach()[:, None, :].expand(P, k, d).reshape(P * k, d).clone().requires_grad_(True)
        outs = return_fn(xr)
        names = list(outs)
        for i, name in enumerate(names):
            (g,) = torch.autograd.grad(outs[name].sum(), xr, retain_graph=i < len(names) - 1)
            acc.setdefault(name, RunningMean()).update(g.reshape(P, k, d), dim=1)
    return {name: (a.mean, a.se) for name, a in acc.items()}


def lq_conditional_costates(sys: _lq.LQSystem, t: torch.Tensor, x: torch.Tensor, M: int,
                            generator: torch.Generator, *, alpha: float = 0.0,
                            backward: tuple[str, ...] = ("reparameterized",), chunk: int = 1 << 16
                            ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """E[lambda_t | x_t = x] for LQ probe states (t (P,), x (P, n)) from M continuations with fresh noise.

    backward: any of "reparameterized" (u = Kx + sigma(x) eps, all differentiated) and "detached"
    (u = Kx + stopgrad(sigma(x) eps)); all modes share the same noise. Returns {mode: (mean, se)} (P, n) each.
    """
    P = x.shape[0]

    def return_fn(xr: torch.Tensor) -> dict[str, torch.Tensor]:
        k = xr.shape[0] // P
        eps = torch.randn(P * k, sys.horizon, sys.m, generator=generator, dtype=DTYPE)
        t0 = t.repeat_interleave(k)
        return {mode: _lq.rollout(sys, xr, eps, t0=t0, alpha=alpha, detach_noise=(mode == "detached"))
                for mode in backward}

    return conditional_mean_gradient(return_fn, x, M, chunk)
