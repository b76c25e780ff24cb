"""R19's calibration (`vgh.calibration`) under R21: the sign test holds its wrong-verdict rates on its own nulls
(recentred member values, skew, a bimodal mixture) and the calibration marks a weaker rule (R18's Student-t rule on
skewed members); every claim-level null family marks a check that passes it (weak stand-ins monkeypatched over the
real checks); the real B1/B2/B3/C1/C2 checks on the nulls of synthetic tables.

Thresholds and the claims' params come from config/config.yaml and workflow/claims.yaml (`vgh.claims.claim_job`,
as the claim rule builds them); replicate counts are small here, rates are compared with `MAX_WRONG`. Every draw
comes from an explicitly seeded generator.
"""
import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, copy_workflow
from scipy import stats
from synthetic import synthetic_inputs
from test_control import _a1_table, _a3_table
from test_costates import _alignment, _prompts_table, _summary_of

import vgh.calibration as cal
from vgh.calibration import (
    MAX_WRONG,
    calibration_table,
    claim_calibration,
    ensemble_members,
    recentred,
    rule_calibration,
)
from vgh.claims import Finding, claim_job, load_claim_table, load_function, run_check
from vgh.config import load_config
from vgh.ensemble import (
    FAIL,
    PASS,
    SubCheck,
    interval_verdict,
    subcheck,
    unmeasured,
    yes_no_subcheck,
)
from vgh.trajectory.nulls import _lr_is_right
from vgh.trajectory.summary import trajectory_summary

