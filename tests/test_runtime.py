"""Device selection and process set-up."""
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import snakemake

from vgh.runtime import select_device


def test_auto_falls_back_to_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="`device` is 'cuda'"):
        select_device("cuda")


def test_auto_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    before = torch.backends.cuda.matmul.fp32_precision
    assert before != "tf32"
    try:
        assert select_device("auto") == torch.device("cuda")
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"  # CUDA's float32 matmuls may use TF32
    finally:
        torch.backends.cuda.matmul.fp32_precision = before


def test_gpu_config_builds_its_dag(workflow_copy):
    out = snakemake(workflow_copy, "-n", "--cores", "4", "--resources", "gpu=1", "--configfile",
                    "config/gpu.yaml").stdout
    assert "pretrain_group_0" in out and "trajectory_group_0" in out and "costates_group_0" in out
    # GPU rules declare the resource, so --resources gpu=1 serializes them on one card
    shown = snakemake(workflow_copy, "-n", "-p", "--cores", "4", "--configfile", "config/gpu.yaml",
                      "--forcerun", "pretrain_group_0").stdout
    assert re.search(r"resources: .*\bgpu=1\b", shown)



def test_job_log_receives_warnings_and_the_uncaught_exception(tmp_path):
    """A job's own log holds its traceback and warnings (on a cluster its stderr may be elsewhere)."""
    log = tmp_path / "logs/job.log"
    script = tmp_path / "job.py"
    script.write_text(
        "import warnings\n"
        "from vgh.runtime import configure\n"
        f"log = configure(1, {str(log)!r})\n"
        "log.info('started')\n"
        "warnings.warn('a python warning')\n"
        "from transformers.utils import logging as hf_logging\n"
        "hf_logging.get_logger('transformers.modeling_utils').warning('a transformers warning')\n"
        "raise ValueError('the job broke here')\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    text = log.read_text()
    for needle in ("started", "a python warning", "a transformers warning", "Traceback",
                   "ValueError: the job broke here"):
        assert needle in text, f"{needle!r} missing from the job log:\n{text}"
    assert "ValueError: the job broke here" in proc.stderr  # and still on stderr
    assert proc.stderr.count("Traceback") == 1


def run_job(tmp_path, body: str, timeout=120) -> subprocess.CompletedProcess:
    """A job script (`configure` first, then `body`) run as Snakemake's `script:` runs it."""
    script = tmp_path / "job.py"
    script.write_text("import transformers  # as a job script may, before configure\n"
                      f"from vgh.runtime import configure\nlog = configure(1, {str(tmp_path / 'logs/job.log')!r})\n"
                      + body)
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}  # tools/gpu_cost.py, imported by a test, sets it
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, env=env)


def test_ctrl_c_ends_a_job_in_one_line(tmp_path):
    """Issue 31: Ctrl-C printed a long KeyboardInterrupt traceback from every job."""
    proc = run_job(tmp_path, "def deep(n):\n    return deep(n - 1) if n else (_ for _ in ()).throw(KeyboardInterrupt)\n"
                             "deep(20)\n")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["interrupted (Ctrl-C): run the same command again to resume"]
    # before `configure`: during a job's heavy imports, once it imported vgh.runtime (a job's first vgh import)
    early = subprocess.run([sys.executable, "-c", "import vgh.runtime\nraise KeyboardInterrupt\n"],
                           capture_output=True, text=True, timeout=120)
    assert early.stderr.strip().splitlines() == ["interrupted (Ctrl-C): run the same command again to resume"]


def test_a_full_disk_names_the_folder_its_free_space_and_the_remedy(tmp_path, monkeypatch):
    """Issue 31: a full disk gave "basic_ios::clear: iostream error" (torch.save) or ENOSPC and nothing else."""
    import errno
    import shutil
    from collections import namedtuple

    from vgh.runtime import disk_full_hint

    hint = disk_full_hint(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert f"the disk holding {tmp_path} is full (" in hint and "MB free" in hint and "run the same command" in hint
    assert disk_full_hint(ValueError("a bug"), tmp_path) is None
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9 - 10 ** 6, 10 ** 6))
    hint = disk_full_hint(RuntimeError("basic_ios::clear: iostream error"), tmp_path)
    assert hint is not None and "(1 MB free)" in hint
    proc = run_job(tmp_path, "import errno\nraise OSError(errno.ENOSPC, 'No space left on device')\n")
    assert "is full (" in proc.stderr and "is full (" in (tmp_path / "logs/job.log").read_text()


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_a_job_still_running_keeps_its_log(tmp_path):
    """Issue 31: a rerun overwrote the log of a job still running from a killed Snakemake (an orphan); now the
    orphan's log is moved aside (it goes on writing there) and the new job's log says where."""
    import time

    log = tmp_path / "logs/job.log"
    orphan = subprocess.Popen([sys.executable, "-c", "import time\nfrom vgh.runtime import configure\n"
                               f"log = configure(1, {str(log)!r})\nlog.info('orphan: first')\ntime.sleep(4)\n"
                               "log.info('orphan: last')\n"])
    for _ in range(100):
        if log.exists() and "orphan: first" in log.read_text():
            break
        time.sleep(0.1)
    proc = run_job(tmp_path, "log.info('rerun')\n")
    orphan.wait(timeout=60)
    assert proc.returncode == 0
    kept = [p for p in log.parent.iterdir() if p.name.startswith(f"job.log.running-{orphan.pid}-")]
    assert len(kept) == 1 and kept[0].read_text().count("orphan:") == 2
    assert "rerun" in log.read_text() and kept[0].name in log.read_text() and "orphan" not in log.read_text()
    assert "moved" not in run_job(tmp_path, "log.info('third')\n").stderr  # no job holds it now: overwritten


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_a_job_shows_its_progress_but_no_loading_weights_bars(tmp_path):
    """Issue 31: transformers drew a "Loading weights" bar at every checkpoint load (32 in a smoke run's output);
    a long job's own loop shows one bar with its time left."""
    from vgh.lm.model import build_model

    build_model(16, 8, 1, 2, 8, seed=0).save_pretrained(tmp_path / "ckpt")
    folder = str(tmp_path / "ckpt")
    proc = run_job(tmp_path, "from vgh.lm.model import load_model\nfrom vgh.runtime import progress\n"
                             f"for _ in progress(range(3), 'checkpoints'):\n    load_model({folder!r})\n")
    assert proc.returncode == 0, proc.stderr
    assert "Loading weights" not in proc.stderr and "checkpoints: 100%" in proc.stderr
