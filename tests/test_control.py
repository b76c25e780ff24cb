"""Part A library: exact LQ references, SF/PD estimators, costates, the A3 bias, the pendulum reference, checks.

Tolerances come from standard errors (fixed seeds); every test can fail.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from vgh.control import checks as ck
from vgh.control import estimators as es
from vgh.control import experiments as ex
from vgh.control import lq
from vgh.control import pendulum as pe

Z = 4.5  # |z| bound per coordinate (a handful of coordinates per test: false alarm << 1e-3)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def tiny() -> lq.LQSystem:
    return lq.random_lq_system(3, 2, 5, 0.5, 1.0, gen(0))


def test_random_system_is_stable_and_seeded(tiny):
    assert lq.spectral_radius(tiny.closed_loop) < 0.95
    again = lq.random_lq_system(3, 2, 5, 0.5, 1.0, gen(0))
    assert torch.equal(again.A, tiny.A) and torch.equal(again.K, tiny.K)
    assert not torch.equal(lq.random_lq_system(3, 2, 5, 0.5, 1.0, gen(1)).A, tiny.A)
    assert lq.mean_square_radius(tiny, 0.0) == pytest.approx(lq.spectral_radius(tiny.closed_loop) ** 2)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_closed_form_value_matches_monte_carlo(tiny, alpha):
    """V_t(x) = -x'P_t x - c_t (incl. the state-dependent-noise recursion) vs the mean return-to-go."""
    g = gen(1)
    M = 1 << 15
    for t_probe in (0, 3):
        x = torch.randn(1, tiny.n, generator=g, dtype=torch.float64)
        eps = torch.randn(M, tiny.horizon, tiny.m, generator=g, dtype=torch.float64)
        t0 = torch.full((M,), t_probe)
        ret = lq.rollout(tiny, x.expand(M, -1), eps, t0=t0, alpha=alpha)
        v = float(lq.value(tiny, torch.tensor([t_probe]), x, alpha=alpha))
        se = float(ret.std() / M ** 0.5)
        assert abs(float(ret.mean()) - v) < Z * se, (t_probe, float(ret.mean()), v, se)


def test_objective_matches_monte_carlo(tiny):
    M = 1 << 15
    x0, eps = lq.sample_start(tiny, M, gen(2))
    ret = lq.rollout(tiny, x0, eps)
    assert abs(float(ret.mean()) - float(lq.objective(tiny))) < Z * float(ret.std()) / M ** 0.5


def test_exact_gradient_matches_finite_differences(tiny):
    g = lq.exact_policy_gradient(tiny)
    h = 1e-6
    fd = torch.zeros_like(g)
    for i in range(tiny.m):
        for j in range(tiny.n):
            d = torch.zeros_like(tiny.K)
            d[i, j] = h
            fd[i, j] = (lq.objective(tiny, tiny.K + d) - lq.objective(tiny, tiny.K - d)) / (2 * h)
    torch.testing.assert_close(g, fd, rtol=1e-6, atol=1e-6)


def test_loo_baseline():
    r = torch.tensor([1.0, 2.0, 4.0, 7.0], dtype=torch.float64)
    s = torch.ones(4, 1, dtype=torch.float64)
    terms = es.loo_sf_terms(r, s)[:, 0]
    torch.testing.assert_close(terms, (r - r.mean()) * 4 / 3)


def test_sf_and_pd_are_unbiased():
    sys = lq.random_lq_system(2, 1, 4, 0.5, 1.0, gen(3))
    ref = lq.exact_policy_gradient(sys).reshape(-1)
    N = 1 << 16
    sf, pd_ = es.lq_sf_pd_terms(sys, N, gen(4), chunk=1 << 14)
    for terms in (sf, pd_):
        flat = terms.reshape(N, -1)
        z = (flat.mean(0) - ref) / (flat.std(0) / N ** 0.5)
        assert float(z.abs().max()) < Z, z
    # PD has the smaller per-rollout variance here (what makes BPTT attractive)
    assert float(pd_.reshape(N, -1).var(0).sum()) < float(sf.reshape(N, -1).var(0).sum())


def test_per_rollout_pd_gradients_sum_to_batch_gradient(tiny):
    """Per-rollout copies of K give the same total as autograd of mean_i R_i w.r.t. a shared K."""
    N = 64
    _, pd_ = es.lq_sf_pd_terms(tiny, N, gen(5))
    x0, eps = lq.sample_start(tiny, N, gen(5))
    K = tiny.K.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(lq.rollout(tiny, x0, eps, K=K).mean(), K)
    torch.testing.assert_close(pd_.mean(0), g)