CONFIG = load_config(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml")
CLAIMS = load_claim_table(str(ROOT / "workflow/claims.yaml"))
T = CONFIG["claims"]
SUMMARY_BOOT = {"n_resamples": 50, "seed": 0}  # Part C's reported nested intervals only: no verdict reads them


def _params(claim: str) -> dict:
    """The claim rule's params (check, statement, metric, thresholds, bootstrap, ...) from the config."""
    return claim_job(claim, CLAIMS[claim], CONFIG)["params"]


def _b_tables(k: int, seed: int = 0) -> dict:
    t = _prompts_table(k, seed=seed)
    return {"summary": _summary_of(t), "prompts": t}


def _c_tables(claim: str, k: int, pace: tuple[float, float] | None = None) -> dict:
    """Part C's summary tables of K synthetic members whose gain follows G_pred, the configured lr the rule's
    choice (members learning at paces `pace`: see `synthetic_inputs`); only the inputs the claim table names for
    `claim`."""
    lr = float(CONFIG["trajectory"]["rl"]["lr"])
    sweep = sorted({*map(float, CONFIG["trajectory"]["lr_sweep"]), lr})
    m, c, sw, traj = synthetic_inputs(n_members=k, n_checkpoints=8, n_seeds=2, lr_sweep=sweep, configured_lr=lr,
                                      falls_above=lr, pace=pace)
    tables = trajectory_summary(m, c, sw, traj, SUMMARY_BOOT)
    return {name: tables[name] for name in CLAIMS[claim]["input"]}


def _tables(claim: str, k: int) -> dict:
    if claim in ("B1", "B2"):
        return _b_tables(k)
    if claim == "B3":
        return {"alignment": _alignment(k)}
    return _c_tables(claim, k)


def _rows(rows: list[dict], truth: str | None = None) -> dict[str, dict]:
    return {r["case"]: r for r in rows if truth is None or r["truth"] == truth}


# ------------------------------------------------------------------------------------------------ R21's rule


def _rule_checks(k: int, rng: np.random.Generator) -> dict:
    """One sub-check of each kind R21 judges, at thresholds from the config, on K member values."""
    return {
        "linear >=": subcheck(T["B3"]["min_exact_cosine"] + 0.03 * rng.standard_normal(k), ">=",
                              T["B3"]["min_exact_cosine"]),
        "error <=": subcheck(rng.lognormal(math.log(T["B1"]["max_pd_error_lowest_entropy"] / 2), 1.0, k), "<=",
                             T["B1"]["max_pd_error_lowest_entropy"]),
        "yes/no": yes_no_subcheck(list(rng.random(k) < 0.8), T["C1"]["min_fraction_within_one"]),
        "unmeasured": unmeasured(">=", 0.5, "no members"),  # nothing to calibrate: unmeasured by design
    }


@pytest.mark.parametrize("k", [8, 20])
def test_rule_holds_its_error_rates_at_k(k):
    """R21's rule on each sub-check's nulls (median at the threshold: its own values recentred and resampled,
    normal, skewed, bimodal): every wrong-verdict rate (PASS, and FAIL too) <= MAX_WRONG; the planted positives at
    p = 0.9 and 0.84 are reported with their power, at p = 0.9 >= 0.8 (R21's K)."""
    n = 4000
    rows = rule_calibration("X", _rule_checks(k, np.random.default_rng(1)), k, np.random.default_rng(0), n=n)
    assert {r["target"] for r in rows} == {"linear >=", "error <=", "yes/no"}
    assert all(r["level"] == "rule" and r["replicates"] == n for r in rows)
    for r in rows:
        assert r["pass_rate"] + r["inconclusive_rate"] + r["fail_rate"] == pytest.approx(1.0)
    nulls = [r for r in rows if r["truth"] == "null"]
    for r in nulls:
        assert r["wrong_rate"] == max(r["pass_rate"], r["fail_rate"])
        assert r["wrong_rate"] <= MAX_WRONG and r["holds"] is True, r
    for target in ("linear >=", "error <="):
        cases = {r["case"].split(",")[0].split(" (")[0] for r in nulls if r["target"] == target}
        assert {"own member values recentred", "normal at the threshold", "skewed: lognormal sigma=1",
                "bimodal 80/20 mixture"} <= cases, cases
    for r in (r for r in rows if r["truth"] == "positive"):
        assert r["holds"] is None and r["wrong_rate"] == pytest.approx(1 - r["pass_rate"])
        if r["case"].startswith(("p = 0.9", "Bernoulli(0.9)")):
            assert r["pass_rate"] >= 0.8 - 3 * math.sqrt(0.16 / n), r  # power at R21's effect size


def test_recentred_values_put_half_the_members_on_each_side():
    x = recentred([0.1, 0.4, 0.2, 0.9, 0.5, 0.3], 0.7)
    assert (x > 0.7).sum() == 3 and (x < 0.7).sum() == 3
    assert recentred([1.0, 1.0, 1.0, 0.9], 0.9) is None  # the middle two tie: no shift splits them
    assert recentred([float("nan"), 0.5], 0.1) is None


def _student_t_rule(values: np.ndarray, op: str, threshold: float) -> np.ndarray:
    """R18's rule, for comparison: the 95% Student-t interval of the member mean against the threshold."""
    k = values.shape[1]
    mean, half = values.mean(1), stats.t.ppf(0.975, k - 1) * values.std(1, ddof=1) / math.sqrt(k)
    return np.array([interval_verdict(m - h, m + h, op, threshold) for m, h in zip(mean, half)])


def test_rule_calibration_marks_the_student_t_rule_weak(monkeypatch):
    """On skewed members (lognormal sigma = 1 with its median at the threshold) R18's Student-t rule is wrong more
    often than MAX_WRONG at Part A's K = 20 (its interval is of the mean, which the skew pushes past the threshold;
    19% wrong FAILs here): the calibration reports holds == False where R21's sign test holds on the same row."""
    k, n, case = 20, 4000, "skewed: lognormal sigma=1, median at the threshold"
    checks = {"error <=": _rule_checks(k, np.random.default_rng(1))["error <="]}
    real = _rows(rule_calibration("X", checks, k, np.random.default_rng(0), n=n))[case]
    assert real["holds"] is True
    monkeypatch.setattr(cal, "rule_verdicts", _student_t_rule)
    weak = _rows(rule_calibration("X", checks, k, np.random.default_rng(0), n=n))[case]
    assert weak["wrong_rate"] > MAX_WRONG and weak["holds"] is False, weak


# ------------------------------------------------------------------------------------ claim-level null families


def _weak_finding(sub) -> Finding:
    return Finding(value=sub.value, threshold=sub.threshold, checks={"weak": sub})


def _fixed(value: float, op: str, threshold: float, lo: float, hi: float) -> SubCheck:
    """A stand-in sub-check judged on an interval of its own [lo, hi] (not R21's rule)."""
    return SubCheck(value=value, interval=[lo, hi], op=op, threshold_value=threshold, threshold=f"{op} {threshold:g}",
                    verdict=interval_verdict(lo, hi, op, threshold), role="required", per_member=[value],
                    member_passed=[interval_verdict(lo, hi, op, threshold) == PASS])


def _old_envelope(xcol: str):
    """The envelope before R10: C = the envelope quantile of e / x over ALL points, PASS when the coverage of
    e <= C x over all points (the fitted ones too) reaches min_coverage. It covers that quantile by construction."""

    def check(prompts, thresholds, **_):
        x, e = prompts[xcol].to_numpy(float), prompts["pd_abs_error"].to_numpy(float)
        c = float(np.quantile(e / x, thresholds["envelope_quantile"]))
        cov = float(np.mean(e <= c * x))
        return _weak_finding(_fixed(cov, ">=", thresholds["min_coverage"], cov, cov))

    return check


def _always_pass():
    def check(**_):
        return _weak_finding(_fixed(1.0, ">=", 0.0, 1.0, 1.0))

    return check


def _delta_tie_counts():
    """C2's Delta judged as 'every member's Delta >= 0': a tie with the best single factor counts as an
    improvement (what R13's delta_min rules out)."""

    def check(member_predictors, **_):
        rho = member_predictors.pivot(index="member", columns="predictor", values="spearman")
        delta = (rho["G_pred"] - rho[["S", "H"]].max(axis=1)).to_numpy(float)
        return _weak_finding(_fixed(delta.min(), ">=", 0.0, delta.min(), delta.min()))

    return check


BEST_SINGLE = "G_pred replaced by its best single factor"
B_NULLS = {"sparse errors", "zero costate", "errors shuffled within each member", "constant error"}


@pytest.mark.parametrize("claim,stand_in,caught,expected", [
    ("B1", _old_envelope("entropy"), "all", B_NULLS),
    ("B2", _old_envelope("gap"), "all", B_NULLS),
    ("B3", _always_pass(), "all", {"update in a random direction", "rewards permuted"}),
    ("C1", _always_pass(), "all", {"constant predictor at checkpoint index", "uniformly random predicted peak",
                                       "peak of S alone", "peak of H alone", "peak of pass@1"}),
    ("C2", _always_pass(), "all", {BEST_SINGLE, "random ranking", "by S alone", "by H alone", "by pass@1",
                                       "by the pretraining step"}),
    ("C2", _delta_tie_counts(), BEST_SINGLE, {BEST_SINGLE}),
], ids=["B1-old-envelope", "B2-old-envelope", "B3-always-pass", "C1-always-pass", "C2-always-pass",
        "C2-tie-counts"])
def test_claim_calibration_marks_a_weak_check(monkeypatch, claim, stand_in, caught, expected):
    """Each claim-level null family would catch a check that passes it: with the claim's check replaced (by
    its dotted name, as `run_check` resolves it) by a weak stand-in, the rows of the nulls it passes have holds
    == False. The tie-counting C2 rule passes the best-single-factor null (and S or H alone where that one is the
    best); the random ranking still fails it (the rows judge each null on its own)."""
    params = {**_params(claim), "metric": "weak stand-in"}  # the claim's metric names details the stand-in lacks
    module, _, name = params["check"].rpartition(".")
    tables = _tables(claim, 5)
    monkeypatch.setattr(f"{module}.{name}", stand_in)
    assert run_check(tables, params).verdict == PASS  # the stand-in passes the claim's own tables
    nulls = _rows(claim_calibration(claim, tables, params, np.random.default_rng(0), n=8), "null")
    for part in expected:  # the families the calibration is meant to hold
        assert any(part in case for case in nulls), (part, list(nulls))
    for case, r in nulls.items():
        if caught == "all" or case.startswith(caught):
            assert r["pass_rate"] == 1.0 and r["holds"] is False, r
        elif "random ranking" in case:  # the tie-counting rule still fails a random ranking
            assert r["holds"] is True, r


# --------------------------------------------------------------------------- the real checks on their nulls


@pytest.fixture(scope="module")
def b_rows():
    """The real B1 or B2 check's claim-level rows on synthetic tables of K = 10 members (200 replicates per random
    null, 50 per random positive): b_rows(claim), each claim's computed once per worker, and only where its tests
    run (pytest's two workers may split B1's and B2's)."""
    rows = {}

    def of(claim):
        if claim not in rows:
            rows[claim] = claim_calibration(claim, _b_tables(10), _params(claim), np.random.default_rng(0), n=200)
        return rows[claim]
    return of


@pytest.mark.parametrize("claim", ["B1", "B2"])
@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_real_b_checks_hold_on_their_nulls(b_rows, claim):
    """The real B1/B2 checks at K = 10: the zero costate, the errors shuffled within each member and the constant
    error and the confounders (R25: a relative error by temperature, by checkpoint or by |g*| alone) never PASS; the
    planted envelope (e = C x u, u small) and the planted relative trend PASS. (The sparse errors: the next test.)"""
    rows = _rows(b_rows(claim))
    for case, r in rows.items():
        if r["truth"] == "null" and not case.startswith("sparse errors"):
            assert r["pass_rate"] == 0.0 and r["holds"] is True, r
    positive = {case: r for case, r in rows.items() if r["truth"] == "positive"}
    assert len(positive) == 2 and all(r["replicates"] == 50 for r in positive.values()), list(positive)
    # the planted envelope PASSes nearly every draw (R20: each member's C from half its own prompts, a noisier fit);
    # the planted relative trend (R25) passes its trend in test_costates: here |g*| is made large at the lowest x
    # (the pooled relative error there is set low), so e = c x |g*| u breaks the bound at the lowest x
    (envelope,) = [r for case, r in positive.items() if case.startswith("planted: e = C x u")]
    assert envelope["pass_rate"] >= 0.9, envelope


@pytest.mark.parametrize("claim", ["B1", "B2"])
@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_real_b_checks_hold_on_the_sparse_null(b_rows, claim):
    """The sparse errors (2% of the points get the largest error, the rest 0) PASS at most MAX_WRONG of the draws.
    Under R10's quarter ratio they PASSed 8.5% on these synthetic tables (|g*| grows as x falls, so errors unrelated
    to x gave a pooled relative error that fell towards x -> 0); R25's trend within cells, partial on |g*|, holds."""
    (r,) = [r for case, r in _rows(b_rows(claim)).items() if case.startswith("sparse errors")]
    assert r["pass_rate"] <= MAX_WRONG, r


@pytest.mark.parametrize("claim", ["B1", "B2"])
def test_a_calibration_draw_skips_only_what_the_check_reports(claim):
    """R19's calibration reads only each draw's verdict, so it runs B1's and B2's check with `details=False`: on the
    tables as they are and on a draw of each of the claim's nulls and positives, the sub-checks (every member's
    value, the interval, the verdict) are those of the full check, number for number; only the details are empty."""
    tables, params = _b_tables(4), _params(claim)
    rng = np.random.default_rng(1)
    cases = load_function(params["nulls"])(tables, params)
    for t in [tables, *(make(tables, rng) for _, make, _ in cases.values())]:
        full, lean = run_check(t, params), run_check(t, params, details=False)
        assert full.details and lean.details == {}
        same = [json.dumps({k: c.as_dict() for k, c in claim_.checks.items()}, sort_keys=True, default=str)
                for claim_ in (full, lean)]
        assert same[0] == same[1] and lean.verdict == full.verdict


def test_subcheck_of_unmeasured_members_is_not_a_pass():
    """R0, R21: a statistic that could not be measured (e.g. B1/B2's 0/0 error ratio under the sparse-error null)
    does not hold in its member: all members unmeasured is a FAIL."""
    t = T["B1"]["max_pd_error_lowest_entropy"]
    assert subcheck([float("nan")] * 8, "<=", t).verdict == FAIL


def test_real_b3_holds_on_a_random_direction_and_permuted_rewards():
    """The real B3 (R14, R27) at K = 10: an update in a random direction, the real rows replaced by their
    permuted-reward twins (the exact expectation of permuted rewards is the zero vector) and the exact expectation
    with an orthogonal bias of half its norm (outside 25.8 degrees) never PASS; the planted positives (GRPO's exact
    expectation replaced by RLOO's, grad J; an orthogonal bias of 0.3 of its norm, inside) PASS; where GRPO's own
    expectation is turned away (cos 0.6) the identity still PASSes and the biased one does not."""
    params = _params("B3")
    tables = {"alignment": _alignment(10)}
    assert run_check(tables, params).verdict == PASS
    rows = claim_calibration("B3", tables, params, np.random.default_rng(0), n=20)
    r = _rows(rows, "null")
    assert len(r) == 3 and any(case.startswith("rewards permuted") for case in r), list(r)
    for row in r.values():
        assert row["pass_rate"] == 0.0 and row["holds"], row
    positives = _rows(rows, "positive")
    assert len(positives) == 2 and all(p["pass_rate"] == 1.0 for p in positives.values()), positives
    turned = {"alignment": _alignment(10, exact=0.6)}
    assert run_check(turned, params).verdict == FAIL
    positives = _rows(claim_calibration("B3", turned, params, np.random.default_rng(0), n=20), "positive")
    assert {case.split(" (")[0]: p["pass_rate"] for case, p in positives.items()} == {
        "planted: the algorithm's exact expectation is RLOO's": 1.0,
        "planted: the exact expectation with an orthogonal bias of 0.3 of its norm": 0.0}


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_real_c1_on_its_nulls():
    """The real C1 (R12, R29) at K = 10 on synthetic members that peak at different checkpoints (paces 0.8 to 3): it
    does not FAIL; every constant predictor and every single factor in G_pred's place never PASSes (each is one of the
    baselines, so it is never strictly closer than the best one), and G_pred's checkpoint labels permuted PASS at
    most 5%. The planted positives (G_pred = the real gain) PASS at least 80% of the time (R29)."""
    params = _params("C1")
    tables = _c_tables("C1", 10, pace=(0.8, 3.0))
    # R21: G_pred must be strictly closer than the best baseline in 9 of 10 members; it ties in some of these
    assert run_check(tables, params).verdict != FAIL
    rows = claim_calibration("C1", tables, params, np.random.default_rng(0), n=40)
    nulls = _rows(rows, "null")
    n_ckpt = int(tables["checkpoints"].groupby("member")["checkpoint"].nunique().max())
    assert sum(case.startswith("constant predictor") for case in nulls) == n_ckpt
    permuted = [r for case, r in nulls.items() if "uniformly random predicted peak" in case]
    assert len(permuted) == 1 and permuted[0]["replicates"] == 40
    assert permuted[0]["pass_rate"] <= MAX_WRONG and permuted[0]["holds"] is True
    for case, r in nulls.items():
        if case.startswith("constant predictor") or case.startswith("predicted peak of"):
            assert r["pass_rate"] == 0.0 and r["holds"] is True, r
    positive = {r["case"]: r["pass_rate"] for r in rows if r["truth"] == "positive"}
    # R29: G_pred = the real gain is on the plateau in every member, so it is strictly closer than its best baseline in
    # every member where that baseline is off the plateau: the truth PASSes (under R12 it could not: issue 30)
    assert set(positive) == {"planted: G_pred is the real gain",
                             "planted: G_pred is the real gain and the configured lr is right (chance falls only)"}
    assert min(positive.values()) >= 0.8, positive


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_real_c2_holds_on_its_nulls():
    """The real C2 at K = 10: G_pred replaced by its best single factor (Delta = 0 in every member, not above
    min_delta), by a random ranking, and by S, H, pass@1, p(1 - p) of pass@1 or the step alone never PASS."""
    params = _params("C2")
    tables = _c_tables("C2", 10)
    assert run_check(tables, params).verdict == PASS
    nulls = _rows(claim_calibration("C2", tables, params, np.random.default_rng(0), n=40), "null")
    assert len(nulls) == 7 and nulls[BEST_SINGLE]["replicates"] == 1  # + S, H, pass@1, p(1 - p), the step alone
    for r in nulls.values():
        assert r["pass_rate"] == 0.0 and r["holds"] is True, r


def test_calibration_table_is_reproducible():
    """One claim's table: the rule rows of its sub-checks and its claim-level rows, K in `members`, the same
    numbers for the same seed."""
    params = _params("B3")
    tables = {"alignment": _alignment(5)}
    checks = run_check(tables, params).checks
    a = calibration_table("B3", tables, params, checks, seed=3, rule_replicates=200, claim_replicates=10)
    b = calibration_table("B3", tables, params, checks, seed=3, rule_replicates=200, claim_replicates=10)
    pd.testing.assert_frame_equal(a, b)
    assert (a["members"] == 5).all() and set(a["level"]) == {"rule", "claim"}
    assert set(a.loc[a["level"] == "rule", "target"]) == set(checks)  # every sub-check has member values here


def test_ensemble_members_of_a_claims_tables():
    members_table = pd.DataFrame({"member": [0, 0, 1, 2, 2, 2], "v": range(6)})
    seeds_table = pd.DataFrame({"seed": [3, 1, 2], "w": [10.0, 11.0, 12.0]})
    assert ensemble_members({"m": members_table, "s": seeds_table}) == [0, 1, 2]
    assert ensemble_members({"s": seeds_table, "x": {"not": "a table"}}) == [1, 2, 3]
    assert ensemble_members({"x": pd.DataFrame({"statistic": ["a"]})}) == []


def _lq_table(seeds=range(5)) -> pd.DataFrame:
    """Synthetic A2 LQ table: mean costates within 0.1% of grad V at every M."""
    rows = [{"seed": s, "continuations": m, "probe": q, "t": 0, "coord": c, "costate": (1 + c) * (1 + 1e-3 * s),
             "se": 1e-4, "reference": 1.0 + c} for s in seeds for m in (16, 256) for q in range(3) for c in range(2)]
    return pd.DataFrame(rows)


def _pendulum_table(seeds=range(5)) -> pd.DataFrame:
    """Synthetic A2 pendulum table: the reference r, g0 = r + 1 and the mean costate r + 0.1 per coordinate."""
    rows = [{"seed": s, "probe": q, "coord": c, "method": method, "size": size, "scale": scale, "value": v, "se": se}
            for s in seeds for q in range(2) for c in range(2)
            for method, size, scale, v, se in (("costate", 256, np.nan, 5.1, 0.01),
                                               ("smoothing", 2000, 0.05, 5.0, 0.01),
                                               ("noise_free", 1, np.nan, 6.0, 0.0))]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim,tables,family", [
    ("A1", {"table": _a1_table(False)}, ("bias",)),
    ("A2", {"lq": _lq_table(), "pendulum": _pendulum_table()}, ("with a planted bias", "noise-free gradient g0")),
    ("A3", {"table": _a3_table(1.0, seeds=range(5))}, ("additive noise everywhere", "fixed bias")),
], ids=["A1", "A2", "A3"])
def test_part_a_nulls_catch_an_always_pass_check(monkeypatch, claim, tables, family):
    """Part A's nulls (an estimator with a planted bias: twice the threshold, and R26's biases near its resolution;
    A3's detached pass equal to the reparameterized one, as with additive noise) catch a check that passes
    everything."""
    params = {**_params(claim), "metric": "always PASS"}  # the claim's metric names details the stand-in lacks
    module, _, name = params["check"].rpartition(".")
    monkeypatch.setattr(f"{module}.{name}", _always_pass())
    nulls = _rows(claim_calibration(claim, tables, params, np.random.default_rng(0)), "null")
    assert nulls and all(any(f in case for f in family) for case in nulls), list(nulls)
    assert all(r["pass_rate"] == 1.0 and r["holds"] is False for r in nulls.values())


