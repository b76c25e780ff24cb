"""Pretraining a tiny causal LM on the addition corpus: the checkpoints are the pretraining trajectory.

Training keeps rolling resume state (model, optimizer, step, generator) in a folder that is not a workflow
output; an interrupted run resumes from it and ends with the same weights as an uninterrupted one on CPU.
Checkpoints are staged inside that folder and published only when training has finished.

Resuming is only for the same run: the resume state carries a fingerprint of the whole model config, the
pretraining settings and a hash of the data (training and eval ids); state of any other run is moved aside
(logged) and training starts over, so two configs never mix in one trajectory. The end of pretraining is
crash-consistent: the staged checkpoints (each with its manifest of file sizes and hashes, checked before it is
published) and the resume state stay whole until every output is written, and the resume folder is renamed away in
one atomic step before it is deleted, so a kill at any instant leaves either a state that resumes at the last step
and publishes again, or no state at all (a clean restart).

One writer per resume folder: `resume_lock` holds an exclusive lock on `<resume folder>.lock` (beside the folder,
which is renamed and deleted) for the whole job; a second job on the same folder (e.g. after `kill -9` of Snakemake
left the first one running, and `--unlock`) stops at once, naming the first one's PID.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from tqdm import tqdm

from ..io import copy_dir_atomic, write_table
from .checkpoints import verify_checkpoint, write_manifest
from .policy import exact_pass1


@dataclass(frozen=True)
class PretrainSettings:
    steps: int
    batch_size: int
    lr: float
    warmup: int
    checkpoints: tuple[int, ...]
    eval_every: int
    seed: int


def lr_at(step: int, s: PretrainSettings) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak at the last step."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    frac = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def pretrain(model, train_ids: torch.Tensor, eval_prompts: torch.Tensor, eval_answers: torch.Tensor,
             digit_ids: torch.Tensor, settings: PretrainSettings, resume_dir: str | Path,
             save_checkpoint: Callable[[torch.nn.Module, Path], None], log: logging.Logger) -> pd.DataFrame:
    """Train `model` with the LM loss on `train_ids` [N, S]; return the training log.

    Checkpoints (step 0 = the untrained model) are written by `save_checkpoint(model, folder)` into
    `resume_dir/checkpoints/step_<s>`; `finish_pretraining` publishes them after this returns.
    """
    resume_dir = Path(resume_dir)
    fingerprint = run_fingerprint(model, settings, train_ids, eval_prompts, eval_answers)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0, betas=(0.9, 0.98))
    gen = torch.Generator(device=train_ids.device).manual_seed(settings.seed)  # the batches are drawn on the device
    rows: list[dict] = []
    start = _load_resume(resume_dir, fingerprint, model, opt, gen, rows, log)
    ckpt_dir = resume_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    def evaluate(step: int, loss: float) -> None:
        model.eval()
        p = exact_pass1(model, eval_prompts, eval_answers, digit_ids)
        rows.append({"step": step, "loss": loss, "eval_pass1": float(p.mean()), "lr": lr_at(step, settings)})
        log.info("step %d loss %.4f eval pass@1 %.4f", step, loss, rows[-1]["eval_pass1"])

    if start == 0:
        evaluate(0, float("nan"))
        if 0 in settings.checkpoints:
            _stage(save_checkpoint, model, ckpt_dir / "step_0")
    nonfinite = FirstNonFinite(train_ids.device)
    bar = tqdm(range(start, settings.steps), initial=start, total=settings.steps, desc="pretrain",
               mininterval=2.0)
    for step in bar:
        loss = train_step(model, opt, train_ids, settings.batch_size, lr_at(step, settings), gen)
        nonfinite.update(loss, step)
        done = step + 1
        if done % settings.eval_every == 0 or done in settings.checkpoints or done == settings.steps:
            nonfinite.check()  # before anything is evaluated, staged or saved
            evaluate(done, loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}", pass1=f"{rows[-1]['eval_pass1']:.3f}")
        if done in settings.checkpoints:
            _stage(save_checkpoint, model, ckpt_dir / f"step_{done}")
        if done in settings.checkpoints or done % settings.eval_every == 0 or done == settings.steps:
            _save_resume(resume_dir, fingerprint, model, opt, gen, rows, done)
    model.eval()
    return pd.DataFrame(rows)


class FirstNonFinite:
    """The first non-finite pretraining loss, kept on the device: checking each step's loss on the host would wait for
    the GPU every step. `check` reads it (one wait) and raises FloatingPointError naming the step."""

    def __init__(self, device: str | torch.device):
        self.step = torch.tensor(-1, device=device)
        self.loss = torch.tensor(float("nan"), device=device)

    def update(self, loss: torch.Tensor, step: int) -> None:
        self.step = torch.where((self.step < 0) & ~torch.isfinite(loss), step, self.step)
        self.loss = torch.where(self.step == step, loss, self.loss)

    def check(self) -> None:
        if int(self.step) >= 0:
            raise FloatingPointError(f"pretraining loss is {float(self.loss)} at step {int(self.step)}; lower "
                                     "pretrain.lr")


def train_step(model, opt: torch.optim.Optimizer, train_ids: torch.Tensor, batch_size: int, lr: float,
               gen: torch.Generator) -> torch.Tensor:
    """One pretraining step at learning rate `lr`: a batch of `batch_size` rows of `train_ids` drawn with `gen` (a
    generator on `train_ids`' device: no copy of the indices from the host), the LM loss, gradients clipped to norm
    1, one optimizer step. Returns the loss, detached and on the device (reading it waits for the device; `pretrain`
    checks it for NaN / Inf only at its evaluation points)."""
    model.train()
    for group in opt.param_groups:
        group["lr"] = lr
    idx = torch.randint(0, len(train_ids), (batch_size,), generator=gen, device=gen.device)
    batch = train_ids[idx]
    loss = model(input_ids=batch, labels=batch).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.detach()


def run_fingerprint(model, settings: PretrainSettings, *data: torch.Tensor) -> str:
    """What makes two pretraining runs the same run: model config, settings and the data's contents."""
    model_cfg = {k: v for k, v in model.config.to_dict().items() if k != "transformers_version"}
    digest = hashlib.sha256()
    for t in data:
        digest.update(repr((tuple(t.shape), str(t.dtype))).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return json.dumps({"settings": asdict(settings), "model": model_cfg, "data_sha256": digest.hexdigest()},
                      sort_keys=True, default=str)


def finish_pretraining(resume_dir: str | Path, checkpoint_outputs: dict[int, str | Path], table: pd.DataFrame,
                       log_table: str | Path) -> None:
    """Publish the staged checkpoints and the training log, then discard the resume state.

    Safe to interrupt anywhere: each output folder appears by an atomic rename, the resume state is untouched
    until every output is written (a rerun resumes at the final step and publishes again), and the resume
    folder leaves in one atomic rename before it is deleted.
    """
    staged = Path(resume_dir) / "checkpoints"
    for step, out in checkpoint_outputs.items():
        verify_checkpoint(staged / f"step_{step}")
        copy_dir_atomic(staged / f"step_{step}", out)
    write_table(table, log_table)
    _discard(Path(resume_dir))


class ResumeLocked(RuntimeError):
    """Another live process is writing this resume folder."""


@contextlib.contextmanager
def resume_lock(resume_dir: str | Path):
    """Hold an exclusive `fcntl.flock` on `<resume_dir>.lock` (holding this PID) while the block runs; raise
    ResumeLocked naming the holder's PID if another process holds it. The kernel drops the lock when its holder dies,
    however it dies, so a stale lock file never blocks a rerun."""
    path = Path(resume_dir).with_name(f"{Path(resume_dir).name}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise ResumeLocked(f"another pretrain job (PID {holder}) is writing {resume_dir}; stop it (kill {holder}) "
                               f"or wait for it to finish, then run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _stage(save_checkpoint: Callable[[torch.nn.Module, Path], None], model, folder: Path) -> None:
    """Save a checkpoint and its manifest into `.staging/` beside `folder`, then rename it into place: a staged
    folder is whole."""
    tmp = folder.parent / ".staging" / folder.name
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, tmp)
    write_manifest(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _trash(resume_dir: Path) -> Path:
    return resume_dir.with_name(f".{resume_dir.name}.trash")


def _discard(resume_dir: Path) -> None:
    """Remove the resume folder: first an atomic rename out of the way, then the deletion."""
    trash = _trash(resume_dir)
    shutil.rmtree(trash, ignore_errors=True)
    if resume_dir.exists():
        os.replace(resume_dir, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _move_aside(resume_dir: Path, log: logging.Logger) -> None:
    aside = resume_dir.with_name(f"{resume_dir.name}.other-run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.replace(resume_dir, aside)
    log.warning("resume state in %s belongs to another run (model config, settings or data differ): moved it "
                "to %s and starting pretraining afresh", resume_dir, aside)


def _save_resume(resume_dir: Path, fingerprint: str, model, opt, gen, rows, step: int) -> None:
    state = {"fingerprint": fingerprint, "step": step, "model": model.state_dict(),
             "optimizer": opt.state_dict(), "generator": gen.get_state(), "rows": rows}
    tmp = resume_dir / "state.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, resume_dir / "state.pt")


def _load_resume(resume_dir: Path, fingerprint: str, model, opt, gen, rows, log) -> int:
    shutil.rmtree(_trash(resume_dir), ignore_errors=True)  # left by a kill while a finished run cleaned up
    path = resume_dir / "state.pt"
    if not path.exists():
        shutil.rmtree(resume_dir, ignore_errors=True)
        return 0
    state = torch.load(path, weights_only=False)
    if state["fingerprint"] != fingerprint:
        _move_aside(resume_dir, log)
        return 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    rows.extend(state["rows"])
    log.info("resuming pretraining from step %d (%s)", state["step"], path)
    return state["step"]
