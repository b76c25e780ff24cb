"""tools/: developer tools that no rule runs. Each is listed in tools/README.md, runs from the repository root, and
nothing the workflow runs uses it."""
import re
import subprocess
import sys

import pytest
from conftest import ROOT

TOOLS = sorted(p.name for p in (ROOT / "tools").glob("*.py"))
COMMANDS = ["gpu_probe.py", "gpu_cost.py", "bench.py", "rescore_pool.py"]  # launches.py is a module of gpu_cost.py


def test_every_tool_has_a_line_in_the_readme():
    readme = (ROOT / "tools/README.md").read_text()
    assert set(COMMANDS) < set(TOOLS)
    for name in TOOLS:
        assert f"**`{name}`**" in readme, name
    for name in COMMANDS:
        assert f"`python tools/{name} " in readme, name


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_tool_runs_from_the_repository_root(name):
    proc = subprocess.run([sys.executable, f"tools/{name}", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"python tools/{name}" in proc.stdout


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_rescore_pool_refuses_a_claim_outside_part_a():
    """Only Part A is rebuilt from its seeds alone (float64); a Part B/C claim's pool rows are another float32 draw."""
    proc = subprocess.run([sys.executable, "tools/rescore_pool.py", "B1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "B1 is not a Part A claim" in proc.stderr, proc.stderr[-2000:]


def test_nothing_the_workflow_runs_uses_the_tools():
    stems = "|".join(re.escape(p.removesuffix(".py")) for p in TOOLS)
    pattern = re.compile(rf"\btools/|^\s*(from|import) ({stems})\b|vgh\.({stems})\b", re.M)
    runs = [ROOT / "Snakefile", *(ROOT / "workflow").rglob("*.smk"), *(ROOT / "workflow").rglob("*.py"),
            *(ROOT / "src").rglob("*.py")]
    used = [str(p.relative_to(ROOT)) for p in runs if pattern.search(p.read_text())]
    assert not used, used


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_fresh_ensembles_compares_scores_and_pools(tmp_path):
    """tools/fresh_ensembles.py (R22-R24) on the committed table and two copies of it named after their workdirs,
    one with B1 turned to PASS: per claim the count of same verdicts, per ensemble its flips, and --pool writes every
    ensemble's member bits with its name (what CI's check predicts from)."""
    import pandas as pd

    runs = {}
    for name in ("fresh_a", "fresh_b"):
        fig = tmp_path / "runs" / name / "figures"
        fig.mkdir(parents=True)
        claims = pd.read_csv(ROOT / "figures/claims.csv")
        if name == "fresh_b":
            claims.loc[claims["id"] == "B1", "verdict"] = "PASS"
        claims.to_csv(fig / "claims.csv", index=False)
        (fig / "claims_members.csv").write_text((ROOT / "figures/claims_members.csv").read_text())
        runs[name] = fig / "claims.csv"
    pool = tmp_path / "pool.csv"
    proc = subprocess.run([sys.executable, "tools/fresh_ensembles.py", "figures/claims.csv", *map(str, runs.values()),
                           "--pool", str(pool)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    committed = pd.read_csv(ROOT / "figures/claims.csv").set_index("id")["verdict"]
    b1 = [line for line in proc.stdout.splitlines() if line.startswith("| B1 |")][0]
    assert f"| B1 | {committed['B1']} |" in b1 and ("1/2 (PASS)" in b1) == (committed["B1"] != "PASS")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in proc.stdout.splitlines()
            if line.startswith("| fresh_")}
    assert "| none |" in rows["fresh_a"] and f"B1 {committed['B1']} -> PASS" in rows["fresh_b"]
    pooled = pd.read_csv(pool)
    assert list(pooled["ensemble"].unique()) == ["committed", "fresh_a", "fresh_b"]
    assert len(pooled) == 3 * len(pd.read_csv(ROOT / "figures/claims_members.csv"))
