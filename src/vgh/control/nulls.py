"""R19's claim-level nulls of Part A (A1-A3), named in workflow/claims.yaml beside each claim's check (`nulls:`) and
run through that check by `vgh.calibration.claim_calibration`: each function maps (tables, params) to {case: (truth,
make, random)}, `make(tables, rng)` the claim's tables where the claim is false (truth "null") or true ("positive").

- A1: the SF or the PD estimator with a planted bias of twice the threshold (its error stops falling with N); under
  R26 biased estimators near its resolution: a constant bias of 3 standard errors at the largest N, issue 29's
  constant biases (PD 0.005, SF 0.02 x |grad J|) and a bias that vanishes slower than 1 / sqrt(N),
  0.5 (N / 16)^-0.35; planted: the truth as the estimate (the exact grad J, r = 0 at every N).
- A2: the LQ costates with a planted bias of twice the threshold; R28's confounder, the pendulum costates replaced
  by the noise-free gradient g0; planted: the truth as the estimate (the LQ costates the exact grad V, the pendulum
  costates the headline reference, the best estimate of grad V there), which only the power gate can stop.
- A3: additive noise everywhere (the detached pass equal to the reparameterized one); a fixed detached bias that does
  not grow with alpha (a defect of the detached code); planted: the truth as the estimate (each pass's exact
  conditional mean: grad V_alpha reparameterized, the additive-noise grad V_0 detached).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _a2_biased(bias):
    """A2's LQ table with every mean costate off the exact grad V by `bias` x grad V (a planted bias)."""
    def make(t, rng):
        lq = t["lq"]
        return {**t, "lq": lq.assign(costate=lq["costate"] + bias * lq["reference"])}
    return make


def _pendulum_costates_as(method, scale=None):
    """A2's pendulum table with every costate row's value (each M) replaced by the `method` row's value of the same
    seed, probe state and coordinate (at smoothing scale `scale` when given)."""
    def make(t, rng):
        pen = t["pendulum"]
        src = pen[pen["method"] == method]
        if scale is not None:
            src = src[np.isclose(src["scale"].astype(float), scale)]
        key = ["seed", "probe", "coord"]
        value = src.set_index(key)["value"].reindex(pd.MultiIndex.from_frame(pen[key])).to_numpy(float)
        hit = (pen["method"] == "costate").to_numpy()
        return {**t, "pendulum": pen.assign(value=np.where(hit, value, pen["value"]))}
    return make


def _a2_truth(headline):
    """Planted positive: the LQ costates := the exact grad V, the pendulum costates := the headline reference."""
    pendulum = _pendulum_costates_as("smoothing", headline)

    def make(t, rng):
        return pendulum({**t, "lq": t["lq"].assign(costate=t["lq"]["reference"])}, rng)
    return make


def _a3_additive(t, rng):
    """A3 with additive noise everywhere (alpha = 0 in effect): each detached row's costate and SE replaced by its
    reparameterized twin's (same seed, alpha, M, probe, t, coord), the two computations being equal there."""
    a = t["table"]
    key = [c for c in ("seed", "alpha", "continuations", "probe", "t", "coord") if c in a.columns]
    rep = a[a["backward"] == "reparameterized"].set_index(key)[["costate", "se"]]
    det = a["backward"] == "detached"
    twin = rep.reindex(pd.MultiIndex.from_frame(a.loc[det, key]))
    out = a.copy()
    out.loc[det, "costate"] = twin["costate"].to_numpy(float)
    out.loc[det, "se"] = twin["se"].to_numpy(float)
    return {**t, "table": out}


_A3_KEY = ("seed", "continuations", "probe", "coord")


def _a3_detached_as(value_of):
    """A3's table with each detached row's costate := value_of(table)[row] (SEs kept, so the floor is kept)."""
    def make(t, rng):
        a = t["table"]
        det = (a["backward"] == "detached").to_numpy()
        return {**t, "table": a.assign(costate=np.where(det, value_of(a), a["costate"]))}
    return make


def _at_alpha(a, alpha, column):
    """Per row: `column` of the same seed, M, probe and coordinate at `alpha` (the same probe states serve every
    alpha of a seed), read from the reparameterized rows."""
    key = [c for c in _A3_KEY if c in a.columns]
    src = a[(a["backward"] == "reparameterized") & np.isclose(a["alpha"], alpha)].set_index(key)[column]
    return src.reindex(pd.MultiIndex.from_frame(a[key])).to_numpy(float)


