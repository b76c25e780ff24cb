"""The fresh-machine verdict check: it passes on agreeing verdicts (numbers may differ), fails on a doctored
table, compares a config only with its own table, checks the human-facing tables, and turns every bad input into
one line, through the same command line CI uses."""
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import ROOT, SMOKE_OUT

from vgh.claims import Claim
from vgh.claims_table import claims_members
from vgh.ensemble import subcheck, yes_no_subcheck
from vgh.fresh_check import compare_verdicts, main, reference, resolved_config, seed_override
from vgh.fresh_gate import failing_flips, predicted_tables, reference_members
from vgh.recurrence import table_chance


def table(verdicts, shift=0.0):
    return pd.DataFrame({"id": list(verdicts), "estimate": [0.9 + shift] * len(verdicts),
                         "interval_lo": [0.8] * len(verdicts), "interval_hi": [0.95] * len(verdicts),
                         "members_passing": [5] * len(verdicts), "n_members": [5] * len(verdicts),
                         "verdict": list(verdicts.values())})


def md(verdicts):
    return "| id | claim | verdict |\n|---|---|---|\n" + "".join(
        f"| {k} | a claim with a |bar| in it | **{v}** |\n" for k, v in verdicts.items())


@pytest.fixture
def repo(tmp_path):
    """A repository with the workflow's config, schema and claim table, and a committed default verdict table that the
    README and figures/claims.md repeat."""
    r = tmp_path / "repo"
    shutil.copytree(ROOT / "config", r / "config")
    shutil.copytree(ROOT / "workflow/schemas", r / "workflow/schemas")
    shutil.copy(ROOT / "workflow/claims.yaml", r / "workflow/claims.yaml")  # each claim's thresholds (the schema's)
    (r / "figures").mkdir()
    verdicts = {"A1": "PASS", "B2": "INCONCLUSIVE", "C1": "FAIL"}
    table(verdicts).to_csv(r / "figures/claims.csv", index=False)
    (r / "figures/claims.md").write_text(md(verdicts))
    (r / "figures/claims_config.yaml").write_text(yaml.safe_dump(resolved_config(r, None)))
    (r / "README.md").write_text("# x\n<!-- claims-table:start -->\n" + md(verdicts) + "<!-- claims-table:end -->\n")
    return r


def run(*args, capsys):
    rc = main(list(map(str, args)))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_numbers_may_differ_verdicts_may_not():
    committed = table({"A1": "PASS", "B2": "INCONCLUSIVE", "C1": "FAIL"})
    assert compare_verdicts(committed, table({"A1": "PASS", "B2": "INCONCLUSIVE", "C1": "FAIL"}, 0.01)) == []
    diffs = compare_verdicts(committed, table({"A1": "PASS", "B2": "PASS", "C1": "FAIL"}))
    assert len(diffs) == 1 and diffs[0].startswith("B2: committed INCONCLUSIVE")
    missing = compare_verdicts(committed, table({"A1": "PASS", "B2": "INCONCLUSIVE"}))
    assert missing == ["C1: only in the committed table"]


def test_pass_fail_flips_always_fail_other_flips_when_improbable():
    """R23: PASS <-> FAIL always fails; another flip fails only when the fresh table is improbable (chance < 0.01)."""
    committed = table({"A1": "PASS", "B2": "INCONCLUSIVE", "C1": "FAIL"})
    assert failing_flips(committed, table({"A1": "FAIL", "B2": "INCONCLUSIVE", "C1": "FAIL"}), 0.5) == ["A1"]
    assert failing_flips(committed, table({"A1": "INCONCLUSIVE", "B2": "PASS", "C1": "FAIL"}), 0.2) == []
    assert failing_flips(committed, table({"A1": "INCONCLUSIVE", "B2": "PASS", "C1": "FAIL"}), 0.004) == ["A1", "B2"]
    assert failing_flips(committed, table({"A1": "PASS", "B2": "INCONCLUSIVE"}), 1.0) == ["C1"]


