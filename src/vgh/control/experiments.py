"""The Part-A experiments: each runs over seeds and returns a tidy table (one row per measurement).

A seed is an independent replicate of the experiment (docs/SCIENCE.md, R20): seed s draws its own LQ system from the
config's class (`lq_system`) and its own pendulum policy (`pendulum_setup`); every (experiment, seed) pair gets its
own generator (`stream`), from which probe states and all noise are drawn in a fixed order, so the same config and
seed give the same numbers. A seed's LQ system is the same in A1, A2 and A3.
"""
from __future__ import annotations

import logging
import math

import pandas as pd
import torch

from ..streams import torch_generator
from . import estimators as es
from . import lq as _lq
from . import pendulum as _pe

log = logging.getLogger("vgh")


def stream(seed: int, experiment: str) -> torch.Generator:
    """An independent torch generator for one (experiment, seed) pair."""
    return torch_generator(int(seed), "control", experiment)


def lq_system(seed: int, n: int, m: int, horizon: int, sigma: float, x0_std: float,
              max_alpha: float = 0.0) -> _lq.LQSystem:
    """Seed `seed`'s random stable LQ system from the config's class (`control.lq`; mean-square stable up to
    `max_alpha`, the largest alpha of A3), drawn from its own stream (R20)."""
    return _lq.random_lq_system(n, m, horizon, sigma, x0_std, stream(seed, "lq_system"), max_alpha=max_alpha)


def lq_description(sys: _lq.LQSystem) -> dict[str, float]:
    return {"closed_loop_radius": _lq.spectral_radius(sys.closed_loop),
            "open_loop_radius": _lq.spectral_radius(sys.A),
            "J": float(_lq.objective(sys)),
            "grad_norm": float(torch.linalg.norm(_lq.exact_policy_gradient(sys)))}


# ---------------------------------------------------------------------------------------------- A1
def run_a1(lq: dict, max_alpha: float, n_rollouts: list[int], seeds: list[int], chunk: int = 1 << 13
           ) -> pd.DataFrame:
    """SF (leave-one-out baseline) and PD estimates of grad_K J from the same N rollouts, vs the exact gradient of
    each seed's own system (`lq_system(seed, **lq, max_alpha=max_alpha)`).

    One row per (seed, N, estimator): rel_error = |g_hat - grad J| / |grad J|, per_rollout_var =
    tr Cov(per-rollout term) / |grad J|^2, cosine(g_hat, grad J), and the seed system's |grad J| and closed-loop
    spectral radius.
    """
    rows = []
    for seed in seeds:
        sys = lq_system(seed, **lq, max_alpha=max_alpha)
        desc = lq_description(sys)
        g_ref = _lq.exact_policy_gradient(sys)
        gen = stream(seed, "a1")
        for N in n_rollouts:
            sf, pd_ = es.lq_sf_pd_terms(sys, int(N), gen, chunk)
            for name, terms in (("SF", sf), ("PD", pd_)):
                rows.append({"seed": seed, "n_rollouts": int(N), "estimator": name,
                             **es.mean_estimate_stats(terms, g_ref), "grad_norm": desc["grad_norm"],
                             "closed_loop_radius": desc["closed_loop_radius"]})
        log.info("A1 seed %d: SF rel. error at N=%d: %.4f, PD: %.4f", seed, n_rollouts[-1],
                 rows[-2]["rel_error"], rows[-1]["rel_error"])
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- A2 (LQ)
def _probe_rows(base: dict, mean: torch.Tensor, se: torch.Tensor, ref: torch.Tensor, t: torch.Tensor,
                extra: dict | None = None) -> list[dict]:
    rows = []
    for q in range(mean.shape[0]):
        for k in range(mean.shape[1]):
            rows.append({**base, "probe": q, "t": int(t[q]), "coord": k, "costate": float(mean[q, k]),
                         "se": float(se[q, k]), "reference": float(ref[q, k]), **(extra or {})})
    return rows


def run_a2_lq(lq: dict, max_alpha: float, n_probes: int, continuations: list[int], seeds: list[int],
              chunk: int = 1 << 13) -> pd.DataFrame:
    """Mean costate over M continuations from probe states (t, x) vs the exact value gradient -2 P_t x of each
    seed's own system.

    Probe states are drawn per seed (t uniform on {0..T-1}, x ~ N(0, x0_std^2 I)); every M uses fresh noise.
    One row per (seed, M, probe, coordinate): costate (mean), se (its standard error), reference.
    """
    rows = []
    for seed in seeds:
        sys = lq_system(seed, **lq, max_alpha=max_alpha)
        gen = stream(seed, "a2_lq")
        t, x = _lq.sample_probes(sys, n_probes, gen)
        ref = _lq.value_gradient(sys, t, x)
        for M in continuations:
            mean, se = es.lq_conditional_costates(sys, t, x, int(M), gen, chunk=chunk)["reparameterized"]
            rows += _probe_rows({"seed": seed, "continuations": int(M)}, mean, se, ref, t)
        log.info("A2 LQ seed %d done", seed)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- A2 (pendulum)
