"""tools/: developer tools that no rule runs. Each is listed in tools/README.md, runs from the repository root, and
nothing the workflow runs uses it."""
import re
import subprocess
import sys

import pytest
from conftest import ROOT

TOOLS = sorted(p.name for p in (ROOT / "tools").glob("*.py"))
COMMANDS = ["gpu_probe.py", "gpu_cost.py", "bench.py"]  # launches.py is a module of gpu_cost.py


def test_every_tool_has_a_line_in_the_readme():
    readme = (ROOT / "tools/README.md").read_text()
    assert set(COMMANDS) < set(TOOLS)
    for name in TOOLS:
        assert f"**`{name}`**" in readme, name
    for name in COMMANDS:
        assert f"`python tools/{name} " in readme, name


@pytest.mark.parametrize("name", COMMANDS)
def test_tool_runs_from_the_repository_root(name):
    proc = subprocess.run([sys.executable, f"tools/{name}", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"python tools/{name}" in proc.stdout


def test_nothing_the_workflow_runs_uses_the_tools():
    stems = "|".join(re.escape(p.removesuffix(".py")) for p in TOOLS)
    pattern = re.compile(rf"\btools/|^\s*(from|import) ({stems})\b|vgh\.({stems})\b", re.M)
    runs = [ROOT / "Snakefile", *(ROOT / "workflow").rglob("*.smk"), *(ROOT / "workflow").rglob("*.py"),
            *(ROOT / "src").rglob("*.py")]
    used = [str(p.relative_to(ROOT)) for p in runs if pattern.search(p.read_text())]
    assert not used, used
