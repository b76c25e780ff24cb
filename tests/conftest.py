import os
import subprocess
import sys
from pathlib import Path

import pytest

from vgh.io import copy_workflow as _copy_workflow

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg"}.items():
    os.environ[_k] = _v

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow (no results/, figures/ or .snakemake/ of the repo's)."""
    return _copy_workflow(ROOT, dest)


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc


# The `workflow` tier (pyproject.toml): every test that starts Snakemake or renders a figure notebook. `pytest -m
# "not workflow"` is the fast tier for development (docs/testing.md); `pytest` runs everything, as CI does. A test is
# tiered here by what it uses, so a new test that takes one of these fixtures, or a SLURM test, is tiered with it;
# tests that are slow by other means (a notebook rendered in-process, a tool run end to end) carry
# `@pytest.mark.workflow` themselves.
WORKFLOW_FIXTURES = {"smoke_run", "workflow_copy"}
WORKFLOW_MARKERS = {"slurm"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if WORKFLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or any(
                item.get_closest_marker(m) for m in WORKFLOW_MARKERS):
            item.add_marker(pytest.mark.workflow)


@pytest.fixture
def workflow_copy(tmp_path):
    return copy_workflow(tmp_path / "wf")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole workflow on the smoke config, once per test session, in a private copy."""
    wf = copy_workflow(tmp_path_factory.mktemp("smoke") / "wf")
    snakemake(wf, "--cores", "2", "--configfile", "config/smoke.yaml")
    return wf
