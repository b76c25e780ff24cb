"""R19's claim-level nulls and planted positives of Part B (B1-B3), named in workflow/claims.yaml beside each
claim's check (`nulls:`) and run through that check by `vgh.calibration.claim_calibration`: each function maps
(tables, params) to {case: (truth, make, random)}, `make(tables, rng)` the claim's tables where the claim is false
(truth "null") or true (truth "positive"), `random` whether it draws.

- B1, B2: sparse errors, the zero costate, errors shuffled within each member, a constant error, and the confounders
  (a relative error by temperature only, by checkpoint only, by |g*| only: R25); planted: an envelope e = C x u, and a
  relative error that rises with x, e / |g*| = c x u (R25).
- B3: an update in a random direction, permuted rewards, the exact expectation with an orthogonal bias of half its
  norm (outside R27's tolerance); planted: the algorithm's exact expectation replaced by RLOO's (grad J, by an
  identity), and with issue 29's orthogonal bias of 0.3 of its norm (inside R27's tolerance).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _errors(prompts: pd.DataFrame, abs_error: np.ndarray) -> pd.DataFrame:
    """The prompts table with E[lambda_PD]'s absolute error replaced (and its relative error with it)."""
    g = prompts["g_norm"].to_numpy(float)
    return prompts.assign(pd_abs_error=abs_error, pd_rel_error=np.where(g > 0, abs_error / np.where(g > 0, g, 1), 0))


def _sparse(t, rng):
    e = np.zeros(len(t["prompts"]))
    hit = rng.random(len(e)) < 0.02
    e[hit] = float(t["prompts"]["pd_abs_error"].max())
    return {**t, "prompts": _errors(t["prompts"], e)}


def _shuffled(t, rng):
    p = t["prompts"]
    e = p["pd_abs_error"].to_numpy(float).copy()
    for _, idx in p.groupby("member").indices.items():
        e[idx] = rng.permutation(e[idx])
    return {**t, "prompts": _errors(p, e)}


def _planted_envelope(xcol):
    def make(t, rng):
        p = t["prompts"]
        x = p[xcol].to_numpy(float)
        c = float(np.nanmedian(p["pd_abs_error"] / np.where(x > 0, x, np.nan)))
        return {**t, "prompts": _errors(p, c * x * rng.random(len(x)) * 0.05)}
    return make


def _relative_error_of(column):
    """A confounder: the relative error depends only on `column` (the temperature; |g*|, which within a checkpoint
    and temperature rises with the entropy and the gap, R25), e / |g*| = c v, c the median relative error over the
    median v (no prompt-level entropy or gap in it)."""
    def make(t, rng):
        p = t["prompts"]
        v, g = p[column].to_numpy(float), p["g_norm"].to_numpy(float)
        c = float(np.nanmedian(p["pd_abs_error"] / np.where(g > 0, g, np.nan))) / float(np.median(v))
        return {**t, "prompts": _errors(p, c * v * g)}
    return make


def _by_checkpoint(t, rng):
    """A confounder: the relative error depends only on the checkpoint, 0.3, 0.1, 0.03, ... down the measured
    checkpoints (what a training stage, not the entropy or the gap, would do)."""
    p = t["prompts"]
    order = {c: i for i, c in enumerate(sorted(p["checkpoint"].unique()))}
    rel = 0.3 * (1 / 3) ** p["checkpoint"].map(order).to_numpy(float)
    return {**t, "prompts": _errors(p, rel * p["g_norm"].to_numpy(float))}


def _planted_relative(xcol):
    """Planted positive in R25's sense: the relative error rises with x at every checkpoint and temperature,
    e / |g*| = c x u, u ~ U(0.5, 1) per point, c the median of e / (x |g*|)."""
    def make(t, rng):
        p = t["prompts"]
        x, g = p[xcol].to_numpy(float), p["g_norm"].to_numpy(float)
        c = float(np.nanmedian(p["pd_abs_error"] / np.where((x > 0) & (g > 0), x * g, np.nan)))
        return {**t, "prompts": _errors(p, c * x * g * rng.uniform(0.5, 1.0, len(x)))}
    return make


