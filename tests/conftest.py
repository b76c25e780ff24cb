import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# On two workers (pytest-xdist, two cores) each worker computes on one thread: torch's and BLAS's default of a thread
# per core, twice over, made the fast tier twice as slow. Set before numpy or torch is first imported here; a job that
# Snakemake runs sets its own threads (`vgh.runtime.configure`).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"

from vgh.io import WORKFLOW_FILES  # noqa: E402
from vgh.io import copy_workflow as _copy_workflow  # noqa: E402
from vgh.runtime import OFFLINE_ENV  # noqa: E402

os.environ.update(OFFLINE_ENV)

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# Where the smoke config writes (its `workdir`, config/smoke.yaml): results/, figures/, logs/, benchmarks/, resume/
# and Snakemake's .snakemake/ of a smoke run lie under <workflow copy>/runs/smoke, never in the copy's own figures/.
# Snakemake still runs from the copy's root; targets on its command line are relative to this folder.
SMOKE_OUT = "runs/smoke"


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
# tests that are slow by other means (a notebook rendered in-process, a tool run end to end, over 1.5 s of
# computation) carry `@pytest.mark.workflow` themselves.
WORKFLOW_FIXTURES = {"smoke_run", "smoke_out", "workflow_copy"}
WORKFLOW_MARKERS = {"slurm"}
# pytest runs on two workers (pytest-xdist, `addopts` in pyproject.toml). The tests of the one smoke run (a session
# fixture: one per worker) share its folder, where several of them run Snakemake, so they run on one worker, in
# order, as one group, and first: the longest piece of work starts at once while the other worker takes the rest.
SMOKE_FIXTURES = {"smoke_run", "smoke_out"}
SMOKE_GROUP = "smoke_run"


def pytest_itemcollected(item):
    """Each test's tier and group, as it is collected (pytest-xdist reads the groups before the hook below runs)."""
    fixtures = set(getattr(item, "fixturenames", ()))
    if WORKFLOW_FIXTURES & fixtures or any(item.get_closest_marker(m) for m in WORKFLOW_MARKERS):
        item.add_marker(pytest.mark.workflow)
    if SMOKE_FIXTURES & fixtures:
        item.add_marker(pytest.mark.xdist_group(SMOKE_GROUP))


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: not SMOKE_FIXTURES & set(getattr(item, "fixturenames", ())))  # stable


@pytest.fixture
def workflow_copy(tmp_path):
    return copy_workflow(tmp_path / "wf")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole workflow on the smoke config, once per test session, in a private copy: the copy's root (where
    Snakemake runs). Its outputs are under `smoke_out`. The copy holds the repository's committed figures/, as a
    checkout does, so that a test can check that the smoke run leaves them as they were."""
    wf = copy_workflow(tmp_path_factory.mktemp("smoke") / "wf")
    shutil.copytree(ROOT / "figures", wf / "figures")
    snakemake(wf, "--cores", "2", "--configfile", "config/smoke.yaml")
    return wf


def as_default_layout(smoke_run: Path, dest: Path) -> Path:
    """A folder laid out as a checkout whose default-config run (workdir ".") made the smoke run's outputs: the
    copy's workflow files, and its runs/smoke results/ and figures/ at the root (links). Where a command that reads
    `results/` from the repository root (a figure notebook run by hand) runs against the smoke run."""
    dest.mkdir(parents=True, exist_ok=True)
    outputs = [smoke_run / SMOKE_OUT / n for n in ("results", "figures")]
    for item in [*(smoke_run / n for n in WORKFLOW_FILES), *outputs]:
        os.symlink(item, dest / item.name)
    return dest


@pytest.fixture(scope="session")
def smoke_out(smoke_run):
    """The smoke run's output folder (its results/, figures/, logs/, resume/ and .snakemake/)."""
    return smoke_run / SMOKE_OUT
