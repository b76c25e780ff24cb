"""Stacked pretraining of a group of members (`vgh.lm.pretrain_stack`): each member in a group trains exactly as it
trains alone, a group of one agrees with the lone Hugging Face model, a group resumes to the same weights, and a
non-finite loss names its member."""
import logging

import numpy as np
import pytest
import torch

from vgh.lm.model import build_model
from vgh.lm.pretrain import PretrainSettings, hf_train_step, pretrain
from vgh.lm.pretrain_stack import train_step
from vgh.lm.stack import Stack, StackedOptimizer
from vgh.lm.task import answer_indices, build_tokenizer, digit_token_ids, encode_prompts, make_splits

LOG = logging.getLogger("test")
SETTINGS = PretrainSettings(steps=30, batch_size=16, lr=3e-3, warmup=5, checkpoints=(0, 15, 30), eval_every=10)


@pytest.fixture(scope="module")
def task():
    tok = build_tokenizer()
    s = make_splits(1, 400, 10, 10, 0.1, np.random.default_rng(0))
    return dict(tok=tok, train=encode_prompts(tok, s["pretrain"]["text"]),
                prompts=encode_prompts(tok, s["eval"]["prompt"]), answers=answer_indices(s["eval"]["answer"]),
                digits=digit_token_ids(tok))


def model(task, seed):
    return build_model(len(task["tok"]), task["train"].shape[1], 2, 2, 16, seed)


def run(task, root, seeds, save=None, poison=None):
    """Pretrain the group `seeds`; returns ({seed: final model}, {seed: table}, {(seed, step): saved weights})."""
    members = {s: model(task, s) for s in seeds}
    if poison is not None:
        with torch.no_grad():
            members[poison].lm_head.weight.fill_(float("nan"))
    saved = {}

    def save_checkpoint(m, folder):
        seed, step = int(folder.parent.parent.name.removeprefix("member_")), int(folder.name.removeprefix("step_"))
        if save:
            save(seed, step)
        m.save_pretrained(folder)
        saved[seed, step] = {k: v.clone() for k, v in m.state_dict().items()}

    # each member its own corpus (R20): the shared one rolled by the member's seed; the same eval prompts
    train = torch.stack([task["train"].roll(s, 0) for s in seeds])
    k = len(seeds)
    tables = pretrain(members, train, task["prompts"].expand(k, -1, -1), task["answers"].expand(k, -1, -1),
                      task["digits"], SETTINGS, root / "resume", save_checkpoint, LOG)
    return members, tables, saved


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_every_member_of_a_group_trains_as_it_trains_alone(task, tmp_path):
    """Bit-identical on this CPU (x86-64, AVX512, MKL): each member's rows of the batched matmuls, its own loss mean,
    gradient norm and elementwise AdamW are computed by the same kernels whatever K is. A BLAS that blocks batched
    matmuls by K could move the last float32 bit; the RL stack (`tests/test_stacked.py`) makes the same bet."""
    seeds = [0, 1, 2]
    group, tables, saved = run(task, tmp_path / "group", seeds)
    assert set(saved) == {(s, step) for s in seeds for step in SETTINGS.checkpoints}
    for s in seeds:
        alone, alone_tables, alone_saved = run(task, tmp_path / f"alone_{s}", [s])
        for step in SETTINGS.checkpoints:
            assert_same_weights(saved[s, step], alone_saved[s, step])
        assert_same_weights(group[s].state_dict(), alone[s].state_dict())
        assert tables[s].equals(alone_tables[s]), s
        assert list(tables[s]["step"]) == [0, 10, 15, 20, 30]
    assert not torch.equal(group[0].lm_head.weight, group[1].lm_head.weight)  # different members (the test can fail)
    assert not tables[0]["loss"].equals(tables[1]["loss"])


