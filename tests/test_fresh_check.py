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

from vgh.fresh_check import compare_verdicts, failing_flips, main, reference, resolved_config


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
    """A repository with the workflow's config and schema, and a committed default verdict table that the
    README and figures/claims.md repeat."""
    r = tmp_path / "repo"
    shutil.copytree(ROOT / "config", r / "config")
    shutil.copytree(ROOT / "workflow/schemas", r / "workflow/schemas")
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


def test_only_flips_of_unstable_verdicts_are_tolerated():
    """R19: PASS <-> FAIL always fails; another flip fails unless the committed recurrence was < 0.9."""
    committed = table({"A1": "PASS", "B2": "INCONCLUSIVE", "C1": "FAIL"}).assign(recurrence=[0.5, 0.6, 0.95])
    assert failing_flips(committed, table({"A1": "FAIL", "B2": "INCONCLUSIVE", "C1": "FAIL"})) == ["A1"]
    assert failing_flips(committed, table({"A1": "INCONCLUSIVE", "B2": "PASS", "C1": "FAIL"})) == []
    assert failing_flips(committed, table({"A1": "PASS", "B2": "INCONCLUSIVE", "C1": "INCONCLUSIVE"})) == ["C1"]
    assert failing_flips(committed.drop(columns="recurrence"),
                         table({"A1": "PASS", "B2": "PASS", "C1": "FAIL"})) == ["B2"]  # unknown: strict


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


def test_the_command_line_fails_on_a_doctored_committed_table(smoke_out, tmp_path):
    fresh = smoke_out / "figures/claims.csv"
    doctored = pd.read_csv(fresh)
    flip = {"PASS": "FAIL", "FAIL": "PASS", "INCONCLUSIVE": "PASS"}
    doctored.loc[0, "verdict"] = flip[doctored.loc[0, "verdict"]]
    doctored.loc[0, "recurrence"] = 1.0  # a stable verdict: its flip fails (R19)
    doctored.to_csv(tmp_path / "doctored.csv", index=False)
    cmd = [sys.executable, "-m", "vgh.fresh_check", "--compare"]
    same = subprocess.run(cmd + [str(fresh), str(fresh)], capture_output=True, text=True)
    assert same.returncode == 0 and "OK: all" in same.stdout
    bad = subprocess.run(cmd + [str(tmp_path / "doctored.csv"), str(fresh)], capture_output=True, text=True)
    assert bad.returncode == 1 and f"{doctored.loc[0, 'id']}: committed" in bad.stdout