def _members_csv(path):
    """A committed table's member pass bits: A1 (20 seeds, 19 pass: a clear PASS), B1 (8 members, 5 pass:
    INCONCLUSIVE, a fresh ensemble may go either way) and C1 (8 members, none pass: FAIL)."""
    recs = []
    for cid, sub, k in (("A1", subcheck([0.01] * 19 + [0.2], "<=", 0.05), 20),
                        ("B1", yes_no_subcheck([True] * 5 + [False] * 3, 0.5), 8),
                        ("C1", subcheck([0.1] * 8, ">=", 0.5), 8)):
        c = Claim(cid, "s", "m", sub.value, "t", {"x": sub})
        c.members = list(range(k))
        recs.append(c.record({}))
    claims_members(recs).to_csv(path, index=False)
    return path


def test_the_table_prediction_and_the_chance_of_a_fresh_table(tmp_path):
    _members_csv(tmp_path / "claims_members.csv")
    predicted, which = predicted_tables(tmp_path / "claims.csv", n_draws=4000)
    assert "committed members alone" in which
    assert [sorted(f.columns) for f in predicted] == [["A1"], ["B1", "C1"]]  # two families (R22)
    same, chances = table_chance(predicted, {"A1": "PASS", "B1": "INCONCLUSIVE", "C1": "FAIL"})
    assert same > 0.5 and chances["A1"] > 0.95 and 0.3 < chances["B1"] < 0.9
    b1_passes, chances = table_chance(predicted, {"A1": "PASS", "B1": "PASS", "C1": "FAIL"})
    assert 0.01 < b1_passes < same and 0.05 < chances["B1"] < 0.6  # a likely flip of an unsure verdict
    improbable, _ = table_chance(predicted, {"A1": "INCONCLUSIVE", "B1": "INCONCLUSIVE", "C1": "PASS"})
    assert improbable < 0.01


def _pool(folder, extra_b1_bits):
    """R24's pool beside claims.csv: the committed members plus one more ensemble whose B1 bits are given (its A1 and
    C1 bits the committed ones)."""
    committed = pd.read_csv(folder / "claims_members.csv").assign(ensemble="committed")
    other = committed.assign(ensemble="other", member=committed["member"] + 100)
    b1 = other["id"] == "B1"
    other.loc[b1, "passed"] = extra_b1_bits
    pd.concat([committed, other], ignore_index=True).to_csv(folder / "reference_members.csv", index=False)


def test_the_pooled_prediction_draws_on_every_recorded_ensemble(tmp_path):
    """R24: with a second ensemble where every member passes B1, a fresh B1 PASS becomes likely, where the committed
    members alone (5 of 8) make it a minority; the fresh ensembles keep the committed size."""
    _members_csv(tmp_path / "claims_members.csv")
    alone, _ = predicted_tables(tmp_path / "claims.csv", n_draws=4000)
    _pool(tmp_path, [True] * 8)
    pooled, which = predicted_tables(tmp_path / "claims.csv", n_draws=4000)
    assert "pooled members of 2 recorded ensembles" in which and "16 in family" in which
    verdicts = {"A1": "PASS", "B1": "PASS", "C1": "FAIL"}
    assert table_chance(pooled, verdicts)[1]["B1"] > table_chance(alone, verdicts)[1]["B1"] + 0.2
    _pool(tmp_path, [False] * 8)
    pooled, _ = predicted_tables(tmp_path / "claims.csv", n_draws=4000)
    assert table_chance(pooled, verdicts)[1]["B1"] < table_chance(alone, verdicts)[1]["B1"]


