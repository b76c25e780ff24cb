"""Torque-driven pendulum with a tanh-MLP policy and additive Gaussian action noise (no closed form).

State x = (theta, omega), theta = 0 upright. Semi-implicit Euler with step dt:

    omega' = omega + dt * (g/l sin theta + u / (m l^2) - damping * omega),   theta' = theta + dt * omega'
    u = mu(x) + sigma eps,   r = -(1 - cos theta) - c_omega omega^2 - c_u u^2   (t < T),   no terminal reward

mu is a one-hidden-layer tanh MLP of (sin theta, cos theta, omega) with seeded weights. The reference value
gradient never differentiates through the rollout: Gaussian smoothing of the start state with antithetic
pairs and independent action noise for every evaluation,

    grad V(x) ~ E[(R(x + s delta) - R(x - s delta)) delta] / (2 s),   delta ~ N(0, I),

which is the gradient of the smoothed value E_delta V(x + s delta) (bias O(s^2)); its variance grows like
1/s^2 because the two evaluations share no noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from .estimators import RunningMean, _chunks, conditional_mean_gradient

DTYPE = torch.float64


@dataclass(frozen=True)
class Pendulum:
    """The torque-driven pendulum. horizon, dt and sigma come from the config (`control.pendulum`, defaults in
    the schema); the physical constants below are fixed by the experiment."""

    horizon: int
    dt: float
    sigma: float
    gravity: float = 10.0
    length: float = 1.0
    mass: float = 1.0
    damping: float = 0.0
    c_omega: float = 0.1
    c_u: float = 0.001


@dataclass(frozen=True)
class MLPPolicy:
    """mu(x) = w2 . tanh(W1 phi(x) + b1) + b2 with phi(x) = (sin theta, cos theta, omega)."""

    W1: torch.Tensor  # (h, 3)
    b1: torch.Tensor  # (h,)
    w2: torch.Tensor  # (h,)
    b2: torch.Tensor  # ()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        th = x[:, 0]
        return self.from_features(torch.sin(th), torch.cos(th), x[:, 1])

    def from_features(self, sin_th: torch.Tensor, cos_th: torch.Tensor, om: torch.Tensor) -> torch.Tensor:
        # batch on the last axis ((h, N) layout), faster for small matrices;
        # tanh(z) = 2 sigmoid(2z) - 1: the same function, about twice as fast as torch.tanh in float64 on CPU
        z = torch.addmm(self.b1[:, None], self.W1, torch.stack([sin_th, cos_th, om], 0))
        return self.w2 @ (2 * torch.sigmoid(2 * z) - 1) + self.b2


def make_policy(hidden: int, generator: torch.Generator, torque_scale: float = 2.0) -> MLPPolicy:
    """Seeded Gaussian weights: W1 ~ N(0, 1/3), b1 ~ N(0, 0.1^2), w2 ~ N(0, torque_scale^2 / hidden), b2 = 0."""
    W1 = torch.randn(hidden, 3, generator=generator, dtype=DTYPE) / math.sqrt(3)
    b1 = 0.1 * torch.randn(hidden, generator=generator, dtype=DTYPE)
    w2 = torque_scale * torch.randn(hidden, generator=generator, dtype=DTYPE) / math.sqrt(hidden)
    return MLPPolicy(W1, b1, w2, torch.zeros((), dtype=DTYPE))


def rollout(env: Pendulum, policy: MLPPolicy, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Returns R (N,) of batched rollouts from x0 (N, 2) with standard-normal action noise eps (N, T)."""
    th, om = x0[:, 0], x0[:, 1]
    ret = torch.zeros(x0.shape[0], dtype=x0.dtype)
    a = env.gravity / env.length
    b = 1.0 / (env.mass * env.length ** 2)
    for t in range(env.horizon):
        sin_th, cos_th = torch.sin(th), torch.cos(th)
        u = policy.from_features(sin_th, cos_th, om) + env.sigma * eps[:, t]
        ret = ret - (1 - cos_th) - env.c_omega * om * om - env.c_u * u * u
        om = om + env.dt * (a * sin_th + b * u - env.damping * om)
        th = th + env.dt * om
    return ret