@pytest.mark.parametrize("claim", ["A1", "A3"])
def test_real_part_a_checks_fail_their_nulls(claim):
    """The real A1 and A3 checks PASS the synthetic tables and FAIL each of their nulls: an SF or PD estimator
    whose error stops at twice the threshold or carries R26's biases (3 standard errors; issue 29's constant and
    slowly vanishing ones, above the resolution on these tables), a detached pass with the reparameterized pass's
    bias or with a fixed bias that does not grow with alpha. A1's truth as the estimate (r = 0) PASSes."""
    tables = {"table": _a1_table(False) if claim == "A1" else _a3_table(1.0, seeds=range(5))}
    params = _params(claim)
    assert run_check(tables, params).verdict == PASS
    nulls = _rows(claim_calibration(claim, tables, params, np.random.default_rng(0)), "null")
    assert len(nulls) == (8 if claim == "A1" else 2)
    assert all(r["fail_rate"] == 1.0 and r["holds"] is True for r in nulls.values()), nulls
    if claim == "A1":
        (truth,) = _rows(claim_calibration(claim, tables, params, np.random.default_rng(0)), "positive").values()
        assert truth["pass_rate"] == 1.0, truth


def test_lr_is_right_draws_only_chance_falls():
    """The planted 'configured lr is right' sweep: no lr above the configured one is stable, and each lr up to it is
    stable unless Holm (R11, the rule's own code) rejects a checkpoint by chance in every one of its runs: a one-run
    lr falls with probability about 1 - (1 - alpha / n)^n (Holm's first step), an lr of three runs almost never
    (the same checkpoint in all three)."""
    lrs, k, n_ck, alpha = [0.001, 0.003, 0.01], 10, 10, 0.05
    summary = pd.DataFrame([{"member": m, "lr": lr, "n_checkpoints": n_ck, "n_runs": 3 if lr == 0.003 else 1,
                             "alpha": alpha, "stable": True, "chosen_by_rule": False, "configured": lr == 0.003}
                            for m in range(k) for lr in lrs])
    rng = np.random.default_rng(0)
    draws = 400
    three, one = [], []
    for _ in range(draws):
        s = _lr_is_right({"sweep_summary": summary}, rng)["sweep_summary"]
        assert not s.loc[s["lr"] > 0.003, "stable"].any()
        chosen = s[s["chosen_by_rule"]]
        assert chosen.groupby("member").size().max() <= 1 and set(chosen["lr"]) <= {0.001, 0.003}
        three += s.loc[s["lr"] == 0.003, "stable"].tolist()
        one += s.loc[s["lr"] == 0.001, "stable"].tolist()
    p1 = (1 - alpha / n_ck) ** n_ck  # Holm's first step; its later steps add a little
    n = draws * k
    assert abs(np.mean(one) - p1) < 4 * math.sqrt(p1 * (1 - p1) / n) + 0.002
    assert np.mean(three) >= 1 - 10 * (alpha / n_ck) ** 3 - 4 / n  # three runs falling at one checkpoint


