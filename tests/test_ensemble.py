"""Rules R0, R21 on synthetic numbers: the sign test over members, its order-statistic interval, three-valued
verdicts, roles and per-member verdicts."""
import re

import numpy as np
import pytest
from scipy import stats

from vgh.claims import Claim
from vgh.claims_table import claims_markdown, claims_table
from vgh.ensemble import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    SubCheck,
    claim_verdict,
    critical_counts,
    interval_verdict,
    median_interval,
    member_verdicts,
    not_meaningful,
    paired_subcheck,
    sign_test,
    subcheck,
    unmeasured,
    yes_no_subcheck,
)


@pytest.mark.parametrize("lo,hi,op,t,want", [
    (0.75, 0.9, ">=", 0.7, PASS), (0.5, 0.69, ">=", 0.7, FAIL), (0.6, 0.8, ">=", 0.7, INCONCLUSIVE),
    (0.7, 0.8, ">=", 0.7, PASS), (0.7, 0.8, ">", 0.7, INCONCLUSIVE), (0.5, 0.7, ">", 0.7, FAIL),
    (0.01, 0.05, "<=", 0.05, PASS), (0.06, 0.2, "<=", 0.05, FAIL), (0.04, 0.06, "<=", 0.05, INCONCLUSIVE),
    (0.01, 0.05, "<", 0.05, INCONCLUSIVE), (0.05, 0.2, "<", 0.05, FAIL),
    (float("nan"), 0.9, ">=", 0.7, FAIL), (-np.inf, np.inf, ">=", 0.7, INCONCLUSIVE),
])
def test_interval_verdict(lo, hi, op, t, want):
    assert interval_verdict(lo, hi, op, t) == want


@pytest.mark.parametrize("k,c_pass", [(5, 5), (8, 7), (10, 9), (11, 9), (20, 15)])
def test_critical_counts_are_the_exact_binomial_tails(k, c_pass):
    """R21: PASS from the smallest count whose upper binomial tail at 1/2 is <= 5%, FAIL up to its mirror."""
    assert critical_counts(k) == (c_pass, k - c_pass)
    assert stats.binom.sf(c_pass - 1, k, 0.5) <= 0.05 < stats.binom.sf(c_pass - 2, k, 0.5)
    assert critical_counts(4) == (None, None)  # no count of 4 can PASS or FAIL at p0 = 1/2


@pytest.mark.parametrize("k", [8, 20])
def test_sign_test_holds_its_error_rates_whatever_the_shape(k):
    """R21: with the members' median at the threshold the wrong-verdict rate is the binomial tail, for a normal, a
    skewed and a bimodal distribution alike; where the Student-t rule of R18 (mean) is fooled by skew, this is not."""
    rng = np.random.default_rng(0)
    c_pass, _ = critical_counts(k)
    alpha = stats.binom.sf(c_pass - 1, k, 0.5)
    for draw in (lambda n: rng.standard_normal((n, k)), lambda n: np.expm1(rng.standard_normal((n, k))),
                 lambda n: np.where(rng.random((n, k)) < 0.5, -1.0, 1.0) * rng.lognormal(0, 2, (n, k))):
        x = draw(40000)
        counts = (x >= 0).sum(1)
        v = sign_test(counts, k)
        assert abs((v == 2).mean() - alpha) < 0.006 and abs((v == 0).mean() - alpha) < 0.006


def test_subcheck_counts_members_and_reports_the_median_interval():
    x = [0.91, 0.5, 0.95, 0.97, 0.99, 0.93, 0.96, float("nan")]  # K = 8: PASS needs 7 of 8
    s = subcheck(x, ">=", 0.9)
    assert s.verdict == INCONCLUSIVE and s.member_passed == [True, False, True, True, True, True, True, False]
    assert "6 of 8 members" in s.note
    med, lo, hi = median_interval(x, ">=")
    assert s.value == med == pytest.approx(np.median([-np.inf, 0.5, 0.91, 0.93, 0.95, 0.96, 0.97, 0.99]))
    assert s.interval == [lo, hi] == [0.5, 0.97]  # the 2nd smallest and the 7th, nan ranked worst
    assert interval_verdict(lo, hi, ">=", 0.9) == s.verdict
    assert subcheck([0.95] * 7 + [0.2], ">=", 0.9).verdict == PASS  # one outlier does not sink it
    assert subcheck([0.2] * 7 + [0.95], ">=", 0.9).verdict == FAIL
    assert subcheck([0.01] * 7 + [5.0], "<=", 0.05).verdict == PASS  # error-type: no log scale needed
    with pytest.raises(ValueError):
        subcheck([0.1, 0.2], "~", 0.1)


