"""Linear-quadratic system with a linear policy and additive (or state-dependent) Gaussian action noise.

    x_{t+1} = A x_t + B u_t,   u_t = K x_t + sigma(x_t) eps_t,   eps_t ~ N(0, I_m)
    r_t = -(x_t' Q x_t + u_t' R u_t)  (t < T),   r_T = -x_T' Q_T x_T,   return R = sum_t r_t + r_T
    sigma(x) = sigma0 * sqrt(1 + alpha |x|^2)   (alpha = 0: additive noise, the paper's assumption)

The value of the fixed policy is exactly quadratic, V_t(x) = -x' P_t x - c_t, with (F = A + B K)

    P_T = Q_T,  P_t = Q + K'RK + F'P_{t+1}F + alpha sigma0^2 (tr R + tr B'P_{t+1}B) I
    c_T = 0,    c_t = c_{t+1} + sigma0^2 (tr R + tr B'P_{t+1}B)

so grad V_t(x) = -2 P_t x, and J(K) = E_{x0 ~ N(0, x0_std^2 I)} V_0(x0) = -x0_std^2 tr P_0 - c_0, whose exact
gradient in K comes from autograd through the recursion. Everything is float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

DTYPE = torch.float64


@dataclass(frozen=True)
class LQSystem:
    """A random stable LQ problem together with the policy gain K it is evaluated at."""

    A: torch.Tensor  # (n, n)
    B: torch.Tensor  # (n, m)
    Q: torch.Tensor  # (n, n) state cost, positive definite
    R: torch.Tensor  # (m, m) action cost, positive definite
    QT: torch.Tensor  # (n, n) terminal cost
    K: torch.Tensor  # (m, n) policy gain (the parameters theta)
    horizon: int
    sigma: float  # sigma0, the noise scale
    x0_std: float

    @property
    def n(self) -> int:
        return self.A.shape[0]

    @property
    def m(self) -> int:
        return self.B.shape[1]

    @property
    def closed_loop(self) -> torch.Tensor:
        return self.A + self.B @ self.K


def spectral_radius(M: torch.Tensor) -> float:
    return float(torch.linalg.eigvals(M).abs().max())


def random_lq_system(n: int, m: int, horizon: int, sigma: float, x0_std: float, generator: torch.Generator, *,
                     open_loop_radius: float = 0.9, max_closed_loop_radius: float = 0.95, max_alpha: float = 0.0,
                     max_tries: int = 10_000) -> LQSystem:
    """Draw A, B, K, Q, R from `generator`; redraw (deterministically) until rho(A + B K) < max_closed_loop_radius
    and the closed loop is mean-square stable with state-dependent noise up to `max_alpha` (`mean_square_radius`
    < 1: the class of systems of docs/SCIENCE.md R20, whose second moments stay bounded at every alpha of A3).

    A is a Gaussian matrix rescaled to spectral radius `open_loop_radius`; B ~ N(0, 1/n); K ~ N(0, 0.3^2/n);
    Q = I + W W'/(4n), R = I/2 + V V'/(10m) with Gaussian W, V; Q_T = Q.
    """
    g = generator
    for _ in range(max_tries):
        A = torch.randn(n, n, generator=g, dtype=DTYPE)
        A = A * (open_loop_radius / spectral_radius(A))
        B = torch.randn(n, m, generator=g, dtype=DTYPE) / n ** 0.5
        K = 0.3 * torch.randn(m, n, generator=g, dtype=DTYPE) / n ** 0.5
        W = torch.randn(n, n, generator=g, dtype=DTYPE)
        V = torch.randn(m, m, generator=g, dtype=DTYPE)
        if spectral_radius(A + B @ K) < max_closed_loop_radius:
            Q = torch.eye(n, dtype=DTYPE) + W @ W.T / (4 * n)
            R = 0.5 * torch.eye(m, dtype=DTYPE) + V @ V.T / (10 * m)
            sys = LQSystem(A, B, Q, R, Q.clone(), K, int(horizon), float(sigma), float(x0_std))
            if max_alpha <= 0 or mean_square_radius(sys, max_alpha) < 1:
                return sys
    raise RuntimeError(f"no stable closed loop (mean-square stable up to alpha = {max_alpha:g}) found in {max_tries} "
                       "draws")


# --------------------------------------------------------------------------------- exact references
def value_matrices(sys: LQSystem, K: torch.Tensor | None = None, alpha: float = 0.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """P_t (T+1, n, n) and c_t (T+1,) of V_t(x) = -x'P_t x - c_t; differentiable in K."""
    K = sys.K if K is None else K
    A, B, Q, R, T, s2 = sys.A, sys.B, sys.Q, sys.R, sys.horizon, sys.sigma ** 2
    F = A + B @ K
    stage = Q + K.T @ R @ K
    eye = torch.eye(sys.n, dtype=DTYPE)
    P, c = sys.QT, torch.zeros((), dtype=DTYPE)
    Ps, cs = [P], [c]
    for _ in range(T):
        noise_cost = torch.trace(R) + torch.trace(B.T @ P @ B)
        P, c = stage + F.T @ P @ F + alpha * s2 * noise_cost * eye, c + s2 * noise_cost
        Ps.append(P)
        cs.append(c)
    return torch.stack(Ps[::-1]), torch.stack(cs[::-1])