def test_the_calibration_figure_colours_a_null_that_behaves_as_right():
    """Issue 31: a claim-level null that FAILs every time behaved correctly (it was drawn as a solid red FAIL bar);
    a rule-level null at the threshold is right when INCONCLUSIVE and wrong when it PASSes or FAILs; a positive's
    INCONCLUSIVE is neither."""
    from vgh.calibration import outcome_shares

    t = pd.DataFrame({"truth": ["null", "null", "positive", "null"], "level": ["claim", "rule", "rule", "claim"],
                      "pass_rate": [0.0, 0.03, 0.6, 0.2], "inconclusive_rate": [0.0, 0.95, 0.3, 0.5],
                      "fail_rate": [1.0, 0.02, 0.1, 0.3]})
    s = outcome_shares(t)
    assert s.loc[0].tolist() == [1.0, 0.0, 0.0]  # all right
    assert s.loc[1].tolist() == pytest.approx([0.95, 0.0, 0.05])
    assert s.loc[2].tolist() == pytest.approx([0.6, 0.3, 0.1])
    assert s.loc[3].tolist() == pytest.approx([0.3, 0.5, 0.2])
    assert np.allclose(s.sum(axis=1), 1.0)


# ------------------------------------------------------------------------------- each claim's nulls, by its row


