"""Device selection and process set-up."""
import re

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
    assert select_device("auto") == torch.device("cuda")


def test_gpu_config_builds_its_dag(workflow_copy):
    out = snakemake(workflow_copy, "-n", "--cores", "4", "--resources", "gpu=1", "--configfile",
                    "config/gpu.yaml").stdout
    assert "pretrain" in out and "rl_run" in out and "costates" in out
    # GPU rules declare the resource, so --resources gpu=1 serializes them on one card
    shown = snakemake(workflow_copy, "-n", "-p", "--cores", "4", "--configfile", "config/gpu.yaml",
                      "--forcerun", "pretrain").stdout
    assert re.search(r"resources: .*\bgpu=1\b", shown)