def test_a_group_of_one_agrees_with_the_hugging_face_model(task):
    """The stacked forward (`vgh.lm.stacked.hidden_states`, the tied head, per-token cross-entropy then the mean, the
    last token not fed) is the HF model's math in another order, and the flat per-member gradient norm sums in
    another order than `clip_grad_norm_`: float32 agreement to about 1e-6 after 10 steps, not bit identity."""
    seed, lr = 5, 3e-3
    hf = model(task, seed)
    start = {k: v.clone() for k, v in hf.state_dict().items()}
    opt = torch.optim.AdamW(hf.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    group = Stack.of_models([model(task, seed)])
    sopt = StackedOptimizer(group.flat, "adam", betas=(0.9, 0.98))
    g_hf, g_stack = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for _ in range(10):
        loss_hf = hf_train_step(hf, opt, task["train"], 16, lr, g_hf)
        loss = train_step(group, sopt, task["train"][None], 16, lr, [g_stack])
        torch.testing.assert_close(loss[0], loss_hf, rtol=0, atol=1e-5)
    params = group.params()
    for name, p in hf.named_parameters():
        torch.testing.assert_close(params[name][0], p.detach(), rtol=1e-4, atol=1e-5, msg=name)
    assert (hf.lm_head.weight - start["lm_head.weight"]).abs().max() > 1e-2  # it did train


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_an_interrupted_group_resumes_to_the_same_weights(task, tmp_path):
    seeds = [0, 1]
    full, full_tables, _ = run(task, tmp_path / "full", seeds)

    def crash(seed, step):
        if (seed, step) == (1, 30):  # member 0's last checkpoint is staged, member 1's is not
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt):
        run(task, tmp_path / "cut", seeds, save=crash)
    assert (tmp_path / "cut/resume/state.pt").exists()
    resumed, tables, saved = run(task, tmp_path / "cut", seeds)
    assert set(saved) == {(0, 30), (1, 30)}  # it resumed (from step 20), not restarted
    for s in seeds:
        assert_same_weights(full[s].state_dict(), resumed[s].state_dict())
        assert full_tables[s].equals(tables[s])


def test_resume_state_of_another_group_is_moved_aside(task, tmp_path, caplog):
    """The members' seeds are part of the run's fingerprint: another group never resumes this one's state."""
    def crash(seed, step):
        if step == 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(task, tmp_path, [0, 1], save=crash)
    with caplog.at_level(logging.WARNING, logger="test"):
        _, _, saved = run(task, tmp_path, [0, 2])
    assert (0, 0) in saved and "belongs to another run" in caplog.text  # started afresh


def test_a_non_finite_loss_names_its_member(task, tmp_path):
    with pytest.raises(FloatingPointError, match=r"pretraining loss is nan at step 0 \(member seed 7\)"):
        run(task, tmp_path, [4, 7, 9], poison=7)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_an_optimizer_state_round_trips_and_continues_the_same_steps(optimizer):
    """state_dict / load_state_dict carry what each optimizer keeps (SGD: only the step count), so that an optimizer
    restored from a state takes bit for bit the steps of the one that made it; a state of the other kind is
    refused."""
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(3, 5, generator=gen) for _ in range(4)]
    flat = torch.randn(3, 5, generator=gen)
    lr = torch.tensor([[1e-3], [3e-3], [1e-2]])
    full = StackedOptimizer(flat.clone(), optimizer)
    for g in grads:
        full.step(g, lr)
    first = StackedOptimizer(flat.clone(), optimizer)
    for g in grads[:2]:
        first.step(g, lr)
    state = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in first.state_dict().items()}
    resumed = StackedOptimizer(first.flat.clone(), optimizer)
    resumed.load_state_dict(state)
    for g in grads[2:]:
        resumed.step(g, lr)
    assert resumed.t == full.t == 4
    assert torch.equal(resumed.flat, full.flat)
    other = StackedOptimizer(flat.clone(), "sgd" if optimizer == "adam" else "adam")
    with pytest.raises(ValueError, match=r"state cannot be loaded into StackedOptimizer\(optimizer="):
        other.load_state_dict(state)