def objective(sys: LQSystem, K: torch.Tensor | None = None, alpha: float = 0.0) -> torch.Tensor:
    """J(K) = E_{x0 ~ N(0, x0_std^2 I)} V_0(x0) = -x0_std^2 tr P_0 - c_0."""
    P, c = value_matrices(sys, K, alpha)
    return -sys.x0_std ** 2 * torch.trace(P[0]) - c[0]


def exact_policy_gradient(sys: LQSystem, alpha: float = 0.0) -> torch.Tensor:
    """grad_K J (m, n) by float64 autograd through the P_t, c_t recursion."""
    K = sys.K.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(sys, K, alpha), K)
    return grad.detach()


def value(sys: LQSystem, t: torch.Tensor, x: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """V_t(x) for a batch: t (N,) integer times, x (N, n)."""
    P, c = value_matrices(sys, alpha=alpha)
    return -torch.einsum("ni,nij,nj->n", x, P[t], x) - c[t]


def value_gradient(sys: LQSystem, t: torch.Tensor, x: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """grad V_t(x) = -2 P_t x for a batch: t (N,), x (N, n) -> (N, n)."""
    P, _ = value_matrices(sys, alpha=alpha)
    return -2 * torch.einsum("nij,nj->ni", P[t].detach(), x)


def mean_square_radius(sys: LQSystem, alpha: float) -> float:
    """Spectral radius of the second-moment map X -> F X F' + alpha sigma0^2 tr(X) B B'.

    Below 1 the closed loop with state-dependent noise is mean-square stable (second moments stay bounded).
    """
    F, B, n = sys.closed_loop, sys.B, sys.n
    op = torch.kron(F, F) + alpha * sys.sigma ** 2 * torch.outer((B @ B.T).reshape(-1),
                                                                  torch.eye(n, dtype=DTYPE).reshape(-1))
    return spectral_radius(op)


# --------------------------------------------------------------------------------- batched rollouts
def rollout(sys: LQSystem, x0: torch.Tensor, eps: torch.Tensor, *, K: torch.Tensor | None = None,
            t0: torch.Tensor | None = None, alpha: float = 0.0, detach_noise: bool = False,
            keep_states: bool = False):
    """Batched rollouts; returns the returns R (N,) and, with keep_states, the states [x_0..x_T] (each (N, n)).

    x0 (N, n) start states; eps (N, T, m) standard-normal action noise. K is (m, n) or one gain per rollout
    (N, m, n) (so autograd gives per-rollout gradients). t0 (N,) optional start times: row i starts at time
    t0[i] from x0[i], uses eps[i, t] for t >= t0[i] and collects the rewards from t0[i] on (the return-to-go).
    detach_noise: the noise sample sigma(x) eps is a constant for autograd (a sampler that is not
    reparameterized); otherwise the noise is fully reparameterized. The kept states are nodes of the graph,
    so autograd.grad(R.sum(), states) gives the costates.

    Internally the batch is the last axis ((n, N) layout): products with small matrices are faster that way.
    """
    K = sys.K if K is None else K
    T = sys.horizon
    A, B, Q, R, QT = sys.A, sys.B, sys.Q, sys.R, sys.QT
    epsT = eps.permute(1, 2, 0).contiguous()  # (T, m, N)
    xT = x0.T.contiguous()  # (n, N)
    ret = torch.zeros(x0.shape[0], dtype=x0.dtype)
    states = [x0]
    act = None if t0 is None else t0[None, :]
    for t in range(T):
        mean = K @ xT if K.dim() == 2 else (K * xT.T[:, None, :]).sum(-1).T
        if alpha == 0.0:
            noise = sys.sigma * epsT[t]
        else:
            noise = sys.sigma * torch.sqrt(1 + alpha * (xT * xT).sum(0)) * epsT[t]
        if detach_noise:
            noise = noise.detach()
        u = mean + noise  # (m, N)
        r = -((Q @ xT) * xT).sum(0) - ((R @ u) * u).sum(0)
        x_next = A @ xT + B @ u
        if act is None:
            ret, xT = ret + r, x_next
        else:
            active = act <= t
            ret = ret + torch.where(active[0], r, torch.zeros_like(r))
            xT = torch.where(active, x_next, xT)
        if keep_states:  # expose x_{t+1} as an (N, n) node that the rest of the rollout depends on
            x = xT.T
            states.append(x)
            xT = x.T
    ret = ret - ((QT @ xT) * xT).sum(0)
    return (ret, states) if keep_states else ret


def sample_start(sys: LQSystem, N: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x0 ~ N(0, x0_std^2 I) (N, n) and eps (N, T, m), drawn in that order from `generator`."""
    x0 = sys.x0_std * torch.randn(N, sys.n, generator=generator, dtype=DTYPE)
    eps = torch.randn(N, sys.horizon, sys.m, generator=generator, dtype=DTYPE)
    return x0, eps


def sample_probes(sys: LQSystem, n_probes: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Probe states (t, x): t uniform on {0..T-1}, x ~ N(0, x0_std^2 I)."""
    t = torch.randint(0, sys.horizon, (n_probes,), generator=generator)
    x = sys.x0_std * torch.randn(n_probes, sys.n, generator=generator, dtype=DTYPE)
    return t, x
