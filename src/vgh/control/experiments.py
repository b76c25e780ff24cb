"""The Part-A experiments: each runs over seeds and returns a tidy table (one row per measurement).

Random streams: the LQ system comes from `system_seed`, the pendulum policy from `policy_seed`; every
(experiment, seed) pair gets its own generator (`stream`), from which probe states and all noise are drawn
in a fixed order, so the same config and seed give the same numbers.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import torch

from . import estimators as es
from . import lq as _lq
from . import pendulum as _pe

log = logging.getLogger("vgh")

STREAMS = {"a1": 1, "a2_lq": 2, "a2_pendulum": 3, "a3": 4}


def stream(seed: int, experiment: str) -> torch.Generator:
    """An independent torch generator for one (experiment, seed) pair."""
    state = np.random.SeedSequence([int(seed), STREAMS[experiment]]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


def lq_system(n: int, m: int, horizon: int, sigma: float, x0_std: float, system_seed: int) -> _lq.LQSystem:
    """The random stable LQ system of the config (`control.lq`)."""
    return _lq.random_lq_system(n, m, horizon, sigma, x0_std, torch.Generator().manual_seed(int(system_seed)))


def lq_description(sys: _lq.LQSystem) -> dict[str, float]:
    return {"closed_loop_radius": _lq.spectral_radius(sys.closed_loop),
            "open_loop_radius": _lq.spectral_radius(sys.A),
            "J": float(_lq.objective(sys)),
            "grad_norm": float(torch.linalg.norm(_lq.exact_policy_gradient(sys)))}


# ---------------------------------------------------------------------------------------------- A1
def run_a1(sys: _lq.LQSystem, n_rollouts: list[int], seeds: list[int], chunk: int = 1 << 13) -> pd.DataFrame:
    """SF (leave-one-out baseline) and PD estimates of grad_K J from the same N rollouts, vs the exact gradient.

    One row per (seed, N, estimator): rel_error = |g_hat - grad J| / |grad J|, per_rollout_var =
    tr Cov(per-rollout term) / |grad J|^2, cosine(g_hat, grad J).
    """
    g_ref = _lq.exact_policy_gradient(sys)
    rows = []
    for seed in seeds:
        gen = stream(seed, "a1")
        for N in n_rollouts:
            sf, pd_ = es.lq_sf_pd_terms(sys, int(N), gen, chunk)
            for name, terms in (("SF", sf), ("PD", pd_)):
                rows.append({"seed": seed, "n_rollouts": int(N), "estimator": name,
                             **es.mean_estimate_stats(terms, g_ref)})
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


def run_a2_lq(sys: _lq.LQSystem, n_probes: int, continuations: list[int], seeds: list[int],
              chunk: int = 1 << 13) -> pd.DataFrame:
    """Mean costate over M continuations from probe states (t, x) vs the exact value gradient -2 P_t x.

    Probe states are drawn per seed (t uniform on {0..T-1}, x ~ N(0, x0_std^2 I)); every M uses fresh noise.
    One row per (seed, M, probe, coordinate): costate (mean), se (its standard error), reference.
    """
    rows = []
    for seed in seeds:
        gen = stream(seed, "a2_lq")
        t, x = _lq.sample_probes(sys, n_probes, gen)
        ref = _lq.value_gradient(sys, t, x)
        for M in continuations:
            mean, se = es.lq_conditional_costates(sys, t, x, int(M), gen, chunk=chunk)["reparameterized"]
            rows += _probe_rows({"seed": seed, "continuations": int(M)}, mean, se, ref, t)
        log.info("A2 LQ seed %d done", seed)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- A2 (pendulum)
def pendulum_setup(horizon: int, dt: float, sigma: float, hidden: int, policy_seed: int
                   ) -> tuple[_pe.Pendulum, _pe.MLPPolicy]:
    env = _pe.Pendulum(horizon=int(horizon), dt=float(dt), sigma=float(sigma))
    return env, _pe.make_policy(int(hidden), torch.Generator().manual_seed(int(policy_seed)))


def run_a2_pendulum(env: _pe.Pendulum, policy: _pe.MLPPolicy, n_probes: int, continuations: list[int],
                    smoothing_scales: list[float], smoothing_samples: int, seeds: list[int],
                    chunk: int = 1 << 12) -> pd.DataFrame:
    """Mean costate (M continuations, autograd through the rollout) vs the Gaussian-smoothing reference.

    Probe start states are drawn per seed. One row per (seed, probe, method, size, scale, coordinate) with
    method "costate" (size = M, scale NaN), "smoothing" (size = antithetic pairs, scale = s) or "noise_free"
    (g0: BPTT through the sigma = 0 rollout of the same policy, `pendulum.noise_free_gradient`; se = 0. It
    shows how far the noise moves the value gradient, i.e. what the reference has to resolve: R2's power and
    closeness sub-checks); value and se.
    """
    rows = []
    for seed in seeds:
        gen = stream(seed, "a2_pendulum")
        x = _pe.sample_probes(n_probes, gen)

        def add(method, size, scale, mean, se):
            for q in range(n_probes):
                for k in range(2):
                    rows.append({"seed": seed, "probe": q, "theta0": float(x[q, 0]), "omega0": float(x[q, 1]),
                                 "method": method, "size": int(size), "scale": scale, "coord": k,
                                 "value": float(mean[q, k]), "se": float(se[q, k])})

        for M in continuations:
            add("costate", M, math.nan, *_pe.conditional_costates(env, policy, x, int(M), gen, chunk))
        g0 = _pe.noise_free_gradient(env, policy, x)
        add("noise_free", 1, math.nan, g0, torch.zeros_like(g0))
        for s in smoothing_scales:
            add("smoothing", smoothing_samples, float(s),
                *_pe.smoothing_gradient(env, policy, x, float(s), int(smoothing_samples), gen, chunk))
        log.info("A2 pendulum seed %d done", seed)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- A3
def run_a3(sys: _lq.LQSystem, alphas: list[float], n_probes: int, continuations: int, seeds: list[int],
           chunk: int = 1 << 13) -> pd.DataFrame:
    """State-dependent noise sigma(x) = sigma0 sqrt(1 + alpha |x|^2): detached vs reparameterized costates.

    Both backward passes share the same forward noise; the reference is the exact -2 P_t^alpha x. One row per
    (seed, alpha, backward, probe, coordinate), with the mean-square stability radius of each alpha.
    """
    rows = []
    for seed in seeds:
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
