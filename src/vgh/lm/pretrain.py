"""Pretraining a tiny causal LM on the addition corpus: the checkpoints are the pretraining trajectory.

Training keeps rolling resume state (model, optimizer, step, generator) in a folder that is not a workflow
output; an interrupted run resumes from it and ends with the same weights as an uninterrupted one on CPU.
Checkpoints are staged inside that folder and moved to their final place only when training has finished.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from tqdm import tqdm

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
    `resume_dir/checkpoints/step_<s>`; the caller moves them into place after this returns.
    """
    resume_dir = Path(resume_dir)
    fingerprint = json.dumps({**asdict(settings), "n_train": len(train_ids), "shape": list(train_ids.shape),
                              "params": sum(p.numel() for p in model.parameters())}, sort_keys=True)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(settings.seed)
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
            save_checkpoint(model, ckpt_dir / "step_0")
    bar = tqdm(range(start, settings.steps), initial=start, total=settings.steps, desc="pretrain",
               mininterval=2.0)
    for step in bar:
        model.train()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, settings)
        idx = torch.randint(0, len(train_ids), (settings.batch_size,), generator=gen)
        batch = train_ids[idx]
        loss = model(input_ids=batch, labels=batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretraining loss is {loss.item()} at step {step}; lower pretrain.lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = step + 1
        if done % settings.eval_every == 0 or done in settings.checkpoints or done == settings.steps:
            evaluate(done, loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}", pass1=f"{rows[-1]['eval_pass1']:.3f}")
        if done in settings.checkpoints:
            save_checkpoint(model, ckpt_dir / f"step_{done}")
        if done in settings.checkpoints or done % settings.eval_every == 0:
            _save_resume(resume_dir, fingerprint, model, opt, gen, rows, done)
    model.eval()
    return pd.DataFrame(rows)


def _save_resume(resume_dir: Path, fingerprint: str, model, opt, gen, rows, step: int) -> None:
    state = {"fingerprint": fingerprint, "step": step, "model": model.state_dict(),
             "optimizer": opt.state_dict(), "generator": gen.get_state(), "rows": rows}
    tmp = resume_dir / "state.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, resume_dir / "state.pt")


def _load_resume(resume_dir: Path, fingerprint: str, model, opt, gen, rows, log) -> int:
    path = resume_dir / "state.pt"
    if not path.exists():
        shutil.rmtree(resume_dir, ignore_errors=True)
        return 0
    state = torch.load(path, weights_only=False)
    if state["fingerprint"] != fingerprint:
        log.info("resume state in %s belongs to other settings; starting afresh", resume_dir)
        shutil.rmtree(resume_dir, ignore_errors=True)
        return 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    rows.extend(state["rows"])
    log.info("resuming pretraining from step %d (%s)", state["step"], path)
    return state["step"]