@pytest.mark.parametrize("doctor, message", [
    (lambda p: p.assign(passed=~p["passed"].astype(bool)), "`committed` rows differ"),
    (lambda p: p.drop(columns="ensemble"), "plus `ensemble`"),
    (lambda p: p[~((p["ensemble"] == "other") & (p["id"] == "C1"))], "other (family BC) have other sub-checks"),
])
def test_a_stale_pool_is_refused(tmp_path, capsys, doctor, message):
    _members_csv(tmp_path / "claims_members.csv")
    _pool(tmp_path, [True] * 8)
    pool = pd.read_csv(tmp_path / "reference_members.csv")
    doctor(pool).to_csv(tmp_path / "reference_members.csv", index=False)
    table({"A1": "PASS", "B1": "INCONCLUSIVE", "C1": "FAIL"}).to_csv(tmp_path / "claims.csv", index=False)
    rc, _, err = run("--compare", tmp_path / "claims.csv", tmp_path / "claims.csv", capsys=capsys)
    assert rc == 2 and "is stale" in err and message in err


def test_the_committed_pool_holds_the_committed_members():
    """R24: the default's pool (figures/reference_members.csv) is current: it holds the committed members' bits, and
    the ensembles docs/RESULTS.md records."""
    members, sizes, which = reference_members(ROOT / "figures/claims.csv")
    assert sizes == {"A": 20, "BC": 8} and "recorded ensembles" in which
    ensembles = pd.read_csv(ROOT / "figures/reference_members.csv")["ensemble"].unique()
    results = (ROOT / "docs/RESULTS.md").read_text()
    assert len(ensembles) >= 6 and all(e in results for e in ensembles)


def test_seed_override_replaces_every_seed_list():
    cfg = resolved_config(ROOT, None)
    o = seed_override(cfg, 10_000_000)
    assert o["pretrain"]["seeds"] == list(range(10_000_000, 10_000_000 + len(cfg["pretrain"]["seeds"])))
    assert len(o["control"]["seeds"]) == len(cfg["control"]["seeds"]) and o["workdir"].startswith("runs/")


def test_another_config_is_refused_before_anything_runs(repo, capsys):
    """The default config's table, where the smoke config's belongs (its workdir's figures/), is not the smoke
    config's."""
    shutil.copytree(repo / "figures", repo / SMOKE_OUT / "figures")
    rc, out, err = run("--repo", repo, "--configfile", "config/smoke.yaml", "--workdir", repo / "w", capsys=capsys)
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "made by another config than --configfile config/smoke.yaml" in err and "key(s): alignment." in err, err
    assert not (repo / "w").exists()


def test_a_config_is_compared_with_the_table_under_its_workdir(repo, capsys):
    """The smoke config's reference is runs/smoke/figures/claims.csv (its workdir's), not the committed figures/;
    the README's table (the default config's) is not checked against it."""
    rc, _, err = run("--repo", repo, "--configfile", "config/smoke.yaml", "--workdir", repo / "w", capsys=capsys)
    assert rc == 2 and f"{repo / SMOKE_OUT / 'figures/claims.csv'} does not exist" in err, err
    smoke = repo / SMOKE_OUT / "figures"
    smoke.mkdir(parents=True)
    verdicts = {"A1": "FAIL", "B2": "PASS"}  # not the README's
    table(verdicts).to_csv(smoke / "claims.csv", index=False)
    (smoke / "claims.md").write_text(md(verdicts))
    (smoke / "claims_config.yaml").write_text(yaml.safe_dump(resolved_config(repo, "config/smoke.yaml")))
    assert reference(repo, resolved_config(repo, "config/smoke.yaml"), "config/smoke.yaml") == smoke / "claims.csv"
    (smoke / "claims.md").write_text(md({"A1": "PASS", "B2": "PASS"}))
    rc, _, err = run("--repo", repo, "--configfile", "config/smoke.yaml", "--workdir", repo / "w", capsys=capsys)
    assert rc == 2 and f"{smoke / 'claims.md'} says A1 PASS but claims.csv says FAIL" in err, err