@pytest.mark.parametrize("op,t", [(">=", 0.7), (">", 0.7), ("<=", 0.3), ("<", 0.3)])
def test_interval_and_count_agree(op, t):
    """The order-statistic interval's position against the threshold is the count's verdict, ties included."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        x = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9, float("nan")], size=8)
        s = subcheck(x, op, t)
        assert interval_verdict(*s.interval, op, t) == s.verdict


def test_binomial_rule_holds_its_error_rates():
    """R21's yes/no rule at p0 = 0.5: exact binomial tails, PASS 5/5 at K = 5 (3.1%), >= 7/8 at K = 8 (3.5%)."""
    for k, need in ((5, 5), (8, 7), (10, 9)):
        verdicts = [yes_no_subcheck([True] * c + [False] * (k - c), 0.5).verdict for c in range(k + 1)]
        assert verdicts[need:] == [PASS] * (k + 1 - need) and PASS not in verdicts[:need]
        assert verdicts[:k + 1 - need] == [FAIL] * (k + 1 - need)


def test_straddling_counts_are_inconclusive_and_clear_ones_are_not():
    assert subcheck([0.6, 0.8, 0.65, 0.78, 0.72], ">=", 0.7)["verdict"] == INCONCLUSIVE
    assert subcheck([0.8, 0.9, 0.85, 0.88, 0.83], ">=", 0.7)["verdict"] == PASS
    assert subcheck([0.3, 0.4, 0.2, 0.35, 0.5], ">=", 0.7)["verdict"] == FAIL


def test_yes_no_needs_every_member_at_five():
    assert yes_no_subcheck([True] * 5, 0.5)["verdict"] == PASS
    assert yes_no_subcheck([True] * 4 + [False], 0.5)["verdict"] == INCONCLUSIVE
    assert yes_no_subcheck([False] * 5, 0.5)["verdict"] == FAIL


@pytest.mark.parametrize("k,marked", [(2, True), (4, True), (5, False), (10, False)])
def test_a_count_that_cannot_go_both_ways_is_marked(k, marked):
    """R17 under R21: at K <= 4 (p0 = 0.5) no count can PASS (K of K) or FAIL (0 of K), so the shapes fix the
    outcome, for a yes/no sub-check and a continuous one alike."""
    for bits in ([True] * k, [False] * k):
        s = yes_no_subcheck(bits, 0.5)
        c = subcheck([1.0 if b else 0.0 for b in bits], ">=", 0.5)
        assert c.meaningful is not marked
        assert s.meaningful is not marked
        assert ("not meaningful at this size" in s.note) is marked
        if marked:
            assert s.verdict == INCONCLUSIVE and s.as_dict()["meaningful"] is False
    if not marked:  # both ways reachable: the two extreme counts decide
        assert {yes_no_subcheck([True] * k, 0.5).verdict, yes_no_subcheck([False] * k, 0.5).verdict} == {PASS, FAIL}


def test_marked_subchecks_do_not_count():
    """R17: a sub-check marked not meaningful at this size is left out of the claim's and the members' verdicts."""
    ok = subcheck([0.8, 0.9, 0.85, 0.8, 0.9], ">=", 0.7)
    bad = subcheck([0.1, 0.2, 0.15, 0.1, 0.2], ">=", 0.7)
    marked = not_meaningful(bad, "the shapes fix it")
    assert marked.verdict == FAIL and marked.note.startswith("not meaningful at this size: the shapes fix it")
    assert claim_verdict({"a": ok, "b": bad}) == FAIL
    assert claim_verdict({"a": ok, "b": marked}) == PASS
    assert member_verdicts({"a": ok, "b": marked}) == [PASS] * 5
    assert claim_verdict({"b": marked}) == INCONCLUSIVE  # nothing left that can decide
    claim = Claim("B9", "statement", "metric", 0.85, ">= 0.7", {"b": marked, "a": ok})
    assert claim.verdict == PASS and claim.deciding == "a"
    table = claims_table([claim.record({})], {"B9": "B9_fig"})
    assert table.loc[0, "not_meaningful"] == "b"
    assert "not counted, not meaningful at this size: b" in claims_markdown(table)


def test_roles_combine_into_the_claim_verdict():
    ok = subcheck([0.8, 0.9, 0.85, 0.8, 0.9], ">=", 0.7)
    bad = subcheck([0.1, 0.2, 0.15, 0.1, 0.2], ">=", 0.7)
    unsure = subcheck([0.6, 0.8, 0.75, 0.8, 0.9], ">=", 0.7)
    binding_bad = bad.replace(role="binding")
    assert claim_verdict({"a": ok}) == PASS
    assert claim_verdict({"a": ok, "b": bad}) == FAIL
    assert claim_verdict({"a": ok, "b": unsure}) == INCONCLUSIVE
    assert claim_verdict({"a": ok, "b": binding_bad}) == INCONCLUSIVE  # a binding check never fails the claim
    assert claim_verdict({"a": bad, "b": binding_bad}) == FAIL
    assert member_verdicts({"a": ok, "b": unsure}) == [FAIL, PASS, PASS, PASS, PASS]  # member 0 has 0.6
    assert member_verdicts({"a": ok, "b": binding_bad}) == [INCONCLUSIVE] * 5


