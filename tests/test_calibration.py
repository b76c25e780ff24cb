"""R19's calibration (`vgh.calibration`): R18's rule holds its wrong-verdict rates on its own nulls and the
calibration marks a weaker rule; every claim-level null family marks a check that passes it (weak stand-ins
monkeypatched over the real checks); the real B1/B2/B3/C1/C2 checks on the nulls of synthetic tables; a verdict's
recurrence over member resamples and the resampling itself.

Thresholds and the claims' params come from config/config.yaml and workflow/claims.yaml (`vgh.claims.claim_job`,
as the claim rule builds them); replicate counts are small here, rates are compared with `MAX_WRONG`. Every draw
comes from an explicitly seeded generator.
"""
import math

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from synthetic import synthetic_inputs
from test_control import _a1_table, _a3_table
from test_costates import _alignment, _prompts_table, _summary_of

import vgh.calibration as cal
from vgh.calibration import (
    MAX_WRONG,
    calibration_table,
    claim_calibration,
    ensemble_members,
    recurrence,
    resample_members,
    rule_calibration,
)
from vgh.claims import Claim, claim_job, load_claim_table, run_check
from vgh.config import load_config
from vgh.ensemble import (
    FAIL,
    PASS,
    judged,
    on_scale,
    subcheck,
    unmeasured,
    within_subcheck,
    yes_no_subcheck,
)
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


# ------------------------------------------------------------------------------------------------ R18's rule


def _rule_checks(k: int, rng: np.random.Generator) -> dict:
    """One sub-check of each kind R18 judges, at thresholds from the config, on K member values."""
    lo, hi = T["A1"]["slope_range"]
    return {
        "linear >=": subcheck(T["B3"]["min_exact_cosine"] + 0.03 * rng.standard_normal(k), ">=",
                              T["B3"]["min_exact_cosine"]),
        "log <=": subcheck(rng.lognormal(math.log(T["B1"]["max_pd_error_lowest_entropy"] / 2), 1.0, k), "<=",
                           T["B1"]["max_pd_error_lowest_entropy"], scale="log"),
        "yes/no": yes_no_subcheck(list(rng.random(k) < 0.8), T["C1"]["min_fraction_within_one"]),
        "within": within_subcheck((lo + hi) / 2 + 0.05 * rng.standard_normal(k), lo, hi),
        # nothing to calibrate: unmeasured by design, and an interval of the check's own (claim level)
        "unmeasured": unmeasured(">=", 0.5, "no members"),
        "own interval": judged(rng.random(k), ">=", 0.5, 0.6, 0.9),
    }


@pytest.mark.parametrize("k", [5, 10])
def test_rule_holds_its_error_rates_at_k(k):
    """R18's rule on each sub-check's nulls at the threshold: every wrong-verdict rate (PASS, and FAIL too: the
    mean lies exactly at the threshold) <= MAX_WRONG; the planted positives are reported with their power."""
    n = 2000
    rows = rule_calibration("X", _rule_checks(k, np.random.default_rng(1)), k, np.random.default_rng(0), n=n)
    assert {r["target"] for r in rows} == {"linear >=", "log <=", "yes/no", "within"}
    assert all(r["level"] == "rule" and r["replicates"] == n for r in rows)
    for r in rows:
        assert r["pass_rate"] + r["inconclusive_rate"] + r["fail_rate"] == pytest.approx(1.0)
    nulls = [r for r in rows if r["truth"] == "null"]
    for r in nulls:
        assert r["wrong_rate"] == max(r["pass_rate"], r["fail_rate"])
        assert r["wrong_rate"] <= MAX_WRONG and r["holds"] is True, r
    log_cases = {r["case"] for r in nulls if r["target"] == "log <="}
    assert {"lognormal sigma=1 at the threshold", "lognormal sigma=2 at the threshold"} <= log_cases
    assert not any("lognormal" in r["case"] for r in nulls if r["target"] != "log <=")
    positives = [r for r in rows if r["truth"] == "positive"]
    assert {r["target"] for r in positives} == {"linear >=", "log <=", "yes/no", "within"}
    for r in positives:
        assert 0 <= r["pass_rate"] <= 1 and r["holds"] is None
        assert r["wrong_rate"] == pytest.approx(1 - r["pass_rate"])
        assert r["pass_rate"] > 0, r  # the rule has power on a positive one member SD (or p = 0.9) away


