"""Pretraining: checkpoints reload exactly, an interrupted run resumes to identical weights, NaN stops it; every
checkpoint carries a manifest its loader checks; one writer per resume folder."""
import json
import logging
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from vgh.lm.checkpoints import CheckpointError, verify_checkpoint
from vgh.lm.model import build_model, load_model
from vgh.lm.pretrain import PretrainSettings, ResumeLocked, finish_pretraining, pretrain, resume_lock
from vgh.lm.task import answer_indices, build_tokenizer, digit_token_ids, encode_prompts, make_splits

LOG = logging.getLogger("test")


@pytest.fixture(scope="module")
def task():
    tok = build_tokenizer()
    s = make_splits(1, 400, 10, 10, 0.1, np.random.default_rng(0))
    return dict(tok=tok, train=encode_prompts(tok, s["pretrain"]["text"]),
                prompts=encode_prompts(tok, s["eval"]["prompt"]), answers=answer_indices(s["eval"]["answer"]),
                digits=digit_token_ids(tok))


SEED = 3  # the lone member of these tests (a group of one: `pretrain` is the same code for every group size)


def run(task, tmp, settings, save=None, n_head=2, train=None):
    model = build_model(len(task["tok"]), task["train"].shape[1], 1, n_head, 16, seed=SEED)
    saved = {}

    def save_checkpoint(m, folder):
        if save:
            save(folder)
        m.save_pretrained(folder)
        saved[folder.name] = {k: v.clone() for k, v in m.state_dict().items()}

    tables = pretrain({SEED: model}, (task["train"] if train is None else train)[None], task["prompts"][None],
                      task["answers"][None], task["digits"], settings, tmp / "resume", save_checkpoint, LOG)
    return model, tables[SEED], saved


SETTINGS = PretrainSettings(steps=60, batch_size=16, lr=3e-3, warmup=5, checkpoints=(0, 20, 60), eval_every=10)


def test_training_lowers_the_loss_and_saves_every_checkpoint(task, tmp_path):
    model, table, saved = run(task, tmp_path, SETTINGS)
    assert set(saved) == {"step_0", "step_20", "step_60"}
    assert table["loss"].iloc[-1] < table["loss"].dropna().iloc[0]
    assert list(table["step"]) == [0, 10, 20, 30, 40, 50, 60]


def test_reloaded_checkpoint_gives_identical_logits(task, tmp_path):
    model, _, _ = run(task, tmp_path, SETTINGS)
    again = load_model(str(tmp_path / f"resume/checkpoints/member_{SEED}/step_60"))
    assert again.config._attn_implementation == "eager"
    with torch.no_grad():
        assert torch.equal(model(input_ids=task["train"][:8]).logits, again(input_ids=task["train"][:8]).logits)


def test_interrupted_run_resumes_to_identical_weights(task, tmp_path):
    full, full_table, _ = run(task, tmp_path / "full", SETTINGS)

    def crash(folder):
        if folder.name == "step_60":
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt):
        run(task, tmp_path / "cut", SETTINGS, save=crash)
    assert (tmp_path / "cut/resume/state.pt").exists()
    resumed, table, saved = run(task, tmp_path / "cut", SETTINGS)
    assert "step_0" not in saved and "step_60" in saved  # it did resume, not restart
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert full_table.equals(table)


def test_resume_state_of_other_settings_is_ignored(task, tmp_path):
    def crash(folder):
        if folder.name == "step_60":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(task, tmp_path, SETTINGS, save=crash)
    other = PretrainSettings(**{**SETTINGS.__dict__, "lr": 1e-3})
    _, _, saved = run(task, tmp_path, other)
    assert "step_0" in saved  # started afresh