def _envelope_nulls(xcol):
    """B1's (xcol "entropy") or B2's ("gap") nulls and planted envelope."""
    return {
        "confounder: the relative error depends only on the temperature (c tau)": (
            "null", _relative_error_of("temperature"), False),
        "confounder: the relative error depends only on the checkpoint (0.3, 0.1, 0.03, ...)": (
            "null", _by_checkpoint, False),
        "confounder: the relative error depends only on |g*| (c |g*|)": ("null", _relative_error_of("g_norm"), False),
        "sparse errors (2% of the points get the largest error, the rest 0)": ("null", _sparse, True),
        "zero costate (e = |g*|)": ("null", lambda t, rng: {**t, "prompts": _errors(
            t["prompts"], t["prompts"]["g_norm"].to_numpy(float))}, False),
        "errors shuffled within each member": ("null", _shuffled, True),
        "constant error (the median)": ("null", lambda t, rng: {**t, "prompts": _errors(
            t["prompts"], np.full(len(t["prompts"]), float(t["prompts"]["pd_abs_error"].median())))}, False),
        "planted: e = C x u, u ~ U(0, 0.05), C the median e / x": ("positive", _planted_envelope(xcol), True),
        "planted: e / |g*| = c x u, u ~ U(0.5, 1), c the median e / (x |g*|)": (
            "positive", _planted_relative(xcol), True),
    }


def b1_nulls(tables, params):
    return _envelope_nulls("entropy")


def b2_nulls(tables, params):
    return _envelope_nulls("gap")


def _random_direction(t, rng):
    """Every real row's cosine (exact expectation, batches, batch mean and its bootstrap, every algorithm) replaced by
    the cosine of an independent random direction in the model's dimension with grad J."""
    a = t["alignment"]
    real = ~a["reward_permuted"].astype(bool)
    d = a["n_params"].to_numpy(float)
    cos = rng.standard_normal(len(a)) / np.sqrt(d)  # the cosine of a random direction in d dimensions
    return {**t, "alignment": a.assign(cosine=np.where(real, cos, a["cosine"]))}


def _permuted_rewards(t, rng):
    """Every real row's cosine replaced by its permuted-reward twin's (same member, G, batch or resample, algorithm,
    estimate): the update of a batch whose rewards no longer belong to its completions. The exact expected update
    of permuted rewards is the zero vector (cosine 0). Rows of an algorithm without a null (the workflow computes
    the null of the algorithm B3 decides on) keep their cosine."""
    a = t["alignment"]
    key = [c for c in ("member", "group_size", "batch", "algo", "estimate") if c in a.columns]
    permuted = a["reward_permuted"].astype(bool)
    null = a[permuted].set_index(key)["cosine"]
    twin = a.loc[~permuted, key].apply(tuple, axis=1).map(null).to_numpy(float)
    cos = a["cosine"].to_numpy(float).copy()
    real = np.flatnonzero((~permuted).to_numpy())
    has_twin = ~np.isnan(twin)
    cos[real[has_twin]] = twin[has_twin]
    exact = (a["estimate"] == "exact_expectation").to_numpy() & ~permuted.to_numpy()
    cos[exact] = 0.0
    return {**t, "alignment": a.assign(cosine=cos)}


def _b3_identity(algo):
    """Planted positive: the algorithm's exact expected update replaced by RLOO's (grad J by an identity)."""
    def make(t, rng):
        a = t["alignment"]
        exact = a[(a["estimate"] == "exact_expectation") & ~a["reward_permuted"].astype(bool)]
        rloo = exact[exact["algo"] == "rloo"].set_index(["member", "group_size"])["cosine"]
        mine = exact.index[exact["algo"] == algo]
        cos = a["cosine"].copy()
        cos.loc[mine] = [rloo.get((m, g), np.nan) for m, g in zip(a.loc[mine, "member"], a.loc[mine, "group_size"])]
        return {**t, "alignment": a.assign(cosine=cos)}
    return make


def _b3_orthogonal_bias(algo, beta):
    """The algorithm's exact expected update u plus a fixed bias b orthogonal to u and to grad J, |b| = beta |u|
    (R27): its cosine with grad J becomes c / sqrt(1 + beta^2)."""
    def make(t, rng):
        a = t["alignment"]
        hit = ((a["estimate"] == "exact_expectation") & ~a["reward_permuted"].astype(bool) & (a["algo"] == algo))
        return {**t, "alignment": a.assign(cosine=np.where(hit, a["cosine"] / np.sqrt(1 + beta ** 2), a["cosine"]))}
    return make


def b3_nulls(tables, params):
    return {"update in a random direction": ("null", _random_direction, True),
            "rewards permuted within each group (the real rows replaced by their nulls)": (
                "null", _permuted_rewards, False),
            "the exact expectation with an orthogonal bias of 0.5 of its norm (outside R27's 25.8 degrees)": (
                "null", _b3_orthogonal_bias(params.get("algo", "grpo"), 0.5), False),
            "planted: the algorithm's exact expectation is RLOO's (grad J, the identity)": (
                "positive", _b3_identity(params.get("algo", "grpo")), False),
            "planted: the exact expectation with an orthogonal bias of 0.3 of its norm (issue 29's; inside R27's)": (
                "positive", _b3_orthogonal_bias(params.get("algo", "grpo"), 0.3), False)}
