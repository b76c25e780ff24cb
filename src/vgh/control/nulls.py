"""R19's claim-level nulls of Part A (A1-A3), named in workflow/claims.yaml beside each claim's check (`nulls:`) and
run through that check by `vgh.calibration.claim_calibration`: each function maps (tables, params) to {case: (truth,
make, random)}, `make(tables, rng)` the claim's tables where the claim is false.

- A1: the SF or the PD estimator with a planted bias of twice the threshold (its error stops falling with N).
- A2: the LQ costates with a planted bias of twice the threshold.
- A3: additive noise everywhere (the detached pass equal to the reparameterized one).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _a1_biased(estimator, bias):
    """A1's table with `estimator`'s relative error given a planted bias: error sqrt(e^2 + bias^2), an estimator
    whose expectation is off the exact gradient by `bias` x |grad J| (its error stops falling with N)."""
    def make(t, rng):
        a = t["table"]
        hit = a["estimator"] == estimator
        return {**t, "table": a.assign(rel_error=np.where(hit, np.hypot(a["rel_error"], bias), a["rel_error"]))}
    return make


def _a2_biased(bias):
    """A2's LQ table with every mean costate off the exact grad V by `bias` x grad V (a planted bias)."""
    def make(t, rng):
        lq = t["lq"]
        return {**t, "lq": lq.assign(costate=lq["costate"] + bias * lq["reference"])}
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


def a1_nulls(tables, params):
    b = 2 * params["thresholds"]["max_rel_error"]
    return {f"{e} with a planted bias ({b:g} x |grad J|)": ("null", _a1_biased(e, b), False) for e in ("SF", "PD")}


def a2_nulls(tables, params):
    b = 2 * params["thresholds"]["max_lq_rel_error"]
    return {f"LQ costates with a planted bias ({b:g} x grad V)": ("null", _a2_biased(b), False)}


def a3_nulls(tables, params):
    return {"additive noise everywhere (detached = reparameterized)": ("null", _a3_additive, False)}
