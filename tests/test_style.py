"""Style: ruff (lint, configured in pyproject.toml) and snakefmt (the Snakefile and rule files) are clean, so CI
checks them with the README's test command; no library module is over 300 lines."""
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", [["ruff", "check", "."], ["snakefmt", "--check", "Snakefile", "workflow/rules"]],
                         ids=["ruff", "snakefmt"])
def test_style_is_clean(command):
    proc = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"`{' '.join(command)}` is not clean:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"


def test_no_library_module_over_300_lines():
    """Issue 32: a module of the library holds one topic; none grows past 300 lines (split it by topic instead)."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "src/vgh").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long