def test_a_verdict_doctored_in_the_readme_or_claims_md_is_caught(repo, capsys):
    readme = (repo / "README.md").read_text()
    (repo / "README.md").write_text(readme.replace("**INCONCLUSIVE**", "**PASS**"))
    rc, _, err = run("--repo", repo, "--workdir", repo / "w", capsys=capsys)
    assert rc == 2 and "README.md says B2 PASS but claims.csv says INCONCLUSIVE" in err
    (repo / "README.md").write_text(readme)
    (repo / "figures/claims.md").write_text(md({"A1": "PASS", "B2": "INCONCLUSIVE"}))
    rc, _, err = run("--repo", repo, "--workdir", repo / "w", capsys=capsys)
    assert rc == 2 and "says C1 (missing) but claims.csv says FAIL" in err


@pytest.mark.parametrize("doctor, message", [
    (lambda t: pd.concat([t, t.iloc[[0]]]), "claim id A1 appears more than once"),
    (lambda t: t.drop(columns="verdict"), "no `verdict` column"),
    (lambda t: t.assign(verdict=["PASS", "MAYBE", "FAIL"]), "B2 has a verdict that is not one of"),
])
def test_a_bad_table_is_one_line(repo, tmp_path, capsys, doctor, message):
    doctor(pd.read_csv(repo / "figures/claims.csv")).to_csv(tmp_path / "bad.csv", index=False)
    rc, _, err = run("--compare", tmp_path / "bad.csv", repo / "figures/claims.csv", capsys=capsys)
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err
    rc, _, err = run("--compare", tmp_path / "missing.csv", repo / "figures/claims.csv", capsys=capsys)
    assert rc == 2 and "no such verdict table" in err


def test_a_reused_workdir_is_refused(repo, capsys):
    (repo / "w").mkdir()
    (repo / "w/leftover").write_text("x")
    rc, _, err = run("--repo", repo, "--workdir", repo / "w", capsys=capsys)
    assert rc == 2 and "already exists and is not empty" in err


def test_the_command_line_fails_on_a_doctored_fresh_table(smoke_out, tmp_path):
    """The smoke table predicts its own verdicts with certainty (every sub-check is marked at K = 2, R17, so nothing
    depends on the members): a fresh table with one verdict flipped is improbable (R23) and fails."""
    committed = smoke_out / "figures/claims.csv"
    doctored = pd.read_csv(committed)
    flip = {"PASS": "FAIL", "FAIL": "PASS", "INCONCLUSIVE": "PASS"}
    doctored.loc[0, "verdict"] = flip[doctored.loc[0, "verdict"]]
    doctored.to_csv(tmp_path / "doctored.csv", index=False)
    cmd = [sys.executable, "-m", "vgh.fresh_check", "--compare"]
    same = subprocess.run(cmd + [str(committed), str(committed)], capture_output=True, text=True)
    assert same.returncode == 0 and "OK: all" in same.stdout
    bad = subprocess.run(cmd + [str(committed), str(tmp_path / "doctored.csv")], capture_output=True, text=True)
    assert bad.returncode == 1 and f"{doctored.loc[0, 'id']}: committed" in bad.stdout
    assert "predicted chance of the fresh verdict 0.000" in bad.stdout


def test_an_ensemble_pools_only_the_families_it_was_scored_for(tmp_path):
    """R29: another ensemble whose Part B/C rows left the pool (scored under rules no longer in force) still pools its
    Part A members; the B/C family is predicted from the committed members alone."""
    _members_csv(tmp_path / "claims_members.csv")
    _pool(tmp_path, [True] * 8)
    pool = pd.read_csv(tmp_path / "reference_members.csv")
    pool[~((pool["ensemble"] == "other") & (pool["family"] == "BC"))].to_csv(tmp_path / "reference_members.csv",
                                                                           index=False)
    pooled, which = predicted_tables(tmp_path / "claims.csv", n_draws=2000)
    assert "pooled members of 2 recorded ensembles" in which and "40 in family A" in which \
        and "8 in family BC" in which
    assert [sorted(f.columns) for f in pooled] == [["A1"], ["B1", "C1"]]
