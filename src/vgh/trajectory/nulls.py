"""R19's claim-level nulls and planted positives of Part C (C1, C2), named in workflow/claims.yaml beside each
claim's check (`nulls:`) and run through that check by `vgh.calibration.claim_calibration`: each function maps
(tables, params) to {case: (truth, make, random)}, `make(tables, rng)` the claim's tables where the claim is false
(truth "null") or true (truth "positive"), `random` whether it draws.

- C1: a constant predictor at each checkpoint, a uniformly random predicted peak and the peak of each single factor
  (S, H, pass@1, p(1 - p)); planted: G_pred = the real gain (with and without the configured lr right).
- C2: G_pred replaced by its best single factor, by a permutation and by each single factor (S, H, pass@1,
  p(1 - p), the step); planted: G_pred's rho with its best single factor 0.1 lower, and the truth (G_pred = the real
  gain), with the lr rule as measured and with the configured lr right.
"""
from __future__ import annotations

import numpy as np

from ..stats import spearman
from .checks import C1_BASELINES
from .lr_rule import holm


def _g_pred_values(t, values_of):
    """The checkpoints table with G_pred (LOO) replaced, per member, by values_of(member rows sorted by checkpoint,
    position array) (what C1's R12 check reads)."""
    c = t["checkpoints"].sort_values(["member", "checkpoint"]).copy()
    for m, d in c.groupby("member"):
        c.loc[d.index, "g_pred_loo"] = np.asarray(values_of(d, np.arange(len(d))), float)
    return {**t, "checkpoints": c}


def _single_factor_peak(column):
    return lambda t, rng: _g_pred_values(t, lambda d, pos: d[column].to_numpy(float))


def _single_factor_rho(column):
    def make(t, rng):
        c = t["checkpoints"]

        def rho(m, d):
            cm = c[c["member"] == m]
            return spearman(cm["gain_mean"], cm[column])
        return _g_pred_as(t, rho)
    return make


def _lr_is_right(t, rng):
    """The sweep summary as if the configured lr were right: at every lr up to the configured one no checkpoint
    truly falls, so each of its runs gives uniform p-values, judged by the lr rule's own Holm step-down
    (`vgh.trajectory.lr_rule.holm` at the table's `alpha`), and a checkpoint falls by chance only when it does so in
    every run at that lr (R11); every larger lr falls; the rule then picks the largest stable lr, per member."""
    s = t["sweep_summary"].copy()
    conf = s.loc[s["configured"].astype(bool), "lr"]
    if conf.empty:
        return t
    c = float(conf.iloc[0])
    stable = []
    for lr, n, runs, alpha in zip(s["lr"].to_numpy(float), s["n_checkpoints"].to_numpy(int),
                                  s["n_runs"].to_numpy(int), s["alpha"].to_numpy(float)):
        falls = np.ones(n, bool)
        for _ in range(runs):
            falls &= holm(rng.random(n), alpha)
        stable.append(bool(lr <= c and not falls.any()))
    s["stable"] = stable
    best = s[s["stable"]].groupby("member")["lr"].max() if "member" in s else None
    s["chosen_by_rule"] = (s["lr"] == s["member"].map(best)).to_numpy(bool) if best is not None else False
    return {**t, "sweep_summary": s}


def _constant_peak(index):
    return lambda t, rng: _g_pred_values(t, lambda d, pos: (pos == index).astype(float))


def _permuted_peak(t, rng):
    return _g_pred_values(t, lambda d, pos: rng.permutation(d["g_pred_loo"].to_numpy(float)))


def _real_gain_peak(t, rng):
    return _g_pred_values(t, lambda d, pos: d["gain_mean"].to_numpy(float))


def c1_nulls(tables, params):
    n = int(tables["checkpoints"].groupby("member")["checkpoint"].nunique().max())
    out = {f"constant predictor at checkpoint index {i}": ("null", _constant_peak(i), False) for i in range(n)}
    out["G_pred's checkpoint labels permuted (a uniformly random predicted peak)"] = ("null", _permuted_peak, True)
    for name, column in C1_BASELINES.items():
        if column != "checkpoint":  # the step's peak is the last checkpoint: the constant predictor above
            out[f"predicted peak of {name}"] = ("null", _single_factor_peak(column), False)
    out["planted: G_pred is the real gain"] = ("positive", _real_gain_peak, False)
    out["planted: G_pred is the real gain and the configured lr is right (chance falls only)"] = (
        "positive", lambda t, rng: _lr_is_right(_real_gain_peak(t, rng), rng), True)
    return out


def _g_pred_as(t, rho_of):
    mp = t["member_predictors"].copy()
    for m, d in mp.groupby("member"):
        mp.loc[d.index[d["predictor"] == "G_pred"], "spearman"] = rho_of(m, d)
    return {**t, "member_predictors": mp}


def _best_single(t, rng):
    return _g_pred_as(t, lambda m, d: float(d[d["predictor"].isin(["S", "H"])]["spearman"].max()))


def _c2_planted(t, rng):
    """G_pred's own Spearman, with S's and H's lowered to at most G_pred's - 0.1 (so Delta >= 0.1 in every member),
    and the configured lr right."""
    mp = t["member_predictors"].copy()
    for m, d in mp.groupby("member"):
        g = float(d.loc[d["predictor"] == "G_pred", "spearman"].iloc[0])
        single = d.index[d["predictor"].isin(["S", "H"])]
        mp.loc[single, "spearman"] = np.minimum(mp.loc[single, "spearman"].to_numpy(float), g - 0.1)
    return _lr_is_right({**t, "member_predictors": mp}, rng)


def _c2_truth(t, rng):
    """The truth as the predictor: G_pred's Spearman with the real gain is 1 in every member (the lr rule as
    measured)."""
    return _g_pred_as(t, lambda m, d: 1.0)


def _permuted_rho(t, rng):
    c = t["checkpoints"]

    def rho(m, d):
        g = c[c["member"] == m]["gain_mean"].to_numpy(float)
        return spearman(g, rng.permutation(len(g)))
    return _g_pred_as(t, rho)


def c2_nulls(tables, params):
    return {"G_pred replaced by its best single factor": ("null", _best_single, False),
            "G_pred replaced by a random ranking (labels permuted)": ("null", _permuted_rho, True),
            **{f"G_pred replaced by {name}": ("null", _single_factor_rho(column), False)
               for name, column in C1_BASELINES.items()},
            "planted: G_pred's rho, its best single factor's 0.1 lower, the configured lr right "
            "(chance falls only)": ("positive", _c2_planted, True),
            "planted: G_pred is the real gain (the truth, rho = 1)": ("positive", _c2_truth, False),
            "planted: G_pred is the real gain and the configured lr is right (chance falls only)": (
                "positive", lambda t, rng: _lr_is_right(_c2_truth(t, rng), rng), True)}
