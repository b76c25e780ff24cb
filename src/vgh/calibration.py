"""R19: every claim's check run on data where the claim is false (nulls) and where it is true (planted positives),
at the config's K, with the same code that decides the claim, and each verdict's recurrence (docs/SCIENCE.md).

- `rule_calibration`: R18's rule per sub-check of a claim record (the `vgh.ensemble` builders themselves) on K
  member values drawn with the true mean (geometric mean on the log scale) exactly at the threshold, normal with the
  spread of the claim's own members, lognormal sigma = 1 and 2 on the log scale, Bernoulli(p0) for yes/no; and a
  planted positive one member standard deviation on the passing side (yes/no: each member holds w.p. 0.9).
- `claim_calibration`: the claim's check function (`vgh.claims.run_check`) on tables built from its own tables
  (`NULLS`: A1 the SF or PD estimator with a planted bias of twice the threshold, A2 the LQ costates likewise, A3
  additive noise everywhere (detached = reparameterized); B1/B2 sparse errors, zero costate, shuffled within
  member, constant error; B3 a random direction and permuted rewards (and its planted positive, the algorithm's
  exact expectation replaced by RLOO's); C1 a constant predictor at each checkpoint, a
  uniformly random predicted peak and the peak of each single factor (S, H, pass@1); C2 G_pred replaced by its
  best single factor, by a permutation and by each single factor (S, H, pass@1, the step)), and planted positives.
- `recurrence`: the fraction of member resamples (with replacement) on which the check gives the same verdict.
Every draw comes from a generator seeded by the caller.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from .claims import run_check
from .ensemble import FAIL, INCONCLUSIVE, PASS, SubCheck, interval, on_scale, subcheck, within_subcheck, yes_no_subcheck
from .trajectory.lr_rule import holm

N_RULE = 2000  # replicates per R18 rule case (config: calibration.rule_replicates)
N_CLAIM = 200  # replicates per random claim-level null (calibration.claim_replicates)
N_RECURRENCE = 200  # member resamples per verdict (calibration.recurrence_draws)
MAX_WRONG = 0.05  # R19: a null's wrong-verdict rate above this marks the check weak


def _rates(verdicts: list[str]) -> dict[str, float]:
    n = len(verdicts)
    return {"replicates": n, "pass_rate": verdicts.count(PASS) / n,
            "inconclusive_rate": verdicts.count(INCONCLUSIVE) / n, "fail_rate": verdicts.count(FAIL) / n}


def _row(claim: str, level: str, target: str, case: str, truth: str, verdicts: list[str],
         strict_fail: bool) -> dict[str, Any]:
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


def _from_scale(z: np.ndarray, scale: str) -> np.ndarray:
    return np.exp(z) if scale == "log" else z


def rule_calibration(claim: str, checks: dict[str, SubCheck], k: int, rng: np.random.Generator,
                     n: int = N_RULE) -> list[dict[str, Any]]:
    """R18's rule on each sub-check's nulls at the threshold and its planted positive (module docstring)."""
    rows = []
    for name, sub in checks.items():
        if not sub.per_member:  # unmeasured by design: nothing to calibrate
            continue
        if sub.yes_no:
            p0 = float(sub.threshold_value)
            for case, p, truth in ((f"Bernoulli({p0:g}): the threshold", p0, "null"),
                                   ("Bernoulli(0.9)", 0.9, "positive")):
                v = [yes_no_subcheck(list(rng.random(k) < p), p0).verdict for _ in range(n)]
                rows.append(_row(claim, "rule", name, case, truth, v, strict_fail=True))
            continue
        if sub.op == "in":
            lo, hi = sub.threshold_value
            sd = _spread(sub.per_member, "linear", (hi - lo) / 4)
            for case, mean, truth in (("normal, mean at the lower end", lo, "null"),
                                      ("normal, mean at the upper end", hi, "null"),
                                      ("normal, mean mid-range", (lo + hi) / 2, "positive")):
                v = [within_subcheck(mean + sd * rng.standard_normal(k), lo, hi).verdict for _ in range(n)]
                rows.append(_row(claim, "rule", name, case, truth, v, strict_fail=True))
            continue
        t, op, scale = float(sub.threshold_value), sub.op, sub.scale
        if not np.allclose(interval(sub.per_member, scale, t)[1:], sub.interval, equal_nan=True):
            continue  # an interval of the check's own (R4's envelope bootstrap): calibrated at the claim level
        ts = float(on_scale([t], scale, t)[0])
        sd = _spread(sub.per_member, scale, abs(ts) * 0.1 or 0.1, t)
        side = 1.0 if op in (">=", ">") else -1.0
        cases = [("normal at the threshold (members' spread)", lambda: ts + sd * rng.standard_normal(k), "null")]
        if scale == "log":
            for sigma in (1.0, 2.0):
                cases.append((f"lognormal sigma={sigma:g} at the threshold",
                              lambda sigma=sigma: ts + sigma * rng.standard_normal(k), "null"))
        cases.append(("normal, one member SD on the passing side",
                      lambda: ts + side * sd + sd * rng.standard_normal(k), "positive"))
        for case, draw, truth in cases:
            v = [subcheck(_from_scale(draw(), scale), op, t, scale=scale).verdict for _ in range(n)]
            rows.append(_row(claim, "rule", name, case, truth, v, strict_fail=True))
    return rows


def _spread(per_member, scale: str, fallback: float, threshold: float | None = None) -> float:
    """The members' standard deviation on the rule's scale (the fallback where it is 0 or undefined)."""
    x = on_scale(per_member, scale, threshold)
    x = x[np.isfinite(x)]
    sd = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    return sd if sd > 0 else float(fallback)


def member_key(table: pd.DataFrame) -> str | None:
    """The column that names a table's members: `member` (Parts B, C), `seed` (Part A), or none (a table over the
    whole ensemble)."""
    return next((c for c in ("member", "seed") if c in table.columns), None)


def resample_members(tables: dict[str, Any], draw: np.ndarray, members: list) -> dict[str, Any]:
    """The tables of the members members[draw] (with repeats), relabelled 0..len(draw)-1, so that a member drawn
    twice counts twice. Tables without a member column pass unchanged."""
    out = {}
    for name, t in tables.items():
        key = member_key(t) if isinstance(t, pd.DataFrame) else None
        if key is None:
            out[name] = t
            continue
        parts = [t[t[key] == members[i]].assign(**{key: j}) for j, i in enumerate(draw)]
        out[name] = pd.concat(parts, ignore_index=True)
    return out


def ensemble_members(tables: dict[str, Any]) -> list:
    """The members of a claim's tables (the first table with a member column)."""
    for t in tables.values():
        if isinstance(t, pd.DataFrame) and member_key(t):
            return sorted(t[member_key(t)].dropna().unique().tolist())
    return []


def recurrence(tables: dict[str, Any], params: dict[str, Any], verdict: str, rng: np.random.Generator,
               n: int = N_RECURRENCE) -> float:
    """R19: the fraction of n member resamples (with replacement, K of K) on which the claim's check gives
    `verdict` again."""
    members = ensemble_members(tables)
    if len(members) < 2:
        return float("nan")
    same = 0
    for _ in range(n):
        draw = rng.integers(0, len(members), len(members))
        same += run_check(resample_members(tables, draw, members), params).verdict == verdict
    return same / n


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


def _b_nulls(xcol):
    return {
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
                          "(chance falls only)": ("positive", _c2_planted, True)},
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