def _percentile_bootstrap(rng: np.random.Generator, n_resamples: int = 200):
    """A weaker rule with `subcheck`'s signature: the 95% percentile bootstrap of the member mean (on the rule's
    scale) instead of R18's Student-t interval."""

    def weak(per_member, op, threshold, *, scale="linear", role="required", note=""):
        x = on_scale(per_member, scale, threshold)
        means = x[rng.integers(0, len(x), (n_resamples, len(x)))].mean(1)
        est, lo, hi = float(x.mean()), *np.percentile(means, [2.5, 97.5])
        if scale == "log":
            est, lo, hi = np.exp([est, lo, hi])
        return judged(per_member, op, threshold, lo, hi, estimate=est, role=role, note=note).replace(scale=scale)

    return weak


def test_rule_calibration_marks_a_percentile_bootstrap_weak(monkeypatch):
    """At K = 5 a percentile bootstrap of the mean is too narrow: on the log-scale sub-check's lognormal sigma = 2
    null the calibration reports holds == False, where R18's Student-t interval holds on the same row."""
    k, n, case = 5, 2000, "lognormal sigma=2 at the threshold"
    checks = {"log <=": _rule_checks(k, np.random.default_rng(1))["log <="]}
    real = _rows(rule_calibration("X", checks, k, np.random.default_rng(0), n=n))[case]
    assert real["holds"] is True
    monkeypatch.setattr(cal, "subcheck", _percentile_bootstrap(np.random.default_rng(2)))
    weak = _rows(rule_calibration("X", checks, k, np.random.default_rng(0), n=n))[case]
    assert weak["wrong_rate"] > MAX_WRONG and weak["holds"] is False, weak


# ------------------------------------------------------------------------------------ claim-level null families


def _weak_claim(claim: str, statement: str, sub) -> Claim:
    return Claim(id=claim, statement=statement, metric="weak stand-in", value=sub.value, threshold=sub.threshold,
                 checks={"weak": sub})


def _old_envelope(claim: str, xcol: str):
    """The envelope before R10: C = the envelope quantile of e / x over ALL points, PASS when the coverage of
    e <= C x over all points (the fitted ones too) reaches min_coverage. It covers that quantile by construction."""

    def check(prompts, thresholds, *, statement, metric, **_):
        x, e = prompts[xcol].to_numpy(float), prompts["pd_abs_error"].to_numpy(float)
        c = float(np.quantile(e / x, thresholds["envelope_quantile"]))
        cov = float(np.mean(e <= c * x))
        return _weak_claim(claim, statement, judged([cov], ">=", thresholds["min_coverage"], cov, cov))

    return check


def _always_pass(claim: str):
    def check(*, statement, **_):
        return _weak_claim(claim, statement, judged([1.0], ">=", 0.0, 1.0, 1.0))

    return check


def _delta_tie_counts(claim: str):
    """C2's Delta judged as 'every member's Delta >= 0': a tie with the best single factor counts as an
    improvement (what R13's delta_min rules out)."""

    def check(member_predictors, *, statement, **_):
        rho = member_predictors.pivot(index="member", columns="predictor", values="spearman")
        delta = (rho["G_pred"] - rho[["S", "H"]].max(axis=1)).to_numpy(float)
        return _weak_claim(claim, statement, judged(delta, ">=", 0.0, delta.min(), delta.min()))

    return check


BEST_SINGLE = "G_pred replaced by its best single factor"
B_NULLS = {"sparse errors", "zero costate", "errors shuffled within each member", "constant error"}


@pytest.mark.parametrize("claim,stand_in,caught,expected", [
    ("B1", _old_envelope("B1", "entropy"), "all", B_NULLS),
    ("B2", _old_envelope("B2", "gap"), "all", B_NULLS),
    ("B3", _always_pass("B3"), "all", {"update in a random direction", "rewards permuted"}),
    ("C1", _always_pass("C1"), "all", {"constant predictor at checkpoint index", "uniformly random predicted peak",
                                       "peak of S alone", "peak of H alone", "peak of pass@1"}),
    ("C2", _always_pass("C2"), "all", {BEST_SINGLE, "random ranking", "by S alone", "by H alone", "by pass@1",
                                       "by the pretraining step"}),
    ("C2", _delta_tie_counts("C2"), BEST_SINGLE, {BEST_SINGLE}),
], ids=["B1-old-envelope", "B2-old-envelope", "B3-always-pass", "C1-always-pass", "C2-always-pass",
        "C2-tie-counts"])
def test_claim_calibration_marks_a_weak_check(monkeypatch, claim, stand_in, caught, expected):
    """Each claim-level null family would catch a check that passes it: with the claim's check replaced (by
    its dotted name, as `run_check` resolves it) by a weak stand-in, the rows of the nulls it passes have holds
    == False. The tie-counting C2 rule passes the best-single-factor null (and S or H alone where that one is the
    best); the random ranking still fails it (the rows judge each null on its own)."""
    params = _params(claim)
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
    """The real B1 and B2 checks' claim-level rows on synthetic tables of K = 10 members (40 replicates per
    random null)."""
    return {claim: claim_calibration(claim, _b_tables(10), _params(claim), np.random.default_rng(0), n=200)
            for claim in ("B1", "B2")}