def sample_probes(n_probes: int, generator: torch.Generator, max_omega: float = 1.0) -> torch.Tensor:
    """Probe start states: theta ~ U(-pi, pi), omega ~ U(-max_omega, max_omega); (P, 2)."""
    u = torch.rand(n_probes, 2, generator=generator, dtype=DTYPE)
    return torch.stack([math.pi * (2 * u[:, 0] - 1), max_omega * (2 * u[:, 1] - 1)], -1)


def conditional_costates(env: Pendulum, policy: MLPPolicy, x: torch.Tensor, M: int, generator: torch.Generator,
                         chunk: int = 1 << 16) -> tuple[torch.Tensor, torch.Tensor]:
    """E[lambda_0 | x_0 = x] = mean over M rollouts from x (fresh noise) of dR/dx_0: (mean, se), (P, 2) each."""

    def return_fn(xr: torch.Tensor) -> dict[str, torch.Tensor]:
        eps = torch.randn(xr.shape[0], env.horizon, generator=generator, dtype=DTYPE)
        return {"costate": rollout(env, policy, xr, eps)}

    return conditional_mean_gradient(return_fn, x, M, chunk)["costate"]


def noise_free_gradient(env: Pendulum, policy: MLPPolicy, x: torch.Tensor) -> torch.Tensor:
    """g0 = dR/dx_0 of the noise-free rollout (sigma = 0) from each probe state x (P, 2), by backprop through
    time: the pathwise gradient of the deterministic policy, (P, 2). Draws no random numbers."""
    x0 = x.detach().clone().requires_grad_(True)
    eps = torch.zeros(x.shape[0], env.horizon, dtype=x.dtype)
    (g,) = torch.autograd.grad(rollout(replace(env, sigma=0.0), policy, x0, eps).sum(), x0)
    return g


@torch.no_grad()
def smoothing_gradient(env: Pendulum, policy: MLPPolicy, x: torch.Tensor, scale: float, n_pairs: int,
                       generator: torch.Generator, chunk: int = 1 << 17) -> tuple[torch.Tensor, torch.Tensor]:
    """Antithetic Gaussian-smoothing estimate of grad V at probe states x (P, 2): (mean, se), (P, 2) each.

    Never differentiates through the rollout: only returns are evaluated, each with its own action noise.
    """
    P, d = x.shape
    acc = RunningMean()
    per_chunk = max(1, chunk // (2 * P))
    for k in _chunks(n_pairs, per_chunk):
        delta = torch.randn(P, k, d, generator=generator, dtype=DTYPE)
        starts = torch.cat([x[:, None] + scale * delta, x[:, None] - scale * delta], 1).reshape(-1, d)
        eps = torch.randn(starts.shape[0], env.horizon, generator=generator, dtype=DTYPE)
        ret = rollout(env, policy, starts, eps).reshape(P, 2 * k)
        diff = ret[:, :k] - ret[:, k:]
        acc.update(diff[..., None] * delta / (2 * scale), dim=1)
    return acc.mean, acc.se


def pooled_power(g0: torch.Tensor, mean: torch.Tensor, se: torch.Tensor) -> float:
    """R2's power of a reference (mean, se) against the noise-free gradient g0, pooled over the probe states (P, 2):
    |g0 - r| / (3 SE), SE = sqrt(sum se^2)."""
    return float((g0 - mean).norm() / (3 * se.norm()))


def reference_budget(pilot_power: float, smoothing_samples: int, power_target: float, max_samples: int) -> int:
    """R28: the antithetic pairs of the headline reference, fixed from a pilot of `smoothing_samples` pairs whose
    pooled power was `pilot_power`: enough for `power_target` (SE falls as n^-1/2), never fewer than
    `smoothing_samples`, never more than `max_samples`."""
    if not pilot_power > 0:  # a pilot that saw no distance at all (or nan): the cap
        return int(max_samples)
    need = math.ceil(smoothing_samples * (power_target / pilot_power) ** 2)
    return int(min(max(smoothing_samples, need), max_samples))
