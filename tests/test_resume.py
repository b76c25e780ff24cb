"""Hard kills of the pretrain job on the smoke config: a rerun never mixes two runs and always completes.

The job is SIGKILLed at a chosen file operation by tests/hooks/sitecustomize.py (put on PYTHONPATH here
only), as `kill -9` or a lost cluster node would: mid-training, and between the checkpoint copies at the end. A
second job on a resume folder that a live job writes is refused; a damaged checkpoint is named with its remedy.
"""
import json
import os
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import ROOT, SMOKE_OUT, SNAKEMAKE

from vgh.lm.checkpoints import verify_checkpoint
from vgh.lm.pretrain import resume_lock

SMOKE = ["--configfile", "config/smoke.yaml"]
TARGET = "results/pretrain/member_1000/train_log.parquet"  # one member of the smoke ensemble (under SMOKE_OUT)


def run(wf, *args, kill=None):
    env = dict(os.environ)
    if kill:
        env.update(VGH_TEST_KILL=kill, PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT / "tests/hooks"), env.get("PYTHONPATH")) if p))
    return subprocess.run([SNAKEMAKE, "--cores", "2", TARGET, *SMOKE, *args], cwd=wf, env=env,
                          capture_output=True, text=True, timeout=600)


def checkpoint_configs(wf):
    steps = yaml.safe_load((wf / "config/smoke.yaml").read_text())["pretrain"]["checkpoints"]
    out = wf / SMOKE_OUT
    return {s: json.loads((out / f"results/pretrain/member_1000/step_{s}/config.json").read_text()) for s in steps}


@pytest.mark.workflow
def test_resume_after_a_config_change_starts_over_and_never_mixes(workflow_copy):
    killed = run(workflow_copy, kill="state.pt:3")  # SIGKILL after the step-150 resume state
    assert killed.returncode != 0
    assert (workflow_copy / SMOKE_OUT / "resume/pretrain/members_1000_1001/state.pt").exists()
    other = workflow_copy / "other.yaml"
    other.write_text(yaml.safe_dump({"data": {"corruption_rate": 0.2}, "model": {"n_head": 4}}))
    proc = run(workflow_copy, str(other))
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (workflow_copy / SMOKE_OUT / "logs/pretrain/members_1000_1001.log").read_text()
    assert "belongs to another run" in log and "resuming" not in log
    assert {c["n_head"] for c in checkpoint_configs(workflow_copy).values()} == {4}
    table = pd.read_parquet(workflow_copy / SMOKE_OUT / TARGET)
    assert table["step"].tolist() == sorted(set(table["step"])) and table["step"].iloc[0] == 0
    # the old state, moved aside
    assert list((workflow_copy / SMOKE_OUT).glob("resume/pretrain/members_1000_1001.other-run-*/state.pt"))


@pytest.mark.workflow
def test_a_kill_between_the_final_checkpoint_copies_recovers(workflow_copy, smoke_out):
    """The recovered run's table and checkpoints are those of an uninterrupted run: the session's smoke run (the
    same config and seeds on this CPU)."""
    killed = run(workflow_copy, kill="copytree:2")  # step_0 published, then SIGKILL
    assert killed.returncode != 0
    assert (workflow_copy / SMOKE_OUT / "resume/pretrain/members_1000_1001/state.pt").exists()
    proc = run(workflow_copy)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (workflow_copy / SMOKE_OUT / "logs/pretrain/members_1000_1001.log").read_text()
    assert "resuming pretraining from step 300" in log
    assert not (workflow_copy / SMOKE_OUT / "resume/pretrain/members_1000_1001").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(workflow_copy / SMOKE_OUT / TARGET),
                                  pd.read_parquet(smoke_out / TARGET), check_exact=True)
    for step in checkpoint_configs(workflow_copy):
        name = f"results/pretrain/member_1000/step_{step}/model.safetensors"
        assert (workflow_copy / SMOKE_OUT / name).read_bytes() == (smoke_out / name).read_bytes(), name


@pytest.mark.workflow
def test_a_second_pretrain_job_on_a_live_resume_folder_is_refused(workflow_copy):
    """As after `kill -9` of Snakemake, whose pretrain job runs on as an orphan, then `--unlock` and a rerun: the
    rerun's job must not write the same resume folder (here the orphan is this test, holding the folder's lock)."""
    with resume_lock(workflow_copy / SMOKE_OUT / "resume/pretrain/members_1000_1001"):
        proc = run(workflow_copy)
    assert proc.returncode != 0
    log = (workflow_copy / SMOKE_OUT / "logs/pretrain/members_1000_1001.log").read_text() + proc.stderr
    assert (f"another pretrain job (PID {os.getpid()}) is writing resume/pretrain/members_1000_1001; stop it (kill "
            f"{os.getpid()})") in log, log[-3000:]
    assert not (workflow_copy / SMOKE_OUT / "resume/pretrain/members_1000_1001/state.pt").exists()


@pytest.mark.workflow
def test_a_truncated_checkpoint_is_named_by_the_job_that_loads_it_and_its_command_rebuilds_it(workflow_copy):
    assert run(workflow_copy).returncode == 0
    folder = "results/pretrain/member_1000/step_300"
    weights = workflow_copy / SMOKE_OUT / folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    target = "results/costates/member_1000/update_alignment.parquet"
    proc = subprocess.run([SNAKEMAKE, "--cores", "2", target, *SMOKE], cwd=workflow_copy, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode != 0
    log = (workflow_copy / SMOKE_OUT / "logs/update_alignment/members_1000_1001.log").read_text()
    assert f"checkpoint file {folder}/model.safetensors has 1000 bytes, its manifest says" in log, log[-3000:]
    command = f"snakemake --cores all --force {folder}"
    assert command in log
    fixed = subprocess.run([*command.replace("snakemake", SNAKEMAKE, 1).split(), *SMOKE], cwd=workflow_copy,
                           capture_output=True, text=True, timeout=600, check=False)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    verify_checkpoint(workflow_copy / SMOKE_OUT / folder)
    steps = workflow_copy / "steps.yaml"  # a changed pretraining param reruns the job, its log table requested alone
    steps.write_text(yaml.safe_dump({"pretrain": {"steps": 400}}))
    dry = run(workflow_copy, str(steps), "-n")
    assert "rule pretrain_group_0" in dry.stdout and "Params have changed" in dry.stdout, dry.stdout[-3000:]
