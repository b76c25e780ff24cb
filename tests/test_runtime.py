"""Device selection and process set-up."""
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