def test_every_claims_nulls_are_named_beside_its_check():
    """R19: each claim's `nulls:` in workflow/claims.yaml names a function in its check's package (`<part>.nulls`),
    resolved by its dotted name as the check is, and handed to the calibration with the claim rule's params."""
    for cid, entry in CLAIMS.items():
        part = entry["check"].rsplit(".", 2)[0]  # vgh.<part>
        assert entry["nulls"] == f"{part}.nulls.{cid.lower()}_nulls", cid
        assert callable(load_function(entry["nulls"])), cid
        assert _params(cid)["nulls"] == entry["nulls"]


TOY_CLAIM = """\
import numpy as np

from vgh.claims import Finding
from vgh.ensemble import subcheck


def check_t1(table, thresholds):
    per_member = table.groupby("member")["x"].mean().to_numpy(float)
    x_large = subcheck(per_member, ">=", thresholds["min_x"])
    return Finding(value=float(np.median(per_member)), threshold=f">= {thresholds['min_x']}",
                   checks={"x_large": x_large})


def t1_nulls(tables, params):
    t = tables["table"]
    return {"x zero": ("null", lambda t_, rng: {"table": t.assign(x=0.0)}, False),
            "x noise around 0": ("null", lambda t_, rng: {"table": t.assign(x=rng.normal(size=len(t)))}, True),
            "planted: x large": ("positive", lambda t_, rng: {"table": t.assign(x=10.0)}, False)}
"""


