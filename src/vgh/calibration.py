"""R19: every claim's check run on data where the claim is false (nulls) and where it is true (planted positives),
at the config's K, with the same code that decides the claim (docs/SCIENCE.md, R19 under R21).

- `rule_calibration`: R21's rule (`vgh.ensemble.sign_test`, the code `subcheck` decides with) per sub-check of a claim
  record, on K member values whose median lies at the threshold: the sub-check's own member values recentred (the
  threshold midway between the two middle members) and resampled with replacement, normal with the members' spread,
  skewed (lognormal sigma = 1 on the rule's own scale) and a bimodal 80/20 mixture, Bernoulli(p0) for yes/no; and
  planted positives at p1 = 0.9 (R21's effect size) and at one member SD on the passing side (p = 0.84).
- `claim_calibration`: the claim's check function (`vgh.claims.run_check`) on tables built from its own tables
  (`NULLS`: A1 the SF or PD estimator with a planted bias of twice the threshold, A2 the LQ costates likewise, A3
  additive noise everywhere (detached = reparameterized); B1/B2 sparse errors, zero costate, shuffled within member,
  constant error, and the confounders (an error by temperature only, by checkpoint only); B3 a random direction and
  permuted rewards (and its planted positive, the algorithm's exact expectation replaced by RLOO's); C1 a constant
  predictor at each checkpoint, a uniformly random predicted peak and the peak of each single factor (S, H, pass@1);
  C2 G_pred replaced by its best single factor, by a permutation and by each single factor (S, H, pass@1, the step)),
  and planted positives (C2's truth among them: G_pred = the real gain).
The recurrence of a verdict is R22's (`vgh.recurrence`). Every draw comes from a generator seeded by the caller.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats

from .claims import run_check
from .ensemble import CODES, FAIL, INCONCLUSIVE, PASS, SubCheck, holds_array, sign_test
from .trajectory.lr_rule import holm

N_RULE = 2000  # replicates per R21 rule case (config: calibration.rule_replicates)
N_CLAIM = 200  # replicates per random claim-level null (calibration.claim_replicates)
MAX_WRONG = 0.05  # R19: a null's wrong-verdict rate above this marks the check weak
P1 = 0.9  # R21's effect size: the pass rate at which every sub-check must have power >= 0.8


def _rates(verdicts) -> dict[str, float]:
    v = np.asarray(verdicts)
    n = len(v)
    return {"replicates": n, "pass_rate": float(np.mean(v == PASS)),
            "inconclusive_rate": float(np.mean(v == INCONCLUSIVE)), "fail_rate": float(np.mean(v == FAIL))}


def _row(claim: str, level: str, target: str, case: str, truth: str, verdicts, strict_fail: bool
         ) -> dict[str, Any]:
    """One calibration row. A null's wrong verdicts are its PASSes, and at the threshold (`strict_fail`) its FAILs
    too; a positive's wrong verdicts are everything but PASS (1 - power)."""
    r = _rates(verdicts)
    if truth == "null":
        worst = max(r["pass_rate"], r["fail_rate"]) if strict_fail else r["pass_rate"]
        ok = worst <= MAX_WRONG
    else:
        worst, ok = 1 - r["pass_rate"], None
    return {"claim": claim, "level": level, "target": target, "case": case, "truth": truth, **r,
            "wrong_rate": worst, "holds": ok}


def rule_verdicts(values: np.ndarray, op: str, threshold: float) -> np.ndarray:
    """R21's verdicts of replicated ensembles, values [R, K]: `subcheck`'s own count and `sign_test`."""
    counts = holds_array(values, op, threshold).sum(1)
    return CODES[sign_test(counts, values.shape[1])]


def _spread(per_member) -> float:
    """The members' standard deviation (1 where it is 0 or undefined: the sign test does not depend on it)."""
    x = np.asarray(per_member, float)
    x = x[np.isfinite(x)]
    sd = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    return sd if sd > 0 else 1.0