@pytest.mark.parametrize("claim", ["B1", "B2"])
def test_real_b_checks_hold_on_their_nulls(b_rows, claim):
    """The real B1/B2 checks at K = 10: the zero costate, the errors shuffled within each member and the constant
    error never PASS; the sparse errors PASS at most MAX_WRONG of the draws (2 of 200 with this seed: a member whose
    sparse hits miss both ends has no error ratio, 0/0, and FAILs); the planted envelope (e = C x u, u small) always
    PASSes."""
    rows = _rows(b_rows[claim])
    for case, r in rows.items():
        if r["truth"] == "null":
            assert r["pass_rate"] <= (MAX_WRONG if case.startswith("sparse errors") else 0.0), r
            assert r["holds"] is True, r
    positive = [r for r in rows.values() if r["truth"] == "positive"]
    assert len(positive) == 1 and positive[0]["replicates"] == 50
    assert 0 <= positive[0]["pass_rate"] <= 1
    assert positive[0]["pass_rate"] == 1.0  # the planted envelope PASSes every draw on these tables


def test_log_scale_subcheck_of_unmeasured_members_is_not_a_pass():
    """R0, R18: a statistic that could not be measured (e.g. B1/B2's 0/0 error ratio under the sparse-error null) is
    FAIL on either scale; the log scale once floored a nan as an exact zero and PASSed it."""
    t = T["B1"]["max_pd_error_lowest_entropy"]
    assert subcheck([float("nan")] * 5, "<=", t).verdict == FAIL
    assert subcheck([float("nan")] * 5, "<=", t, scale="log").verdict != PASS


def test_real_b3_holds_on_a_random_direction_and_permuted_rewards():
    """The real B3 (R14) at K = 10: an update in a random direction, and the real rows replaced by their
    permuted-reward twins (the exact expectation of permuted rewards is the zero vector), never PASS; the planted
    positive (GRPO's exact expectation replaced by RLOO's, grad J) PASSes, also where GRPO's own fails."""
    params = _params("B3")
    tables = {"alignment": _alignment(10)}
    assert run_check(tables, params).verdict == PASS
    rows = claim_calibration("B3", tables, params, np.random.default_rng(0), n=20)
    r = _rows(rows, "null")
    assert len(r) == 2 and any(case.startswith("rewards permuted") for case in r), list(r)
    for row in r.values():
        assert row["pass_rate"] == 0.0 and row["holds"], row
    (positive,) = _rows(rows, "positive").values()
    assert positive["pass_rate"] == 1.0
    turned = {"alignment": _alignment(10, exact=0.6)}
    assert run_check(turned, params).verdict == FAIL
    (positive,) = _rows(claim_calibration("B3", turned, params, np.random.default_rng(0), n=20), "positive").values()
    assert positive["pass_rate"] == 1.0


def test_real_c1_on_its_nulls():
    """The real C1 (R12) at K = 10 on synthetic members that peak at different checkpoints (paces 0.8 to 3): it
    PASSes; every constant predictor and every single factor in G_pred's place never PASSes (each is one of the
    baselines, so its mean distance cannot lie above the best baseline's), and G_pred's checkpoint labels permuted
    PASS at most 5%. The planted positive (G_pred = the real gain) PASSes; with the lr rule's chance falls (R8) it
    loses power."""
    params = _params("C1")
    tables = _c_tables("C1", 10, pace=(0.8, 3.0))
    assert run_check(tables, params).verdict == PASS
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
    assert positive.pop("planted: G_pred is the real gain") == 1.0  # the synthetic lr rule is right
    # with the lr rule's chance falls (R8), a true C1 still loses power: at K = 10 the binding count needs >= 9
    # members whose configured lr survives 10 one-sided 2-SE tests
    (chance,) = positive.values()
    assert 0.0 < chance < 1.0


def test_real_c2_holds_on_its_nulls():
    """The real C2 at K = 10: G_pred replaced by its best single factor (Delta = 0 in every member, below
    min_delta), by a random ranking, and by S, H, pass@1 or the step alone never PASS."""
    params = _params("C2")
    tables = _c_tables("C2", 10)
    assert run_check(tables, params).verdict == PASS
    nulls = _rows(claim_calibration("C2", tables, params, np.random.default_rng(0), n=40), "null")
    assert len(nulls) == 6 and nulls[BEST_SINGLE]["replicates"] == 1  # + S, H, pass@1 and the step alone
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
    assert set(a.loc[a["level"] == "rule", "target"]) == set(checks)  # every sub-check has R18's intervals here


