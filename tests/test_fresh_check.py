"""The fresh-machine verdict check: it passes on agreeing verdicts (numbers may differ) and fails on a doctored
table, through the same command line CI uses."""
import subprocess
import sys

import pandas as pd

from vgh.fresh_check import compare_verdicts


def table(verdicts, shift=0.0):
    return pd.DataFrame({"id": list(verdicts), "estimate": [0.9 + shift] * len(verdicts),
                         "interval_lo": [0.8] * len(verdicts), "interval_hi": [0.95] * len(verdicts),
                         "members_passing": [5] * len(verdicts), "n_members": [5] * len(verdicts),
                         "verdict": list(verdicts.values())})


def test_numbers_may_differ_verdicts_may_not():
    committed = table({"A1": "PASS", "B2": "INCONCLUSIVE", "C1": "FAIL"})
    assert compare_verdicts(committed, table({"A1": "PASS", "B2": "INCONCLUSIVE", "C1": "FAIL"}, 0.01)) == []
    diffs = compare_verdicts(committed, table({"A1": "PASS", "B2": "PASS", "C1": "FAIL"}))
    assert len(diffs) == 1 and diffs[0].startswith("B2: committed INCONCLUSIVE")
    assert compare_verdicts(committed, table({"A1": "PASS", "B2": "INCONCLUSIVE"})) == ["C1: only in the committed table"]


def test_the_command_line_fails_on_a_doctored_committed_table(smoke_run, tmp_path):
    fresh = smoke_run / "figures/claims.csv"
    doctored = pd.read_csv(fresh)
    flip = {"PASS": "FAIL", "FAIL": "PASS", "INCONCLUSIVE": "PASS"}
    doctored.loc[0, "verdict"] = flip[doctored.loc[0, "verdict"]]
    doctored.to_csv(tmp_path / "doctored.csv", index=False)
    cmd = [sys.executable, "-m", "vgh.fresh_check", "--compare"]
    same = subprocess.run(cmd + [str(fresh), str(fresh)], capture_output=True, text=True)
    assert same.returncode == 0 and "OK: all" in same.stdout
    bad = subprocess.run(cmd + [str(tmp_path / "doctored.csv"), str(fresh)], capture_output=True, text=True)
    assert bad.returncode == 1 and f"{doctored.loc[0, 'id']}: committed" in bad.stdout