def test_a_toy_claims_own_nulls_are_picked_up(tmp_path, monkeypatch):
    """A new claim brings its own nulls: a toy 9th claim added to a workflow copy's claim table, its check and nulls
    in a module of its own, is calibrated on exactly those nulls (no central table to edit)."""
    wf = copy_workflow(tmp_path / "wf")
    (wf / "toy_t1.py").write_text(TOY_CLAIM)
    monkeypatch.syspath_prepend(str(wf))
    with open(wf / "workflow/claims.yaml", "a") as fh:
        fh.write('T1:\n  statement: "x is large."\n  metric: "x"\n  check: toy_t1.check_t1\n'
                 '  nulls: toy_t1.t1_nulls\n  subchecks: [x_large]\n  input: {table: results/toy/t1.parquet}\n'
                 '  params: {thresholds: claims.T1, bootstrap: bootstrap}\n'
                 '  thresholds:\n    min_x: {type: number, default: 1.0, description: "T1: x"}\n'
                 '  figure: T1_toy\n  doc: "T1."\n')
    entry = load_claim_table(str(wf / "workflow/claims.yaml"))["T1"]
    config = load_config(wf / "config/config.yaml", wf / "workflow/schemas/config.schema.yaml")  # T1's defaults
    assert config["claims"]["T1"] == {"min_x": 1.0}
    params = claim_job("T1", entry, config)["params"]
    tables = {"table": pd.DataFrame({"member": np.repeat(range(10), 3), "x": 5.0})}
    claim = run_check(tables, params)
    assert claim.verdict == PASS
    # the record's id and wording are the claim table's: the check returns only what it found
    assert (claim.id, claim.statement, claim.metric) == ("T1", "x is large.", "x")
    table = calibration_table("T1", tables, params, claim.checks, seed=0, rule_replicates=50, claim_replicates=20)
    rows = table[table["level"] == "claim"].set_index("case")
    assert list(rows.index) == ["x zero", "x noise around 0", "planted: x large"]
    assert rows["replicates"].tolist() == [1, 20, 1] and rows["truth"].tolist() == ["null", "null", "positive"]
    assert rows.loc["x zero", "fail_rate"] == 1.0 and rows.loc["planted: x large", "pass_rate"] == 1.0