def recentred(per_member, threshold: float) -> np.ndarray | None:
    """The members' finite values shifted so that the threshold lies midway between the two middle ones (so that a
    member drawn from them passes with probability 1/2); None where those two tie (a discrete statistic: no shift
    puts half the members on each side) or fewer than two values are finite."""
    x = np.sort(np.asarray(per_member, float)[np.isfinite(np.asarray(per_member, float))])
    if len(x) < 2:
        return None
    lo, hi = x[(len(x) - 1) // 2], x[(len(x) - 1) // 2 + 1]
    if lo == hi:
        return None
    return x + (threshold - (lo + hi) / 2)


def _bimodal(rng, shape, sd):
    """An 80/20 mixture of two normals (sd each, means 3 sd apart), shifted so that its median is 0."""
    z = np.where(rng.random(shape) < 0.8, 0.0, 3.0) + rng.standard_normal(shape)
    grid = np.linspace(-5, 8, 20001)
    cdf = 0.8 * stats.norm.cdf(grid) + 0.2 * stats.norm.cdf(grid - 3.0)
    return sd * (z - grid[np.searchsorted(cdf, 0.5)])


def rule_calibration(claim: str, checks: dict[str, SubCheck], k: int, rng: np.random.Generator,
                     n: int = N_RULE) -> list[dict[str, Any]]:
    """R21's rule on each sub-check's nulls (median at the threshold) and planted positives (module docstring)."""
    rows = []
    for name, sub in checks.items():
        if not sub.per_member:  # unmeasured by design: nothing to calibrate
            continue
        if sub.yes_no:
            p0 = float(sub.threshold_value)
            for case, p, truth in ((f"Bernoulli({p0:g}): the threshold", p0, "null"),
                                   (f"Bernoulli({P1:g}): R21's effect size", P1, "positive")):
                v = CODES[sign_test((rng.random((n, k)) < p).sum(1), k, p0)]
                rows.append(_row(claim, "rule", name, case, truth, v, strict_fail=True))
            continue
        t, op = float(sub.threshold_value), sub.op
        sd = _spread(sub.per_member)
        side = 1.0 if op in (">=", ">") else -1.0
        cases = []
        own = recentred(sub.per_member, t)
        if own is not None:
            cases.append(("own member values recentred (threshold midway between the middle two), resampled",
                          lambda: rng.choice(own, (n, k)), "null"))
        cases += [
            ("normal at the threshold (members' spread)", lambda: t + sd * rng.standard_normal((n, k)), "null"),
            ("skewed: lognormal sigma=1, median at the threshold",
             lambda: t + sd * np.expm1(rng.standard_normal((n, k))), "null"),
            ("bimodal 80/20 mixture, median at the threshold", lambda: t + _bimodal(rng, (n, k), sd), "null"),
            (f"p = {P1:g} (R21's effect size: normal, {stats.norm.ppf(P1):.2f} member SD on the passing side)",
             lambda: t + side * sd * stats.norm.ppf(P1) + sd * rng.standard_normal((n, k)), "positive"),
            ("p = 0.84 (normal, one member SD on the passing side)",
             lambda: t + side * sd + sd * rng.standard_normal((n, k)), "positive"),
        ]
        for case, draw, truth in cases:
            rows.append(_row(claim, "rule", name, case, truth, rule_verdicts(draw(), op, t), strict_fail=True))
    return rows


def member_key(table: pd.DataFrame) -> str | None:
    """The column that names a table's members: `member` (Parts B, C), `seed` (Part A), or none (a table over the
    whole ensemble)."""
    return next((c for c in ("member", "seed") if c in table.columns), None)


def ensemble_members(tables: dict[str, Any]) -> list:
    """The members of a claim's tables (the first table with a member column)."""
    for t in tables.values():
        if isinstance(t, pd.DataFrame) and member_key(t):
            return sorted(t[member_key(t)].dropna().unique().tolist())
    return []


# ------------------------------------------------------------------------------------------- claim-level nulls


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


def _by_temperature(t, rng):
    """A confounder: the relative error depends only on the temperature, e / |g*| = c tau, c the median relative
    error over the median tau (no prompt-level entropy or gap in it)."""
    p = t["prompts"]
    tau, g = p["temperature"].to_numpy(float), p["g_norm"].to_numpy(float)
    c = float(np.nanmedian(p["pd_abs_error"] / np.where(g > 0, g, np.nan))) / float(np.median(tau))
    return {**t, "prompts": _errors(p, c * tau * g)}


def _by_checkpoint(t, rng):
    """A confounder: the relative error depends only on the checkpoint, 0.3, 0.1, 0.03, ... down the measured
    checkpoints (what a training stage, not the entropy or the gap, would do)."""
    p = t["prompts"]
    order = {c: i for i, c in enumerate(sorted(p["checkpoint"].unique()))}
    rel = 0.3 * (1 / 3) ** p["checkpoint"].map(order).to_numpy(float)
    return {**t, "prompts": _errors(p, rel * p["g_norm"].to_numpy(float))}


def _b_nulls(xcol):
    return {
        "confounder: the relative error depends only on the temperature (c tau)": ("null", _by_temperature, False),
        "confounder: the relative error depends only on the checkpoint (0.3, 0.1, 0.03, ...)": (
            "null", _by_checkpoint, False),
        "sparse errors (2% of the points get the largest error, the rest 0)": ("null", _sparse, True),
        "zero costate (e = |g*|)": ("null", lambda t, rng: {**t, "prompts": _errors(
            t["prompts"], t["prompts"]["g_norm"].to_numpy(float))}, False),
        "errors shuffled within each member": ("null", _shuffled, True),
        "constant error (the median)": ("null", lambda t, rng: {**t, "prompts": _errors(
            t["prompts"], np.full(len(t["prompts"]), float(t["prompts"]["pd_abs_error"].median())))}, False),
        "planted: e = C x u, u ~ U(0, 0.05), C the median e / x": ("positive", _planted_envelope(xcol), True),
    }


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


# C1/C2's single-factor baselines: a checkpoints column that stands in for G_pred
SINGLE_FACTORS = {"S alone": "signal", "H alone": "headroom", "pass@1": "pass_at_1",
                  "the pretraining step": "checkpoint"}


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
            return float(cm["gain_mean"].corr(cm[column], method="spearman"))
        return _g_pred_as(t, rho)
    return make


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


def _a_nulls(claim, params):
    th = params["thresholds"]
    if claim == "A1":
        b = 2 * th["max_rel_error"]
        return {f"{e} with a planted bias ({b:g} x |grad J|)": ("null", _a1_biased(e, b), False) for e in ("SF", "PD")}
    if claim == "A2":
        b = 2 * th["max_lq_rel_error"]
        return {f"LQ costates with a planted bias ({b:g} x grad V)": ("null", _a2_biased(b), False)}
    return {"additive noise everywhere (detached = reparameterized)": ("null", _a3_additive, False)}


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


def _c1_nulls(tables):
    n = int(tables["checkpoints"].groupby("member")["checkpoint"].nunique().max())
    out = {f"constant predictor at checkpoint index {i}": ("null", _constant_peak(i), False) for i in range(n)}
    out["G_pred's checkpoint labels permuted (a uniformly random predicted peak)"] = ("null", _permuted_peak, True)
    for name, column in SINGLE_FACTORS.items():
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
        return float(pd.Series(g).corr(pd.Series(rng.permutation(len(g))), method="spearman"))
    return _g_pred_as(t, rho)


NULLS: dict[str, Callable[[dict, dict], dict]] = {
    "A1": lambda tables, params: _a_nulls("A1", params),
    "A2": lambda tables, params: _a_nulls("A2", params),
    "A3": lambda tables, params: _a_nulls("A3", params),
    "B1": lambda tables, params: _b_nulls("entropy"),
    "B2": lambda tables, params: _b_nulls("gap"),
    "B3": lambda tables, params: {"update in a random direction": ("null", _random_direction, True),
                          "rewards permuted within each group (the real rows replaced by their nulls)": (
                              "null", _permuted_rewards, False),
                          "planted: the algorithm's exact expectation is RLOO's (grad J, the identity)": (
                              "positive", _b3_identity(params.get("algo", "grpo")), False)},
    "C1": lambda tables, params: _c1_nulls(tables),
    "C2": lambda tables, params: {"G_pred replaced by its best single factor": ("null", _best_single, False),
                          "G_pred replaced by a random ranking (labels permuted)": ("null", _permuted_rho, True),
                          **{f"G_pred replaced by {name}": ("null", _single_factor_rho(column), False)
                             for name, column in SINGLE_FACTORS.items()},
                          "planted: G_pred's rho, its best single factor's 0.1 lower, the configured lr right "
                          "(chance falls only)": ("positive", _c2_planted, True),
                          "planted: G_pred is the real gain (the truth, rho = 1)": ("positive", _c2_truth, False)},
}


def claim_calibration(claim: str, tables: dict[str, Any], params: dict[str, Any], rng: np.random.Generator,
                      n: int = N_CLAIM) -> list[dict[str, Any]]:
    """The claim's check on each of its claim-level nulls and positives (n replicates for a random null, n / 4 for
    a random positive, one for a deterministic case)."""
    rows = []
    for case, (truth, make, random) in NULLS.get(claim, lambda t, p: {})(tables, params).items():
        reps = (n if truth == "null" else max(1, n // 4)) if random else 1
        verdicts = [run_check(make(tables, rng), params).verdict for _ in range(reps)]
        rows.append(_row(claim, "claim", "claim", case, truth, verdicts, strict_fail=False))
    return rows


def outcome_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Each calibration row's verdicts as what they mean for its truth: `right` (a positive's PASS; a rule-level
    null's INCONCLUSIVE, since it lies exactly at the threshold; a claim-level null's FAIL, since its claim is
    false), `undecided` (an INCONCLUSIVE that is neither right nor wrong: a positive's missing power, a claim-level
    null's) and `wrong` (a positive's FAIL; a null's PASS, and at the threshold its FAIL too, as `_row` counts them).
    What the calibration figure draws: a null that behaves is not drawn in the colour of a failure."""
    null, rule = table["truth"] == "null", table["level"] == "rule"
    p, i, f = table["pass_rate"], table["inconclusive_rate"], table["fail_rate"]
    right = np.where(null, np.where(rule, i, f), p)
    undecided = np.where(null & rule, 0.0, i)
    wrong = np.where(null, np.where(rule, p + f, p), f)
    return pd.DataFrame({"right": right, "undecided": undecided, "wrong": wrong}, index=table.index)


def claim_rng(seed: int, claim: str) -> np.random.Generator:
    """The generator of one claim's R19 draws (its calibration and its recurrence): seeded by the config's seed and
    the claim id's bytes (not their sum, under which B3 and C2 shared a stream)."""
    return np.random.default_rng([int(seed), *claim.encode()])


def calibration_table(claim: str, tables: dict[str, Any], params: dict[str, Any], checks: dict[str, SubCheck],
                      seed: int, rule_replicates: int = N_RULE, claim_replicates: int = N_CLAIM) -> pd.DataFrame:
    """R19's table for one claim: the rule rows of every sub-check and the claim-level rows."""
    rng = claim_rng(seed, claim)
    k = len(ensemble_members(tables)) or max((len(c.per_member) for c in checks.values()), default=1)
    rows = (rule_calibration(claim, checks, k, rng, rule_replicates)
            + claim_calibration(claim, tables, params, rng, claim_replicates))
    return pd.DataFrame(rows).assign(members=k)