def test_one_step_costate_is_hand_derived():
    """T = 1: R = -(x'Qx + u'Ru) - x1'Q_T x1 with u = Kx + sigma eps, x1 = Ax + Bu, so
    dR/dx = -2Qx - 2K'Ru - 2F'Q_T x1 (noise fixed), and E[dR/dx] = -2(Q + K'RK + F'Q_T F) x = -2 P_0 x."""
    sys = lq.random_lq_system(3, 2, 1, 0.7, 1.0, gen(6))
    N = 5
    x0, eps = lq.sample_start(sys, N, gen(7))
    x0 = x0.requires_grad_(True)
    ret, states = lq.rollout(sys, x0, eps, keep_states=True)
    lam = es.costates_along(ret, states)
    x = x0.detach()
    u = x @ sys.K.T + sys.sigma * eps[:, 0]
    x1 = x @ sys.A.T + u @ sys.B.T
    F = sys.closed_loop
    expected = -2 * x @ sys.Q - 2 * u @ sys.R @ sys.K - 2 * x1 @ sys.QT @ F
    torch.testing.assert_close(lam[0], expected)
    torch.testing.assert_close(lam[1], -2 * x1 @ sys.QT)
    P0 = sys.Q + sys.K.T @ sys.R @ sys.K + F.T @ sys.QT @ F
    torch.testing.assert_close(lq.value_gradient(sys, torch.zeros(N, dtype=torch.long), x), -2 * x @ P0)


def test_conditional_costate_equals_value_gradient(tiny):
    g = gen(8)
    t, x = lq.sample_probes(tiny, 3, g)
    mean, se = es.lq_conditional_costates(tiny, t, x, 1 << 14, g)["reparameterized"]
    z = (mean - lq.value_gradient(tiny, t, x)) / se
    assert float(z.abs().max()) < Z, z


def test_costate_regression_recovers_P(tiny):
    """Over ordinary rollouts, the least-squares slope of lambda_t on x_t estimates -2 P_t."""
    N = 1 << 14
    x0, eps = lq.sample_start(tiny, N, gen(9))
    x0.requires_grad_(True)
    ret, states = lq.rollout(tiny, x0, eps, keep_states=True)
    lam = es.costates_along(ret, states)
    P, _ = lq.value_matrices(tiny)
    t = 2
    X = states[t].detach()
    coef = torch.linalg.lstsq(X, lam[t]).solution.T  # lam ~ coef x
    torch.testing.assert_close(coef, -2 * P[t], rtol=0.05, atol=0.05 * float(P[t].abs().max()))


def test_a3_detached_biased_reparameterized_not(tiny):
    g = gen(10)
    t, x = lq.sample_probes(tiny, 3, g)
    M = 1 << 14
    # alpha = 0: detaching the noise changes nothing (the noise does not depend on the state)
    out0 = es.lq_conditional_costates(tiny, t, x, 256, g, alpha=0.0, backward=("reparameterized", "detached"))
    torch.testing.assert_close(out0["detached"][0], out0["reparameterized"][0])
    alpha = 0.1
    assert lq.mean_square_radius(tiny, alpha) < 1
    out = es.lq_conditional_costates(tiny, t, x, M, g, alpha=alpha, backward=("reparameterized", "detached"))
    ref = lq.value_gradient(tiny, t, x, alpha=alpha)
    rep_mean, rep_se = out["reparameterized"]
    det_mean, det_se = out["detached"]
    assert float(((rep_mean - ref) / rep_se).abs().max()) < Z
    det_bias = float((det_mean - ref).norm(dim=1).sum() / ref.norm(dim=1).sum())
    det_floor = float(3 * det_se.norm(dim=1).sum() / ref.norm(dim=1).sum())
    assert det_bias > 3 * det_floor, (det_bias, det_floor)


def test_running_mean_matches_full_batch():
    x = torch.randn(1000, 3, generator=gen(11), dtype=torch.float64) * 5 + 100
    acc = es.RunningMean()
    for chunk in torch.split(x, 137):
        acc.update(chunk)
    torch.testing.assert_close(acc.mean, x.mean(0))
    torch.testing.assert_close(acc.var, x.var(0))


def test_pendulum_smoothing_reference_agrees_with_pathwise_mean():
    """Damped pendulum: mean costate (autograd through the rollout) vs the antithetic smoothing estimate,
    which never differentiates; agreement within the combined standard errors plus the O(s^2) smoothing bias."""
    env = pe.Pendulum(horizon=20, dt=0.05, sigma=0.5, damping=1.0)
    policy = pe.make_policy(8, gen(12))
    g = gen(13)
    x = pe.sample_probes(2, g)
    mean, se = pe.conditional_costates(env, policy, x, 4096, g)
    ref, ref_se = pe.smoothing_gradient(env, policy, x, 0.02, 20000, g)
    cos = (mean * ref).sum(1) / (mean.norm(dim=1) * ref.norm(dim=1))
    assert float(cos.min()) > 0.99
    z = (mean - ref).abs() / torch.sqrt(se ** 2 + ref_se ** 2)
    assert float(z.max()) < Z + 0.0, z
    # the reference really is random: a second independent run differs, by about its standard error
    ref2, _ = pe.smoothing_gradient(env, policy, x, 0.02, 20000, g)
    assert not torch.equal(ref, ref2)


