"""Pretraining tiny causal LMs on the addition corpus: the checkpoints are the pretraining trajectory.

A group of ensemble members (one seed each: initialisation and data order) trains as one stacked computation
(`vgh.lm.pretrain_stack`); each member's numbers are its own, and a lone member is a group of one.

Training keeps rolling resume state (the group's parameters, optimizer state, step, generators and log rows) in one
folder per group that is not a workflow output; an interrupted run resumes from it and ends with the same weights as
an uninterrupted one on CPU. Checkpoints are staged inside that folder and published only when training has
finished.

Resuming is only for the same run: the resume state carries a fingerprint of the whole model config, the pretraining
settings, the members' seeds and a hash of the data (training and eval ids); state of any other run is moved aside
(logged) and training starts over, so two configs never mix in one trajectory. The end of pretraining is crash-
consistent: the staged checkpoints (each with its manifest of file sizes and hashes, checked before it is published)
and the resume state stay whole until every output is written, and the resume folder is renamed away in one atomic
step before it is deleted, so a kill at any instant leaves either a state that resumes at the last step and
publishes again, or no state at all (a clean restart).

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
from . import stacked
from .checkpoints import verify_checkpoint, write_manifest
from .pretrain_stack import train_step
from .stack import Stack, StackedOptimizer


@dataclass(frozen=True)
class PretrainSettings:
    steps: int
    batch_size: int
    lr: float
    warmup: int
    checkpoints: tuple[int, ...]
    eval_every: int


def lr_at(step: int, s: PretrainSettings) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak at the last step."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    frac = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def pretrain(members: dict[int, torch.nn.Module], train_ids: torch.Tensor, eval_prompts: torch.Tensor,
             eval_answers: torch.Tensor, digit_ids: torch.Tensor, settings: PretrainSettings, resume_dir: str | Path,
             save_checkpoint: Callable[[torch.nn.Module, Path], None], log: logging.Logger) -> dict[int, pd.DataFrame]:
    """Train a group of members {seed: freshly built GPT-2} with the LM loss, member k on its own corpus train_ids[k]
    ([K, N, S], R20), stacked (`vgh.lm.pretrain_stack`), member `seed` drawing its batches from a generator seeded
    with `seed`, and its exact eval pass@1 on its own eval prompts (eval_prompts [K, E, P], eval_answers [K, E, L]);
    return each member's training log. Each model ends with its member's final weights.

    Member `seed`'s checkpoints (step 0 = the untrained model) are written by `save_checkpoint(model, folder)` into
    `resume_dir/checkpoints/member_<seed>/step_<s>`; `finish_pretraining` publishes them after this returns.
    """
    resume_dir = Path(resume_dir)
    seeds, models = list(members), list(members.values())
    group = Stack.of_models(models)
    fingerprint = run_fingerprint(models[0], settings, seeds, train_ids, eval_prompts, eval_answers)
    opt = StackedOptimizer(group.flat, "adam", betas=(0.9, 0.98))  # AdamW, weight decay 0
    gens = [torch.Generator(device=train_ids.device).manual_seed(seed) for seed in seeds]  # batches drawn there
    rows: dict[int, list[dict]] = {seed: [] for seed in seeds}
    start = _load_resume(resume_dir, fingerprint, group, opt, gens, rows, log)
    ckpt_dirs = {seed: resume_dir / "checkpoints" / f"member_{seed}" for seed in seeds}

    def evaluate(step: int, losses: list[float]) -> None:
        p = stacked.exact_pass1(group.params(), group.template, eval_prompts, eval_answers, digit_ids).mean(1)
        for seed, loss, p1 in zip(seeds, losses, p.tolist()):
            rows[seed].append({"step": step, "loss": loss, "eval_pass1": p1, "lr": lr_at(step, settings)})
            shown = "- (no step yet)" if math.isnan(loss) else f"{loss:.4f}"  # the table keeps step 0's NaN
            log.info("member %d step %d loss %s eval pass@1 %.4f", seed, step, shown, p1)

    def stage(step: int) -> None:
        for k, seed in enumerate(seeds):
            _stage(save_checkpoint, group.unstack_into(models[k], k), ckpt_dirs[seed] / f"step_{step}")

    if start == 0:
        evaluate(0, [float("nan")] * len(seeds))
        if 0 in settings.checkpoints:
            stage(0)
    nonfinite = FirstNonFinite(train_ids.device, len(seeds))
    bar = tqdm(range(start, settings.steps), initial=start, total=settings.steps, desc="pretrain",
               mininterval=2.0)
    for step in bar:
        loss = train_step(group, opt, train_ids, settings.batch_size, lr_at(step, settings), gens)
        nonfinite.update(loss, step)
        done = step + 1
        if done % settings.eval_every == 0 or done in settings.checkpoints or done == settings.steps:
            nonfinite.check(seeds)  # before anything is evaluated, staged or saved
            evaluate(done, loss.tolist())
            bar.set_postfix(loss=f"{loss.mean().item():.3f}")
        if done in settings.checkpoints:
            stage(done)
        if done in settings.checkpoints or done % settings.eval_every == 0 or done == settings.steps:
            _save_resume(resume_dir, fingerprint, group, opt, gens, rows, done)
    for k, model in enumerate(models):
        group.unstack_into(model, k).eval()
    return {seed: pd.DataFrame(r) for seed, r in rows.items()}


class FirstNonFinite:
    """The first non-finite pretraining loss of each of k members, kept on the device: checking each step's losses on
    the host would wait for the GPU every step. `check` reads them (one wait) and raises FloatingPointError naming
    the step and the member."""

    def __init__(self, device: str | torch.device, k: int = 1):
        self.step = torch.full((k,), -1, device=device)
        self.loss = torch.full((k,), float("nan"), device=device)

    def update(self, loss: torch.Tensor, step: int) -> None:
        self.step = torch.where((self.step < 0) & ~torch.isfinite(loss), step, self.step)
        self.loss = torch.where(self.step == step, loss, self.loss)

    def check(self, seeds: list[int] | None = None) -> None:
        steps = self.step.tolist()
        bad = [(s, k) for k, s in enumerate(steps) if s >= 0]
        if bad:
            step, k = min(bad)
            who = f" (member seed {seeds[k]})" if seeds is not None else ""
            raise FloatingPointError(f"pretraining loss is {float(self.loss[k])} at step {step}{who}; lower "
                                     "pretrain.lr")


def hf_train_step(model, opt: torch.optim.Optimizer, train_ids: torch.Tensor, batch_size: int, lr: float,
                  gen: torch.Generator) -> torch.Tensor:
    """One step of a lone Hugging Face model, as pretraining took it before members were stacked (torch AdamW,
    `clip_grad_norm_`): the reference the stacked step is tested against, and the step the GPU cost and probe
    developer tools time (the H100 calibration was measured on it). Returns the loss, detached, on the device."""
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


def run_fingerprint(model, settings: PretrainSettings, seeds: list[int], *data: torch.Tensor) -> str:
    """What makes two pretraining runs the same run: model config, settings, the members' seeds and the data's
    contents."""
    model_cfg = {k: v for k, v in model.config.to_dict().items() if k != "transformers_version"}
    digest = hashlib.sha256()
    for t in data:
        digest.update(repr((tuple(t.shape), str(t.dtype))).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return json.dumps({"settings": asdict(settings), "seeds": [int(s) for s in seeds], "model": model_cfg,
                       "data_sha256": digest.hexdigest()}, sort_keys=True, default=str)


def finish_pretraining(resume_dir: str | Path, checkpoint_outputs: dict[tuple[int, int], str | Path],
                       tables: dict[int, pd.DataFrame], log_tables: dict[int, str | Path]) -> None:
    """Publish the staged checkpoints ({(seed, step): output folder}) and each member's training log ({seed: table},
    {seed: path}), then discard the group's resume state.

    Safe to interrupt anywhere: each output folder appears by an atomic rename, the resume state is untouched
    until every output is written (a rerun resumes at the final step and publishes again), and the resume
    folder leaves in one atomic rename before it is deleted.
    """
    staged = Path(resume_dir) / "checkpoints"
    for (seed, step), out in checkpoint_outputs.items():
        folder = staged / f"member_{seed}" / f"step_{step}"
        verify_checkpoint(folder)
        copy_dir_atomic(folder, out)
    for seed, path in log_tables.items():
        write_table(tables[seed], path)
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
    try:
        save_checkpoint(model, tmp)
        write_manifest(tmp)
    except BaseException:  # a failed save (a full disk) leaves no partial folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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


def _save_resume(resume_dir: Path, fingerprint: str, group: Stack, opt: StackedOptimizer, gens, rows,
                 step: int) -> None:
    state = {"fingerprint": fingerprint, "step": step, "params": group.flat.detach(), "optimizer": opt.state_dict(),
             "generators": [g.get_state() for g in gens], "rows": rows}
    tmp = resume_dir / "state.pt.tmp"
    try:
        torch.save(state, tmp)
        os.replace(tmp, resume_dir / "state.pt")
    finally:  # a failed save (a full disk) leaves no partial file behind; the last whole state.pt stays
        tmp.unlink(missing_ok=True)


def _load_resume(resume_dir: Path, fingerprint: str, group: Stack, opt: StackedOptimizer, gens, rows, log) -> int:
    shutil.rmtree(_trash(resume_dir), ignore_errors=True)  # left by a kill while a finished run cleaned up
    path = resume_dir / "state.pt"
    if not path.exists():
        shutil.rmtree(resume_dir, ignore_errors=True)
        return 0
    state = torch.load(path, weights_only=False)
    if state["fingerprint"] != fingerprint:
        _move_aside(resume_dir, log)
        return 0
    with torch.no_grad():
        group.flat.copy_(state["params"])
    opt.load_state_dict(state["optimizer"])
    for gen, s in zip(gens, state["generators"]):
        gen.set_state(s)
    for seed, r in state["rows"].items():
        rows[seed].extend(r)
    log.info("resuming pretraining from step %d (%s)", state["step"], path)
    return state["step"]