def pendulum_setup(seed: int, horizon: int, dt: float, sigma: float, hidden: int
                   ) -> tuple[_pe.Pendulum, _pe.MLPPolicy]:
    """The pendulum and seed `seed`'s own policy weights, from its own stream (R20)."""
    env = _pe.Pendulum(horizon=int(horizon), dt=float(dt), sigma=float(sigma))
    return env, _pe.make_policy(int(hidden), stream(seed, "pendulum_policy"))


def run_a2_pendulum(pendulum: dict, n_probes: int, continuations: list[int], smoothing_scales: list[float],
                    smoothing_samples: int, seeds: list[int], power_target: float, max_smoothing_samples: int,
                    chunk: int = 1 << 12) -> pd.DataFrame:
    """Mean costate (M continuations, autograd through the rollout) vs the Gaussian-smoothing reference, each seed
    with its own policy (`pendulum_setup(seed, **pendulum)`: horizon, dt, sigma, hidden).

    Probe start states are drawn per seed. One row per (seed, probe, method, size, scale, coordinate) with
    method "costate" (size = M, scale NaN), "smoothing" (size = antithetic pairs, scale = s) or "noise_free"
    (g0: BPTT through the sigma = 0 rollout of the same policy, `pendulum.noise_free_gradient`; se = 0. It
    shows how far the noise moves the value gradient, i.e. what the reference has to resolve: R2's power and
    closeness sub-checks); value and se. R28: the headline scale (the first) uses the budget
    `pendulum.reference_budget` fixed from a pilot of `smoothing_samples` pairs on the seed's own pilot stream
    (rows with method "pilot"), never from the reference's own pairs; the other scales `smoothing_samples`.
    """
    rows = []
    for seed in seeds:
        env, policy = pendulum_setup(seed, **pendulum)
        gen = stream(seed, "a2_pendulum")
        x = _pe.sample_probes(n_probes, gen)
        g0 = _pe.noise_free_gradient(env, policy, x)
        headline = float(smoothing_scales[0])
        pilot = _pe.smoothing_gradient(env, policy, x, headline, int(smoothing_samples),
                                       stream(seed, "a2_pendulum_pilot"), chunk)
        pilot_power = _pe.pooled_power(g0, *pilot)
        budget = _pe.reference_budget(pilot_power, int(smoothing_samples), power_target, int(max_smoothing_samples))

        def add(method, size, scale, mean, se):
            for q in range(n_probes):
                for k in range(2):
                    rows.append({"seed": seed, "probe": q, "theta0": float(x[q, 0]), "omega0": float(x[q, 1]),
                                 "method": method, "size": int(size), "scale": scale, "coord": k,
                                 "value": float(mean[q, k]), "se": float(se[q, k])})

        for M in continuations:
            add("costate", M, math.nan, *_pe.conditional_costates(env, policy, x, int(M), gen, chunk))
        add("noise_free", 1, math.nan, g0, torch.zeros_like(g0))
        add("pilot", smoothing_samples, headline, *pilot)
        for i, s in enumerate(smoothing_scales):
            n = budget if i == 0 else int(smoothing_samples)
            add("smoothing", n, float(s), *_pe.smoothing_gradient(env, policy, x, float(s), n, gen, chunk))
        log.info("A2 pendulum seed %d done (pilot power %.2f: %d pairs at s = %g)", seed, pilot_power, budget,
                 headline)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- A3
def run_a3(lq: dict, alphas: list[float], n_probes: int, continuations: int, seeds: list[int],
           chunk: int = 1 << 13) -> pd.DataFrame:
    """State-dependent noise sigma(x) = sigma0 sqrt(1 + alpha |x|^2): detached vs reparameterized costates, on each
    seed's own system (mean-square stable up to the largest alpha).

    Both backward passes share the same forward noise; the reference is the exact -2 P_t^alpha x. One row per
    (seed, alpha, backward, probe, coordinate), with the mean-square stability radius of the seed's system at alpha.
    """
    rows = []
    for seed in seeds:
        sys = lq_system(seed, **lq, max_alpha=max(alphas))
        gen = stream(seed, "a3")
        t, x = _lq.sample_probes(sys, n_probes, gen)
        for alpha in alphas:
            ref = _lq.value_gradient(sys, t, x, alpha=float(alpha))
            out = es.lq_conditional_costates(sys, t, x, int(continuations), gen, alpha=float(alpha),
                                             backward=("reparameterized", "detached"), chunk=chunk)
            radius = _lq.mean_square_radius(sys, float(alpha))
            for mode, (mean, se) in out.items():
                rows += _probe_rows({"seed": seed, "alpha": float(alpha), "backward": mode,
                                     "continuations": int(continuations)}, mean, se, ref, t,
                                    {"ms_radius": radius})
        log.info("A3 seed %d done", seed)
    return pd.DataFrame(rows)