def test_pendulum_rollout_sigma_zero_is_deterministic():
    env = pe.Pendulum(horizon=30, dt=0.05, sigma=0.0)
    policy = pe.make_policy(4, gen(14))
    x0 = pe.sample_probes(3, gen(15))
    e1 = torch.randn(3, env.horizon, generator=gen(16), dtype=torch.float64)
    torch.testing.assert_close(pe.rollout(env, policy, x0, e1), pe.rollout(env, policy, x0, 2 * e1))


# ------------------------------------------------------------------------------------------ experiments + checks
def test_experiments_are_deterministic_and_tidy(tiny):
    a = ex.run_a1(tiny, [16, 64], [0, 1])
    b = ex.run_a1(tiny, [16, 64], [0, 1])
    pd.testing.assert_frame_equal(a, b)
    assert set(a.columns) >= {"seed", "n_rollouts", "estimator", "rel_error", "per_rollout_var"}
    assert len(a) == 2 * 2 * 2


def _a1_table(sf_flat: bool) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for N in (100, 1000, 10000, 100000):
            rows.append({"seed": seed, "n_rollouts": N, "estimator": "PD", "rel_error": 1 / np.sqrt(N),
                         "per_rollout_var": 1.0})
            rows.append({"seed": seed, "n_rollouts": N, "estimator": "SF",
                         "rel_error": 0.2 if sf_flat else 5 / np.sqrt(N), "per_rollout_var": 25.0})
    return pd.DataFrame(rows)


A1_THRESHOLDS = {"max_rel_error": 0.05, "slope_range": [-0.65, -0.35]}


def test_check_a1_passes_and_fails():
    ok = ck.check_a1(_a1_table(False), A1_THRESHOLDS)
    assert ok.passed and ok.checks["SF_loglog_slope"]["value"] == pytest.approx(-0.5)
    bad = ck.check_a1(_a1_table(True), A1_THRESHOLDS)  # a biased SF: error stops falling
    assert not bad.passed
    assert not bad.checks["SF_rel_error_at_N_max"]["passed"] and not bad.checks["SF_loglog_slope"]["passed"]


def test_check_a3_fails_without_bias(tiny):
    table = ex.run_a3(tiny, [0.0, 0.3], 2, 512, [0])
    assert ck.check_a3(table, {"min_spearman": 0.9}).passed
    # pretend the detached pass were the reparameterized one: no bias, so the check must fail
    fake = table[table.backward == "reparameterized"]
    fake = pd.concat([fake, fake.assign(backward="detached")])
    claim = ck.check_a3(fake, {"min_spearman": 0.9})
    assert not claim.passed and not claim.checks["detached_min_bias_over_floor_alpha_gt0"]["passed"]


def test_check_a2_on_small_run(tiny):
    lq_table = ex.run_a2_lq(tiny, 2, [16, 1024], [0])
    env, policy = ex.pendulum_setup(10, 0.05, 0.5, 4, 0)
    pen = ex.run_a2_pendulum(env, policy, 2, [16, 256], [0.05], 2000, [0])
    claim = ck.check_a2(lq_table, pen, {"max_lq_rel_error": 0.1, "min_pendulum_cosine": 0.9}, 0.05)
    assert claim.passed, claim.checks
    # a wrong reference (sign flipped) must fail both parts
    bad_lq = lq_table.assign(reference=-lq_table.reference)
    bad_pen = pen.assign(value=np.where(pen.method == "smoothing", -pen.value, pen.value))
    bad = ck.check_a2(bad_lq, bad_pen, {"max_lq_rel_error": 0.1, "min_pendulum_cosine": 0.9}, 0.05)
    assert not bad.checks["lq_rel_error_at_M_max"]["passed"] and not bad.checks["pendulum_min_cosine"]["passed"]


def test_noise_free_control_present():
    env, policy = ex.pendulum_setup(10, 0.05, 0.5, 4, 0)
    pen = ex.run_a2_pendulum(env, policy, 1, [16, 32], [0.05], 200, [0])
    assert set(pen.method) == {"costate", "smoothing", "noise_free"}
    nf = ck.a2_pendulum_noise_free(pen)
    assert set(nf.against) == {"costate", "smoothing"}
    assert dataclasses.replace(env, sigma=0.0).sigma == 0.0