# -------------------------------------------------------------------------------------------------- recurrence


@pytest.mark.parametrize("null_shift,verdict", [(0.0, PASS), (0.95, FAIL)])
def test_recurrence_is_one_when_every_member_agrees(null_shift, verdict):
    """B3 tables where every member clearly passes (or clearly fails the null sub-check): every member resample
    gives the verdict again."""
    params = _params("B3")
    tables = {"alignment": _alignment(5, null_shift=null_shift)}
    assert run_check(tables, params).verdict == verdict
    assert recurrence(tables, params, verdict, np.random.default_rng(0), n=20) == 1.0
    other = FAIL if verdict == PASS else PASS
    assert recurrence(tables, params, other, np.random.default_rng(0), n=5) == 0.0


def test_recurrence_needs_two_members():
    params = _params("B3")
    one = {"alignment": _alignment(1)}
    assert math.isnan(recurrence(one, params, run_check(one, params).verdict, np.random.default_rng(0), n=5))


def test_resample_members_relabels_and_repeats():
    members_table = pd.DataFrame({"member": [0, 0, 1, 2, 2, 2], "v": range(6)})
    seeds_table = pd.DataFrame({"seed": [0, 1, 2], "w": [10.0, 11.0, 12.0]})
    whole = pd.DataFrame({"statistic": ["a"], "estimate": [1.0]})
    tables = {"m": members_table, "s": seeds_table, "e": whole, "x": {"not": "a table"}}
    members = ensemble_members(tables)
    assert members == [0, 1, 2]
    out = resample_members(tables, np.array([2, 0, 2]), members)
    m = out["m"]
    assert list(m["member"]) == [0, 0, 0, 1, 1, 2, 2, 2]  # relabelled 0..K-1, member 2 counted twice
    assert len(m) == 2 * 3 + 2
    assert list(m.loc[m["member"] == 0, "v"]) == list(m.loc[m["member"] == 2, "v"]) == [3, 4, 5]
    assert list(m.loc[m["member"] == 1, "v"]) == [0, 1]
    assert list(out["s"]["seed"]) == [0, 1, 2] and list(out["s"]["w"]) == [12.0, 10.0, 12.0]
    assert out["e"] is whole and out["x"] is tables["x"]  # no member column: unchanged


def _lq_table(seeds=range(5)) -> pd.DataFrame:
    """Synthetic A2 LQ table: mean costates within 0.1% of grad V at every M."""
    rows = [{"seed": s, "continuations": m, "probe": q, "t": 0, "coord": c, "costate": (1 + c) * (1 + 1e-3 * s),
             "se": 1e-4, "reference": 1.0 + c} for s in seeds for m in (16, 256) for q in range(3) for c in range(2)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim,tables,family", [
    ("A1", {"table": _a1_table(False)}, "with a planted bias"),
    ("A2", {"lq": _lq_table(), "pendulum": pd.DataFrame()}, "with a planted bias"),
    ("A3", {"table": _a3_table(1.0, seeds=range(5))}, "additive noise everywhere"),
], ids=["A1", "A2", "A3"])
def test_part_a_nulls_catch_an_always_pass_check(monkeypatch, claim, tables, family):
    """Part A's nulls (an estimator with a planted bias of twice the threshold; A3's detached pass equal to the
    reparameterized one, as with additive noise) catch a check that passes everything."""
    params = _params(claim)
    module, _, name = params["check"].rpartition(".")
    monkeypatch.setattr(f"{module}.{name}", _always_pass(claim))
    nulls = _rows(claim_calibration(claim, tables, params, np.random.default_rng(0)), "null")
    assert nulls and all(family in case for case in nulls), list(nulls)
    assert all(r["pass_rate"] == 1.0 and r["holds"] is False for r in nulls.values())


@pytest.mark.parametrize("claim", ["A1", "A3"])
def test_real_part_a_checks_fail_their_nulls(claim):
    """The real A1 and A3 checks PASS the synthetic tables and FAIL each of their nulls: an SF or PD estimator
    whose error stops at twice the threshold, a detached pass with the reparameterized pass's bias."""
    tables = {"table": _a1_table(False) if claim == "A1" else _a3_table(1.0, seeds=range(5))}
    params = _params(claim)
    assert run_check(tables, params).verdict == PASS
    nulls = _rows(claim_calibration(claim, tables, params, np.random.default_rng(0)), "null")
    assert len(nulls) == (2 if claim == "A1" else 1)
    assert all(r["fail_rate"] == 1.0 and r["holds"] is True for r in nulls.values()), nulls


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
        s = cal._lr_is_right({"sweep_summary": summary}, rng)["sweep_summary"]
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