def _a3_truth(t, rng):
    """Planted positive: every costate its pass's exact conditional mean, the reparameterized grad V_alpha (the
    reference) and the detached -2 P_t^0 x (the alpha = 0 reference: dropping d sigma / dx leaves the additive-noise
    recursion in expectation; docs/SCIENCE.md, "A3's truth and a second null")."""
    a = t["table"]
    det = (a["backward"] == "detached").to_numpy()
    exact = np.where(det, _at_alpha(a, 0.0, "reference"), a["reference"])
    return {**t, "table": a.assign(costate=exact)}


def _a3_fixed_bias(a):
    """At every alpha > 0: grad V_alpha plus the detached pass's measured bias at the largest alpha (one fixed vector
    per probe, not growing with alpha); alpha = 0 as measured."""
    top = float(a["alpha"].max())
    det = a[(a["backward"] == "detached") & np.isclose(a["alpha"], top)]
    key = [c for c in _A3_KEY if c in a.columns]
    bias = pd.Series((det["costate"] - det["reference"]).to_numpy(float), index=pd.MultiIndex.from_frame(det[key]))
    fixed = bias.reindex(pd.MultiIndex.from_frame(a[key])).to_numpy(float)
    return np.where(a["alpha"].to_numpy(float) > 0, a["reference"].to_numpy(float) + fixed, a["costate"])


def _a1_bias_by_n(estimator, bias_of):
    """A1's table with `estimator`'s relative error given a bias bias_of(rows) x |grad J| per row, added in
    quadrature, sqrt(e^2 + bias^2): an estimator whose expectation is off the exact gradient by that much."""
    def make(t, rng):
        a = t["table"]
        hit = (a["estimator"] == estimator).to_numpy()
        b = np.where(hit, np.asarray(bias_of(a), float), 0.0)
        return {**t, "table": a.assign(rel_error=np.where(hit, np.hypot(a["rel_error"], b), a["rel_error"]))}
    return make


def _constant(bias):
    """A bias of `bias` x |grad J| at every N (the error stops falling with N)."""
    return lambda a: np.full(len(a), float(bias))


def _three_standard_errors(a):
    """Per row: 3 sqrt(v / N_max) of the row's seed and estimator at the largest N (a constant bias over N)."""
    top = a[a["n_rollouts"] == a["n_rollouts"].max()]
    se = (np.sqrt(top["per_rollout_var"] / top["n_rollouts"])).groupby([top["seed"], top["estimator"]]).first()
    return 3 * np.array([se.get((k, e), np.nan) for k, e in zip(a["seed"], a["estimator"])])


def _truth(t, rng):
    """Planted positive: the truth as the estimate, the exact grad J at every N (r = 0)."""
    return {**t, "table": t["table"].assign(rel_error=0.0)}


def a1_nulls(tables, params):
    b = 2 * params["thresholds"]["max_rel_error"]
    out = {f"{e} with a planted bias ({b:g} x |grad J|)": ("null", _a1_bias_by_n(e, _constant(b)), False)
           for e in ("SF", "PD")}
    for e in ("SF", "PD"):
        out[f"{e} with a constant bias of 3 standard errors at the largest N (R26)"] = (
            "null", _a1_bias_by_n(e, _three_standard_errors), False)
    out["PD with a constant bias of 0.005 x |grad J| (issue 29)"] = (
        "null", _a1_bias_by_n("PD", _constant(0.005)), False)
    out["SF with a constant bias of 0.02 x |grad J| (issue 29)"] = (
        "null", _a1_bias_by_n("SF", _constant(0.02)), False)
    for e in ("SF", "PD"):
        out[f"{e} with a bias vanishing slower than 1/sqrt(N): 0.5 (N/16)^-0.35 x |grad J|"] = (
            "null", _a1_bias_by_n(e, lambda a: 0.5 * (a["n_rollouts"].to_numpy(float) / 16) ** -0.35), False)
    out["planted: the truth as the estimate (the exact grad J, r = 0 at every N)"] = ("positive", _truth, False)
    return out


def a2_nulls(tables, params):
    b = 2 * params["thresholds"]["max_lq_rel_error"]
    headline = float(params["smoothing_scales"][0])
    return {f"LQ costates with a planted bias ({b:g} x grad V)": ("null", _a2_biased(b), False),
            "pendulum costates = the noise-free gradient g0 (R28's confounder)": (
                "null", _pendulum_costates_as("noise_free"), False),
            "planted: the truth as the estimate (LQ: the exact grad V; pendulum: the headline reference)": (
                "positive", _a2_truth(headline), False)}


def a3_nulls(tables, params):
    return {"additive noise everywhere (detached = reparameterized)": ("null", _a3_additive, False),
            "detached pass with a fixed bias, not growing with alpha (its measured bias at the largest alpha)": (
                "null", _a3_detached_as(_a3_fixed_bias), False),
            "planted: the truth as the estimate (reparameterized: grad V_alpha; detached: -2 P_t^0 x)": (
                "positive", _a3_truth, False)}