@pytest.mark.parametrize("change", ["model config", "data"])
def test_resume_state_of_another_model_or_data_is_moved_aside(task, tmp_path, caplog, change):
    """Never mix two runs in one trajectory: another model config or other data restart from step 0."""
    def crash(folder):
        if folder.name == "step_60":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(task, tmp_path, SETTINGS, save=crash)
    other = dict(n_head=4) if change == "model config" else dict(train=task["train"].flip(0))
    with caplog.at_level(logging.WARNING, logger="test"):
        model, table, saved = run(task, tmp_path, SETTINGS, **other)
    assert "step_0" in saved and list(table["step"]) == [0, 10, 20, 30, 40, 50, 60]  # started afresh
    assert "belongs to another run" in caplog.text
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("resume.other-run-")]
    assert len(aside) == 1 and (aside[0] / "state.pt").exists()  # the old state is kept, out of the way
    fresh, fresh_table, _ = run(task, tmp_path / "fresh", SETTINGS, **other)
    for (k, a), b in zip(fresh.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    assert fresh_table.equals(table)


class Killed(BaseException):
    """A kill: nothing catches it."""


def finished_outputs(root):
    ckpts = {s: (root / f"out/step_{s}/model.safetensors").read_bytes() for s in SETTINGS.checkpoints}
    return ckpts, pd.read_parquet(root / "out/train_log.parquet")


def finish(root, table):
    finish_pretraining(root / "resume", {(SEED, s): root / f"out/step_{s}" for s in SETTINGS.checkpoints},
                       {SEED: table}, {SEED: root / "out/train_log.parquet"})


def run_and_finish(task, root):
    _, table, _ = run(task, root, SETTINGS)
    finish(root, table)


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_a_kill_at_any_step_of_the_finish_leaves_a_state_that_completes(task, tmp_path, monkeypatch):
    """Kill the end of pretraining before each file operation in turn; the rerun must give the same outputs."""
    run_and_finish(task, tmp_path / "ref")
    reference = finished_outputs(tmp_path / "ref")
    assert not (tmp_path / "ref/resume").exists()
    calls = {"n": 0, "kill_at": None}
    real = {(os, "replace"): os.replace, (shutil, "copytree"): shutil.copytree, (shutil, "rmtree"): shutil.rmtree}

    def counted(fn):
        def wrapped(*args, **kwargs):
            if calls["n"] == calls["kill_at"]:
                raise Killed
            calls["n"] += 1
            return fn(*args, **kwargs)
        return wrapped

    kill_at = 0
    while True:
        root = tmp_path / f"kill_{kill_at}"
        _, table, _ = run(task, root, SETTINGS)
        calls.update(n=0, kill_at=kill_at)
        for (mod, name), fn in real.items():
            monkeypatch.setattr(mod, name, counted(fn))
        try:
            finish(root, table)
            killed = False
        except Killed:
            killed = True
        finally:
            monkeypatch.undo()
        if not killed:
            break
        # Snakemake deletes the outputs of an incomplete job before it reruns it
        shutil.rmtree(root / "out", ignore_errors=True)
        run_and_finish(task, root)
        ckpts, table = finished_outputs(root)
        assert ckpts == reference[0], f"kill before file operation {kill_at}"
        pd.testing.assert_frame_equal(table, reference[1], check_exact=True)
        assert not (root / "resume").exists() and not (root / ".resume.trash").exists()
        kill_at += 1
    assert kill_at >= len(SETTINGS.checkpoints) + 2  # every copy, the log table and the clean-up were cut


def test_nan_loss_stops_with_a_clear_error(task, tmp_path):
    model = build_model(len(task["tok"]), task["train"].shape[1], 1, 2, 16, seed=SEED)
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"pretraining loss is nan at step 0 \(member seed 3\)"):
        pretrain({SEED: model}, task["train"][None], task["prompts"][None], task["answers"][None], task["digits"],
                 SETTINGS, tmp_path / "r", lambda m, f: m.save_pretrained(f), LOG)


