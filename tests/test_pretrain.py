"""Pretraining: checkpoints reload exactly, an interrupted run resumes to identical weights, NaN stops it."""
import logging

import numpy as np
import pytest
import torch

from vgh.lm.model import build_model, load_model
from vgh.lm.pretrain import PretrainSettings, pretrain
from vgh.lm.task import answer_indices, build_tokenizer, digit_token_ids, encode_prompts, make_splits

LOG = logging.getLogger("test")


@pytest.fixture(scope="module")
def task():
    tok = build_tokenizer()
    s = make_splits(1, 400, 10, 10, 0.1, np.random.default_rng(0))
    return dict(tok=tok, train=encode_prompts(tok, s["pretrain"]["text"]),
                prompts=encode_prompts(tok, s["eval"]["prompt"]), answers=answer_indices(s["eval"]["answer"]),
                digits=digit_token_ids(tok))


def run(task, tmp, settings, save=None):
    model = build_model(len(task["tok"]), task["train"].shape[1], 1, 2, 16, seed=3)
    saved = {}

    def save_checkpoint(m, folder):
        if save:
            save(folder)
        m.save_pretrained(folder)
        saved[folder.name] = {k: v.clone() for k, v in m.state_dict().items()}

    table = pretrain(model, task["train"], task["prompts"], task["answers"], task["digits"], settings,
                     tmp / "resume", save_checkpoint, LOG)
    return model, table, saved


SETTINGS = PretrainSettings(steps=60, batch_size=16, lr=3e-3, warmup=5, checkpoints=(0, 20, 60), eval_every=10,
                            seed=0)


def test_training_lowers_the_loss_and_saves_every_checkpoint(task, tmp_path):
    model, table, saved = run(task, tmp_path, SETTINGS)
    assert set(saved) == {"step_0", "step_20", "step_60"}
    assert table["loss"].iloc[-1] < table["loss"].dropna().iloc[0]
    assert list(table["step"]) == [0, 10, 20, 30, 40, 50, 60]


def test_reloaded_checkpoint_gives_identical_logits(task, tmp_path):
    model, _, _ = run(task, tmp_path, SETTINGS)
    again = load_model(str(tmp_path / "resume/checkpoints/step_60"))
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


def test_nan_loss_stops_with_a_clear_error(task, tmp_path):
    model = build_model(len(task["tok"]), task["train"].shape[1], 1, 2, 16, seed=3)
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="pretraining loss is nan"):
        pretrain(model, task["train"], task["prompts"], task["answers"], task["digits"], SETTINGS, tmp_path / "r",
                 lambda m, f: None, LOG)