def test_claim_record_and_table_carry_interval_and_members():
    checks = {"a": subcheck([0.6, 0.8, 0.75, 0.9, 0.5], ">=", 0.7)}
    claim = Claim("B9", "statement", "metric", checks["a"]["value"], ">= 0.7", checks)
    rec = claim.record({})
    assert rec["verdict"] == INCONCLUSIVE and rec["member_verdicts"].count(PASS) == 3
    assert rec["interval"][0] <= rec["value"] <= rec["interval"][1]
    table = claims_table([rec], {"B9": "B9_fig"})
    assert table.loc[0, "members_passing"] == 3 and table.loc[0, "n_members"] == 5
    md = claims_markdown(table)
    assert "**INCONCLUSIVE**" in md and "3/5" in md and "1 INCONCLUSIVE" in md
    # issue 31: figures/claims.md links relative to figures/ (not figures/figures/...), the README's to the root
    assert "[B9_fig.pdf](B9_fig.pdf)" in md and "[B9_fig.pdf](figures/B9_fig.pdf)" in claims_markdown(table, folder=".")
    # a threshold or statement with pipes (|g*|, |g0 - r|) stays in its cell: every row has the header's 11 cells
    piped = claims_markdown(claims_table([Claim("B9", "|a| is small", "metric", 0.7, "e/|g*| rises; |g0 - r| >= 3",
                                                checks).record({})], {"B9": "B9_fig"}))
    row = [line for line in piped.splitlines() if line.startswith("| B9 ")][0]
    assert len(re.split(r"(?<!\\)\|", row)) - 2 == 11 and "e/\\|g*\\| rises" in row


def test_one_subcheck_type_and_its_record_form():
    """Every sub-check builder returns a SubCheck; its record form has the keys the claim records always had, and
    the binomial test's p0."""
    keys = {"value", "interval", "op", "threshold_value", "threshold", "verdict", "role", "per_member",
            "member_passed", "passed", "note", "p0"}
    subs = [subcheck([0.8, 0.9], ">=", 0.7), yes_no_subcheck([True, False], 0.5), unmeasured(">=", 0.95, "one member")]
    for s in subs:
        assert isinstance(s, SubCheck)
        assert set(s.as_dict()) - {"yes_no", "meaningful"} == keys
    assert subs[1].as_dict()["yes_no"] is True and "yes_no" not in subs[0].as_dict()
    assert subs[2].verdict == INCONCLUSIVE and subs[2].per_member == []


def test_claim_metric_is_filled_from_details():
    sub = subcheck([0.8, 0.9], ">=", 0.7)
    claim = Claim("B9", "statement", "error at N={n}", sub.value, ">= 0.7", {"a": sub}, {"n": 64})
    assert claim.metric == "error at N=64" and claim.record({})["metric"] == "error at N=64"


def test_paired_subcheck_counts_the_informative_members_only():
    """R29: a comparison that can go either way in some members only is counted over those (K' of K): five
    informative members that all hold PASS (2^-5 <= 0.05) whatever the others' ties; four cannot PASS and stay
    counted (INCONCLUSIVE, not marked); the uninformative members neither pass nor enter a member's verdict; K <= 4
    is marked."""
    margins = [1, 2, 1, 1, 3, 0, 0, 0]
    five = paired_subcheck(margins, ">", 0, [True] * 5 + [False] * 3)
    assert five.verdict == PASS and five.meaningful and five.member_passed == [True] * 5 + [False] * 3
    assert five.member_informative == [True] * 5 + [False] * 3 and five.value == 1
    four = paired_subcheck(margins, ">", 0, [True] * 4 + [False] * 4)
    assert four.verdict == INCONCLUSIVE and four.meaningful
    assert claim_verdict({"b": four.as_dict()}) == INCONCLUSIVE
    worse = paired_subcheck([-1, -1, -2, -1, 0, 0, 0, 0], ">", 0, [True] * 8)
    assert worse.verdict == FAIL  # ties among the informative members do not hold
    none = paired_subcheck([0] * 8, ">", 0, [False] * 8)
    assert none.verdict == INCONCLUSIVE and none.member_passed == [False] * 8
    assert not paired_subcheck([1, 1, 1], ">", 0, [True] * 3).meaningful  # K = 3: the shapes fix it (R17)
    # a member left out of the count does not make its own verdict FAIL
    left = paired_subcheck([1, 1, 1, 1, 1, 0, 0, 0], ">", 0, [True] * 5 + [False] * 3)
    other = subcheck([0.9] * 8, ">=", 0.5)
    assert member_verdicts({"a": other.as_dict(), "b": left.as_dict()}) == [PASS] * 8
    with pytest.raises(ValueError, match="informative flags"):
        paired_subcheck([1, 1], ">", 0, [True])