def test_checkpoints_carry_a_manifest_and_the_usual_permissions(task, tmp_path):
    run_and_finish(task, tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    for s in SETTINGS.checkpoints:
        folder = tmp_path / f"out/step_{s}"
        files = json.loads((folder / "manifest.json").read_text())["files"]
        assert set(files) == {p.name for p in folder.iterdir()} - {"manifest.json"}
        assert files["model.safetensors"]["size"] == (folder / "model.safetensors").stat().st_size
        for p in folder.iterdir():
            assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p  # safetensors alone would write 0600
        verify_checkpoint(folder)


@pytest.mark.parametrize("damage", ["truncate", "overwrite", "delete"])
def test_a_damaged_checkpoint_is_named_with_its_rebuild_command(task, tmp_path, damage):
    run_and_finish(task, tmp_path)
    folder = tmp_path / "out/step_20"
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[:len(data) // 2])
    elif damage == "overwrite":
        weights.write_bytes(bytes(len(data)))
    else:
        weights.unlink()
    expected = {"truncate": f"has {len(data) // 2} bytes, its manifest says {len(data)}",
                "overwrite": "differs from its manifest's sha256", "delete": "is missing"}[damage]
    with pytest.raises(CheckpointError) as err:
        load_model(str(folder))
    assert f"checkpoint file {weights} {expected}" in str(err.value)
    assert f"snakemake --cores all --force {folder}" in str(err.value)


def test_a_checkpoint_without_manifest_that_does_not_load_is_named(task, tmp_path):
    model = build_model(len(task["tok"]), task["train"].shape[1], 1, 2, 16, seed=3)
    model.save_pretrained(tmp_path / "old")
    data = (tmp_path / "old/model.safetensors").read_bytes()
    (tmp_path / "old/model.safetensors").write_bytes(data[:8])
    with pytest.raises(CheckpointError, match=f"cannot load checkpoint {tmp_path / 'old'} .*model.safetensors.*"
                                              f"SafetensorError.*snakemake --cores all --force"):
        load_model(str(tmp_path / "old"))


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_a_second_writer_of_a_resume_folder_is_refused_with_the_first_ones_pid(tmp_path):
    code = ("import sys; from vgh.lm.pretrain import resume_lock\n"
            "with resume_lock(sys.argv[1]):\n    print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "member_0")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        message = f"another pretrain job \\(PID {holder.pid}\\) is writing {tmp_path / 'member_0'}; stop it"
        with pytest.raises(ResumeLocked, match=message), resume_lock(tmp_path / "member_0"):
            pass
    finally:
        holder.communicate("")
    with resume_lock(tmp_path / "member_0"):  # released when its holder ends: no stale lock
        assert (tmp_path / "member_0.lock").read_text().strip() == str(os.getpid())


def test_a_failed_save_leaves_no_temporary_file(task, tmp_path, monkeypatch):
    """Issue 31: a full disk left state.pt.tmp in resume/ (and a half-written checkpoint in .staging/)."""
    import errno

    import vgh.lm.pretrain as pre

    real_save = torch.save

    def full_disk(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)  # part of it on disk, then the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pre.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run(task, tmp_path, SETTINGS)
    assert not list((tmp_path / "resume").glob("*.tmp"))

    def failing_checkpoint(folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pre.torch, "save", real_save)
    with pytest.raises(OSError, match="No space left"):
        run(task, tmp_path / "b", SETTINGS, save=lambda folder: (folder.mkdir(parents=True, exist_ok=True),
                                                                  failing_checkpoint(folder)))
    assert not list((tmp_path / "b/resume").rglob(".staging/*"))


def test_the_log_shows_no_nan_loss_before_the_first_step(task, tmp_path, caplog):
    """Issue 31: the pretraining log's step-0 line said "loss nan" (no step has been taken; the table keeps NaN)."""
    import logging

    with caplog.at_level(logging.INFO, logger=LOG.name):
        _, table, _ = run(task, tmp_path, SETTINGS)
    step0 = [r.getMessage() for r in caplog.records if " step 0 " in r.getMessage()]
    assert step0 and all("nan" not in m and "loss - (no step yet)" in m for m in step0)
    assert np.isnan(table["loss"].iloc[0])
