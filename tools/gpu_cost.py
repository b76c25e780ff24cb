"""Predicted H100 seconds of the GPU-scale DAG, from kernel launches and FLOPs counted on the CPU (no GPU needed).

    python tools/gpu_cost.py [--configfile config/gpu.yaml] [--out docs/gpu_cost.md]

For the config (merged over config/config.yaml and validated, as `snakemake --configfile` does) it builds a randomly
initialised model of the config's shape, the tokenizer and the prompt splits, and counts with
`count_work` of tools/launches.py (kernel launches, syncs, FLOPs) one unit of each kind of GPU work the DAG does: a
pretraining step, an RL step of Part C, the exact pass@1 evaluations, the per-checkpoint metrics, a costates
checkpoint (B1/B2) and an update-alignment job (B3). Units too slow for this CPU are counted at fewer prompts and
extrapolated by a fit that is exact for their loop structure (each says so). The counts do not depend on the
weights, only on shapes and control flow.

Seconds: `predict_seconds` = max(launches x seconds per launch, FLOPs / FLOP rate) (memory traffic only as a
sensitivity variant), with the seconds per launch calibrated on the one H100 measurement of a pretraining step
(`H100`, below) and assumed FLOP rates (`FLOP_RATE`). The units are
multiplied into per-job totals of the DAG per ensemble member, then over the members. A cross-check puts the
model's predictions next to the other H100 numbers of that run (not used for calibration, nothing tuned).

Part C's RL step is counted as the workflow runs it (all RL runs of a checkpoint in lockstep as one stacked model,
`vgh.trajectory.rl.rl_train_runs`) and, for the cross-check with issue 11's numbers, as one run alone.

Schedule: with `--resources gpu=N` (`--slots`, default 8) N GPU jobs share the card. The report places the DAG's GPU
jobs on N slots (longest job first among those ready) under the assumption that jobs in different slots overlap
perfectly (each is launch-bound: its host thread is the bottleneck, and the card has room), and checks that
assumption's device side: the card's busy time (FLOPs at the assumed rates plus a minimum device time per kernel)
must stay below the schedule's wall. Whether a card interleaves N processes that well (no MPS) is what
`tools/gpu_probe.py` measures; it is not measured here.
"""
from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tools")]  # vgh, and launches.py beside this script
os.environ.setdefault("TQDM_DISABLE", "1")
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from launches import COUNT_KEYS, combine, count_work, predict_seconds  # noqa: E402  (tools/launches.py)

import vgh.runtime  # noqa: E402, F401  (its import sets the jobs' environment, OFFLINE_ENV, before transformers loads)
from vgh.config import load_config  # noqa: E402
from vgh.lm import stacked  # noqa: E402
from vgh.lm.stack import Stack  # noqa: E402

# ------------------------------------------------------------------------------------------------ calibration
# Measured on one H100 80GB, torch 2.11+cu130, eager fp32, the single-member code of the time (issue 11; also
# docs/benchmarks.md, "GPU"): gpu.yaml's model (4 layers x 256 wide, 4 heads).
H100 = {
    "pretrain_step_256_s": 12.4e-3,   # one pretraining step at batch 256 (the calibration point, CALIBRATION_BATCH)
    "pretrain_step_1024_s": 11.8e-3,  # one pretraining step at batch 1024 (cross-check)
    "pretrain_job_s": 279.0,          # 20k pretraining steps in one job: start-up, evals, checkpoint and resume saves included
    # ... the pretraining settings of that job (gpu.yaml of issue 11; batch 256 = CALIBRATION_BATCH)
    "pretrain_job": {"steps": 20000, "eval_every": 500,
                     "checkpoints": [0, 100, 200, 400, 700, 1000, 1500, 2000, 3000, 5000, 8000, 12000, 20000]},
    "rl_run_job_s": 22.0,             # one rl_run job (old layout: 65 jobs, one per checkpoint x seed), start-up included
    "startup_s": (5.0, 15.0),         # a job's process start-up (imports + CUDA init): not measured, a range
    "costates_job_s": 43.0,           # one costates job of one checkpoint (old layout: one job per checkpoint)
    "costates_work_s": 33.0,          # ... of which work (the rest start-up)
}
CALIBRATION_BATCH = 256
# The RL step of issue 11's code (the Hugging Face model, one run per process) as this script counted it on commit
# 97fe6b4 (the same code as the measured commit 35f96fd); its FLOPs are those of one stacked run (`rl_step_single`).
ISSUE11_RL_STEP = {"launches": 759, "syncs": 14}
# FLOP rates and bandwidth: assumptions, not measured. H100 peak (NVIDIA datasheet): fp32 non-tensor-core 67 TFLOP/s
# (SXM) / 51 (PCIe); fp64 34 / 26 (vector), 67 / 51 (fp64 tensor cores, which cuBLAS DGEMM uses); HBM 3.35 / 2.0 TB/s.
# fp32 matmuls of the issue-11 run did not use TF32 (torch's default for matmuls); the workflow now enables it on CUDA
# (TF32_RATE below). Taken: the PCIe figures, the fp64
# vector rate, 40% of peak for matmuls and 60% of peak bandwidth.
FLOP_RATE = {"float32": 0.4 * 50e12, "float64": 0.4 * 25e12}
BANDWIDTH = 0.6 * 2.0e12
FLOP_ASSUMPTION = ("fp32 40% x 50 TFLOP/s = 20 TFLOP/s, fp64 40% x 25 TFLOP/s = 10 TFLOP/s (H100 PCIe peaks 51 / 26; "
                   "SXM 67 / 34, fp64 tensor cores 67); memory 60% x 2.0 TB/s = 1.2 TB/s")
# float32 matmuls on TF32 tensor cores (`vgh.runtime.select_device` enables them on CUDA): assumed, not measured
TF32_RATE = 0.25 * 378e12
TF32_ASSUMPTION = "TF32 25% x 378 TFLOP/s (H100 PCIe dense peak) = 95 TFLOP/s"

log = logging.getLogger("gpu_cost")
QUIET = logging.getLogger("gpu_cost.quiet")
QUIET.disabled = True


# ------------------------------------------------------------------------------------------------ set-up
def load(configfiles: list[str]) -> dict:
    """The config as the workflow sees it: config/config.yaml with `configfiles` merged over it in order, validated."""
    return load_config(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", configfiles)


def build_env(cfg: dict, n_corpus: int = 8192) -> dict:
    """Tokenizer, digit ids, splits (as data prep makes them for the first member: `make_splits` on its stream) and a
    randomly initialised model of the config's shape (member 0's seed). The pretraining corpus is cut to `n_corpus` rows: a
    step draws `batch_size` rows from it, so its length only sets the range of the draw; the eval and RL splits are
    the config's (they do not depend on the corpus size)."""
    from vgh.lm.model import build_model
    from vgh.lm.task import build_tokenizer, digit_token_ids, encode_prompts, encode_split, make_splits
    from vgh.streams import numpy_rng

    d, m = cfg["data"], cfg["model"]
    splits = make_splits(d["digits"], min(n_corpus, d["n_pretrain"]), d["n_rl"], d["n_eval"], d["corruption_rate"],
                         numpy_rng(cfg["pretrain"]["seeds"][0], "data"), d["prompt_template"])
    tok = build_tokenizer()
    train_ids = encode_prompts(tok, list(splits["pretrain"]["text"]))
    eval_frame, rl_frame = splits["eval"].to_pandas(), splits["rl"].to_pandas()
    model = build_model(len(tok), train_ids.shape[1], m["n_layer"], m["n_head"], m["n_embd"], cfg["pretrain"]["seeds"][0])
    return {"tok": tok, "digit_ids": digit_token_ids(tok), "train_ids": train_ids, "eval_frame": eval_frame,
            "eval": encode_split(tok, eval_frame), "rl": encode_split(tok, rl_frame), "model": model}


def _timed(name: str, fn, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    w = count_work(fn, *args, **kwargs)
    log.info("%-32s %8d launches %5d syncs %10.2f GFLOP  %6.1f s here (%.1f s with set-up)", name, w["launches"],
             w["syncs"], w["flops"] / 1e9, w["wall_s"], time.perf_counter() - t0)
    return w


def unit(w: dict, dtype: str, note: str = "", measured_wall: float | None = None) -> dict:
    """A unit of GPU work: its counts, the dtype of its matmuls and how it was obtained (a note starting "SCALED" or
    "DERIVED": counted on other runs, whose CPU wall `measured_wall` is)."""
    u = {k: float(w[k]) for k in COUNT_KEYS}
    u.update(dtype=dtype, note=note, measured_wall_s=w["wall_s"] if measured_wall is None else measured_wall,
             top=_top(w.get("by_op", {})), syncs_by_op=w.get("syncs_by_op", {}),
             syncs_by_site=w.get("syncs_by_site", {}))
    return u


def _top(by_op: dict, n: int = 4) -> str:
    return ", ".join(f"{k} {v:,.0f}" for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])[:n])



# ------------------------------------------------------------------------------------------------ units
def pretrain_units(env: dict, cfg: dict) -> dict[str, dict]:
    """One lone-model pretraining step (`vgh.lm.pretrain.hf_train_step`, the step the H100 was measured on) at the
    config's batch size and at 1024, after one uncounted-in-the-result step that creates the optimizer state; and one
    training-log evaluation (what `pretrain` evaluated before members were stacked: exact pass@1 of the eval split on
    the float32 model, plus its two `loss.item()`)."""
    from vgh.lm.policy import exact_pass1
    from vgh.lm.pretrain import hf_train_step as train_step

    p = cfg["pretrain"]
    model = copy.deepcopy(env["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=0.0, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(0)
    args = (model, opt, env["train_ids"])
    count_work(train_step, *args, p["batch_size"], p["lr"], gen)  # creates the AdamW state (placement learnt)
    step = _timed(f"pretrain step (batch {p['batch_size']})", train_step, *args, p["batch_size"], p["lr"], gen)
    calib = step if p["batch_size"] == CALIBRATION_BATCH else _timed(
        f"pretrain step (batch {CALIBRATION_BATCH})", train_step, *args, CALIBRATION_BATCH, p["lr"], gen)
    big = _timed("pretrain step (batch 1024)", train_step, *args, 1024, p["lr"], gen)
    loss = step["result"]

    def evaluate():
        model.eval()
        float(exact_pass1(model, *env["eval"], env["digit_ids"]).mean())
        loss.item()  # the log row's loss and the progress bar's
        loss.item()

    ev = _timed("pretrain eval", evaluate)
    return {"pretrain_step": unit(step, "float32", f"batch {p['batch_size']}"),
            "calibration_step": unit(calib, "float32", f"batch {CALIBRATION_BATCH}, the measured H100 step"),
            "pretrain_step_1024": unit(big, "float32", "batch 1024"),
            "pretrain_eval": unit(ev, "float32", f"exact pass@1, {len(env['eval'][0])} eval prompts")}


def rl_step_unit(model, rl_split: tuple, digit_ids: torch.Tensor, settings, lrs: list[float]) -> tuple[dict, dict]:
    """Part C's RL for len(lrs) runs in lockstep (`vgh.trajectory.rl.rl_train_runs`: per step, sample G completions
    for each of prompts_per_step prompts of every run, rewards, advantages, the loss, backward, the grad norms, the
    optimizer step, the log row) from a float32 copy of `model`, as `run_group` trains the runs of a checkpoint.
    Counted with 1 and with 2 steps: (one step, the set-up of the runs) = (T2 - T1, T1 - (T2 - T1))."""
    from dataclasses import replace

    from vgh.trajectory.rl import rl_train_runs

    counts = {}
    for steps in (1, 2):
        m = copy.deepcopy(model).float()
        gens = [torch.Generator().manual_seed(i) for i in range(len(lrs))]
        counts[steps] = _timed(f"RL, {len(lrs)} run(s) stacked, {steps} step(s)", rl_train_runs, m, *rl_split,
                               digit_ids, replace(settings, steps=steps), lrs, gens, QUIET, False)
    step = combine([(1, counts[2]), (-1, counts[1])])
    setup = combine([(1, counts[1]), (-1, step)])
    step["wall_s"] = setup["wall_s"] = counts[1]["wall_s"] + counts[2]["wall_s"]  # the two counted runs
    return step, setup


def trajectory_units(env: dict, cfg: dict) -> dict[str, dict]:
    """Part C: an RL step of the runs of a checkpoint in lockstep (and of one run alone), exact pass@1 on the eval and
    on the RL split (`vgh.lm.stacked.exact_pass1`: the checkpoint before the runs, every run after; and the issue-11
    code's `mean_pass1`), and one checkpoint's `checkpoint_metrics` + `rl_split_stats` (float64, as
    `vgh.trajectory.checkpoint.measure_trajectory_point` calls them)."""
    from vgh.trajectory.metrics import checkpoint_metrics, mean_pass1, rl_split_stats
    from vgh.trajectory.rl import RLSettings

    tr = cfg["trajectory"]
    s = RLSettings.from_config(tr["rl"])
    runs = rl_runs_per_checkpoint(tr)
    rl, rl_setup = rl_step_unit(env["model"], env["rl"], env["digit_ids"], s, [s.lr] * runs)
    rl1, _ = rl_step_unit(env["model"], env["rl"], env["digit_ids"], s, [s.lr])
    m32, m64, dig = env["model"], copy.deepcopy(env["model"]).double(), env["digit_ids"]
    one, stack = Stack.of_model(m32, 1).params(), Stack.of_model(m32, runs).params()
    ev = _timed("pass@1 eval split, 1 run", stacked.exact_pass1, one, m32, *env["eval"], dig)
    er = _timed("pass@1 RL split, 1 run", stacked.exact_pass1, one, m32, *env["rl"], dig)
    evk = _timed(f"pass@1 eval split, {runs} runs", stacked.exact_pass1, stack, m32, *env["eval"], dig)
    erk = _timed(f"pass@1 RL split, {runs} runs", stacked.exact_pass1, stack, m32, *env["rl"], dig)
    old_ev = _timed("mean_pass1 eval split (issue 11)", mean_pass1, m32, *env["eval"], dig)
    old_er = _timed("mean_pass1 RL split (issue 11)", mean_pass1, m32, *env["rl"], dig)

    def metrics():
        row = checkpoint_metrics(m64, *env["eval"], dig, tr["pass_k"], tr["headroom_k"], s.algo,
                                 s.num_generations, s.scale_rewards)
        row.update(rl_split_stats(m64, *env["rl"], dig))
        return row

    me = _timed("checkpoint metrics", metrics)
    what = f"{s.prompts_per_step} prompts x G = {s.num_generations}, {s.algo}, {s.optimizer}"
    out = {"rl_step": unit(rl, "float32", f"DERIVED: one step of {runs} runs in lockstep (one stacked model), each "
                                          f"{what}: counted with 2 steps minus 1 step"),
           "rl_setup": unit(rl_setup, "float32", f"DERIVED: stacking the {runs} runs' parameters and their optimizer, "
                                                 "once per checkpoint: 1 step minus one step"),
           "rl_step_single": unit(rl1, "float32", f"DERIVED: one step of 1 run, {what} (the issue-11 layout ran each "
                                                  "run alone)"),
           "pass1_before_eval": unit(ev, "float64", f"{len(env['eval'][0])} prompts, the checkpoint (1 run)"),
           "pass1_before_rl": unit(er, "float64", f"{len(env['rl'][0])} prompts, the checkpoint (1 run)"),
           "pass1_after_eval": unit(evk, "float64", f"{len(env['eval'][0])} prompts, every run ({runs})"),
           "pass1_after_rl": unit(erk, "float64", f"{len(env['rl'][0])} prompts, every run ({runs})"),
           "mean_pass1_eval_issue11": unit(old_ev, "float64", "the issue-11 code's pass@1 (float64 copy of a float32 "
                                                              "model), eval split: for the cross-check"),
           "mean_pass1_rl_issue11": unit(old_er, "float64", "the same on the RL split"),
           "checkpoint_metrics": unit(me, "float64", "checkpoint_metrics (eval split) + rl_split_stats (RL split)")}
    return out


def costates_unit(env: dict, cfg: dict) -> dict:
    """One costates checkpoint (`vgh.costates.measure.measure_costates`, float64, as workflow/scripts/costates.py calls
    it), counted at ONE temperature on 1 and on 2 prompt chunks (`prompts_per_chunk` prompts each) and
    extrapolated: every chunk at every temperature runs the same shapes, so a checkpoint costs
    T x (fixed + chunks x per chunk), per chunk = (2 chunks - 1 chunk), fixed = (1 chunk - per chunk)."""
    from vgh.costates.enumeration import prompts_per_chunk
    from vgh.costates.measure import measure_costates
    from vgh.lm.task import answer_length, encode_split

    c = cfg["costates"]
    L = answer_length(cfg["data"]["digits"])
    per = prompts_per_chunk(L, c["max_batch_rows"])
    chunks = math.ceil(c["n_prompts"] / per)
    model = copy.deepcopy(env["model"]).double()
    tau = c["temperatures"][len(c["temperatures"]) // 2]
    T = len(c["temperatures"])
    if chunks == 1:  # the whole measurement is one chunk per temperature: count it at one temperature
        ids, answers = encode_split(env["tok"], env["eval_frame"], "cpu", c["n_prompts"])
        meta = env["eval_frame"].iloc[:len(ids)][["a", "b", "prompt", "answer", "carry"]]
        one = _timed("costates: 1 chunk, 1 temperature", measure_costates, model, ids, answers, meta,
                     env["digit_ids"], [tau], c["reward"], c["sample_budget"], torch.Generator().manual_seed(0),
                     c["max_batch_rows"], QUIET)
        return unit(combine([(T, one)]), "float64", f"SCALED: counted at 1 temperature on the {c['n_prompts']} "
                    f"prompts (one chunk), x {T} temperatures", measured_wall=one["wall_s"])
    runs = {}
    for n in (1, 2):
        ids, answers = encode_split(env["tok"], env["eval_frame"], "cpu", n * per)
        meta = env["eval_frame"].iloc[:len(ids)][["a", "b", "prompt", "answer", "carry"]]
        gen = torch.Generator().manual_seed(0)
        runs[n] = _timed(f"costates: {n} chunk(s), 1 temperature", measure_costates, model, ids, answers, meta,
                         env["digit_ids"], [tau], c["reward"], c["sample_budget"], gen, c["max_batch_rows"], QUIET)
    per_chunk = combine([(1, runs[2]), (-1, runs[1])])
    fixed = combine([(1, runs[1]), (-1, per_chunk)])
    # check of the fit on a third count: 2 temperatures on 1 chunk
    ids, answers = encode_split(env["tok"], env["eval_frame"], "cpu", per)
    meta = env["eval_frame"].iloc[:len(ids)][["a", "b", "prompt", "answer", "carry"]]
    check = _timed("costates check: 1 chunk, 2 temps", measure_costates, model, ids, answers, meta,
                   env["digit_ids"], c["temperatures"][:2], c["reward"], c["sample_budget"],
                   torch.Generator().manual_seed(0), c["max_batch_rows"], QUIET)
    fit = combine([(2, fixed), (2, per_chunk)])
    full = combine([(T, fixed), (T * chunks, per_chunk)])
    note = (f"SCALED: counted at 1 temperature on {per} and {2 * per} prompts ({per} per chunk), extrapolated to "
            f"{T} temperatures x {chunks} chunks ({c['n_prompts']} prompts): per chunk "
            f"{per_chunk['launches']:.0f} launches and {per_chunk['flops'] / 1e9:.1f} GFLOP, fixed per temperature "
            f"{fixed['launches']:.0f} launches. Check of the fit (2 temperatures, 1 chunk): counted "
            f"{check['launches']} launches / {check['flops'] / 1e9:.1f} GFLOP, fit {fit['launches']:.0f} / "
            f"{fit['flops'] / 1e9:.1f}")
    return unit(full, "float64", note, measured_wall=runs[1]["wall_s"] + runs[2]["wall_s"] + check["wall_s"])


def alignment_unit(env: dict, cfg: dict) -> dict:
    """One update_alignment job (`vgh.costates.alignment.update_alignment`, float64, as workflow/scripts/
    costates_alignment.py calls it: every group size, n_batches batches, the permuted-reward null), counted on 1 or 2
    prompt chunks with 1 or 2 batches per group size, plus `objective_gradient` (the exact grad J) on 1 chunk, and
    extrapolated. Per quantity X (launches, FLOPs, ...), with c prompt chunks of `per` prompts and nb batches:
    X(c, nb) = A + O c + nb (b0 + b1 per c): O the exact grad J per chunk (counted alone), A once per job (the
    per-group-size averages after the batches), a batch b0 + b1 Q (its launches do not grow with the Q prompts, its
    FLOPs and activations do). X(1, 1), X(2, 1) and X(1, 2) give b1, b0 and A; X(2, 2) checks the fit."""
    from vgh.costates.alignment import objective_gradient, update_alignment
    from vgh.costates.enumeration import prompts_per_chunk
    from vgh.lm.task import answer_length, encode_split

    c, a = cfg["costates"], cfg["alignment"]
    L = answer_length(cfg["data"]["digits"])
    per = prompts_per_chunk(L, c["max_batch_rows"])
    chunks = math.ceil(c["n_prompts"] / per)
    model = copy.deepcopy(env["model"]).double()
    tau = a["temperature"]
    nb, Q = a["n_batches"], c["n_prompts"]
    if chunks == 1:  # one chunk: X(nb) = A + nb b on the job's own prompts, from nb = 1 and 2
        ids, answers = encode_split(env["tok"], env["eval_frame"], "cpu", Q)
        X = {n: _timed(f"alignment: 1 chunk, {n} batch(es)", update_alignment, model, ids, answers, env["digit_ids"],
                       tau, c["reward"], a["num_generations"], n, torch.Generator().manual_seed(0), "group",
                       c["max_batch_rows"], QUIET) for n in (1, 2)}
        b = combine([(1, X[2]), (-1, X[1])])
        full = combine([(1, X[1]), (nb - 1, b)])
        return unit(full, "float64", f"SCALED: counted on the {Q} prompts (one chunk) with 1 and 2 batches per group "
                    f"size, extrapolated to {nb} batches", measured_wall=X[1]["wall_s"] + X[2]["wall_s"])
    split = {n: encode_split(env["tok"], env["eval_frame"], "cpu", n * per) for n in (1, 2)}
    obj = _timed("alignment: exact grad J, 1 chunk", objective_gradient, model, *split[1], env["digit_ids"], tau,
                 c["reward"], c["max_batch_rows"])
    X = {}
    for ch, batches in ((1, 1), (2, 1), (1, 2), (2, 2)):
        X[ch, batches] = _timed(f"alignment: {ch} chunk(s), {batches} batch(es)", update_alignment, model,
                                *split[ch], env["digit_ids"], tau, c["reward"], a["num_generations"], batches,
                                torch.Generator().manual_seed(0), "group", c["max_batch_rows"], QUIET)
    b1q = combine([(1, X[2, 1]), (-1, X[1, 1]), (-1, obj)])  # b1 x per
    b0 = combine([(1, X[1, 2]), (-1, X[1, 1]), (-1, b1q)])
    A = combine([(1, X[1, 1]), (-1, obj), (-1, b0), (-1, b1q)])
    fit = combine([(1, A), (2, obj), (2, b0), (4, b1q)])
    full = combine([(1, A), (chunks, obj), (nb, b0), (nb * Q / per, b1q)])
    per_batch = combine([(1, b0), (Q / per, b1q)])
    note = (f"SCALED: counted on {per} and {2 * per} prompts with 1 and 2 batches per group size, and the exact grad "
            f"J alone on {per}; extrapolated to {nb} batches x {len(a['num_generations'])} group sizes on {Q} prompts "
            f"({chunks} chunks): one batch over the group sizes is {per_batch['launches']:,.0f} launches (growth "
            f"with the prompts {b1q['launches'] / per:+.2f} per prompt) and {per_batch['flops'] / 1e9:,.0f} GFLOP "
            f"at {Q} prompts, the exact grad J {obj['launches']:,} launches per chunk, once per job "
            f"{A['launches']:,.0f}. Check of the fit ({2 * per} prompts, 2 batches): counted "
            f"{X[2, 2]['launches']:,} launches / {X[2, 2]['flops'] / 1e9:.1f} GFLOP, fit {fit['launches']:,.0f} / "
            f"{fit['flops'] / 1e9:.1f}")
    return unit(full, "float64", note, measured_wall=obj["wall_s"] + sum(x["wall_s"] for x in X.values()))


def checkpoint_load_s(env: dict, repeats: int = 3) -> float:
    """Host seconds of one `load_model` of a saved checkpoint (a Part C RL run loads one; measured on this CPU: it
    is host work, plus one host-to-device copy per tensor on a GPU)."""
    from vgh.lm.model import load_model

    with tempfile.TemporaryDirectory() as tmp:
        env["model"].save_pretrained(tmp)
        load_model(tmp)
        t0 = time.perf_counter()
        for _ in range(repeats):
            load_model(tmp)
        return (time.perf_counter() - t0) / repeats


def host_cost_per_op(env: dict, cfg: dict, width: int = 16, repeats: int = 20) -> dict[str, float]:
    """Host seconds per launch on THIS CPU of the pretraining step (the calibration unit) and of the RL step, timed
    without counting on a model of the config's depth but `width` wide (the same ops, next to no arithmetic), so
    the time is the per-op overhead of each code path. If the RL step's ops cost the host about what the
    pretraining step's do, one launch cost serves both."""
    from dataclasses import replace

    from vgh.lm.model import build_model
    from vgh.lm.pretrain import hf_train_step as train_step
    from vgh.trajectory.rl import RLSettings, rl_train

    m = cfg["model"]
    tiny = build_model(len(env["tok"]), env["train_ids"].shape[1], m["n_layer"], m["n_head"], width, 0)
    opt = torch.optim.AdamW(tiny.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    s = replace(RLSettings.from_config(cfg["trajectory"]["rl"]), steps=1, prompts_per_step=1, num_generations=2)
    work = {"pretrain_step": lambda: train_step(tiny, opt, env["train_ids"], 2, 1e-3, gen),
            "rl_step": lambda: rl_train(tiny, *env["rl"], env["digit_ids"], s, gen, QUIET, False)}
    out = {}
    for name, fn in work.items():
        launches = count_work(fn)["launches"]  # also creates the optimizer state under counting
        fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        out[name] = (time.perf_counter() - t0) / repeats / launches
    log.info("host cost per launch here (width %d): %s", width, {k: f"{v * 1e6:.1f} us" for k, v in out.items()})
    return out


# ------------------------------------------------------------------------------------------------ prediction
def seconds(u: dict, launch_s: float, flop_scale: float = 1.0, how: str = "max", with_bytes: bool = False) -> float:
    """Predicted H100 seconds of unit `u`: `predict_seconds(launches, flops, launch_s, flop rate of its dtype)`.
    `how` = "sum" adds host and device time instead of taking the larger; `with_bytes` adds the memory-traffic
    upper bound (bytes / BANDWIDTH) to the device time (a sensitivity variant: the bytes count every op's inputs and
    outputs with no cache reuse, and at batch 1024 that bound alone would make the pretraining step 19 ms against
    the measured 11.8 ms)."""
    rate = FLOP_RATE[u["dtype"]] * flop_scale
    moved = u["bytes"] if with_bytes else 0.0
    if how == "sum":
        return u["launches"] * launch_s + u["flops"] / rate + moved / BANDWIDTH
    return predict_seconds(u["launches"], u["flops"], launch_s, rate, moved, BANDWIDTH)


def pretrain_evals(p: dict) -> int:
    """How many times `pretrain` evaluates: step 0, every eval_every steps, every checkpoint and the last step."""
    return 1 + sum(1 for done in range(1, p["steps"] + 1)
                   if done % p["eval_every"] == 0 or done in p["checkpoints"] or done == p["steps"])


def rl_runs_per_checkpoint(tr: dict) -> int:
    """RL runs per checkpoint in `vgh.trajectory.checkpoint.measure_trajectory_point`: every seed, plus each lr of the
    sweep whose settings differ from the configured ones (that one is the first seed's run)."""
    from vgh.trajectory.rl import RLSettings

    s = RLSettings.from_config(tr["rl"])
    return len(tr["rl"]["seeds"]) + sum(RLSettings.from_config(tr["rl"], lr=lr) != s for lr in tr["lr_sweep"])


def job_terms(cfg: dict, units: dict) -> dict[str, list[tuple[float, str]]]:
    """Per GPU rule of one member: [(multiplicity, unit name)]."""
    p, tr, c = cfg["pretrain"], cfg["trajectory"], cfg["costates"]
    n_ckpt = len(p["checkpoints"])
    return {
        "pretrain": [(p["steps"], "pretrain_step"), (pretrain_evals(p), "pretrain_eval")],
        "trajectory": [(n_ckpt, "checkpoint_metrics"), (n_ckpt, "rl_setup"),
                              (n_ckpt * tr["rl"]["steps"], "rl_step"),
                              (n_ckpt, "pass1_before_eval"), (n_ckpt, "pass1_before_rl"),
                              (n_ckpt, "pass1_after_eval"), (n_ckpt, "pass1_after_rl")],
        "costates": [(len(c["checkpoints"]), "costates_checkpoint")],
        "update_alignment": [(1, "update_alignment")],
    }


def checkpoint_loads(cfg: dict) -> dict[str, int]:
    """Checkpoint loads per GPU rule of one member (host work, not in the units): Part C loads each checkpoint twice
    (float64 for the metrics, float32 for the stacked runs)."""
    n_ckpt = len(cfg["pretrain"]["checkpoints"])
    return {"pretrain": 0, "trajectory": 2 * n_ckpt, "costates": len(cfg["costates"]["checkpoints"]),
            "update_alignment": 1}


# ------------------------------------------------------------------------------------------------ report
def fmt_s(x: float) -> str:
    if x == 0:
        return "0"
    if x < 0.1:
        return f"{x * 1e3:.2f} ms"
    return f"{x:,.1f} s" if x < 600 else f"{x:,.0f} s ({x / 60:.1f} min)"


def report(cfg: dict, configfile: str, units: dict, load_s: float, launch_s: float, host_here: dict[str, float],
           runtime_s: float, slots: int) -> str:
    """The Markdown report: method, units, per-rule and whole-DAG prediction, cross-check, sensitivity."""
    members = len(cfg["pretrain"]["seeds"])
    terms = job_terms(cfg, units)
    loads = checkpoint_loads(cfg)
    lo, hi = H100["startup_s"]
    p, tr = cfg["pretrain"], cfg["trajectory"]
    runs = rl_runs_per_checkpoint(tr)

    def flop_s(u: dict) -> float:
        return u["flops"] / FLOP_RATE[u["dtype"]]

    lines = [f"# Predicted H100 time of `{configfile}`: a cost model, not a measurement", "",
             f"Generated by `python tools/gpu_cost.py --configfile {configfile}` on "
             f"{time.strftime('%Y-%m-%d')} ({os.cpu_count()} CPU cores, {platform.machine()}, torch {torch.__version__}; "
             f"{runtime_s:.0f} s). No GPU was used: every count below was made on the CPU and turned into seconds by "
             "the calibration stated here.", "",
             "## Method", "",
             "`count_work` (tools/launches.py) runs one unit of GPU work once on the CPU under a `TorchDispatchMode` "
             "and counts the aten ops that would launch a CUDA kernel (views, aliases, metadata and allocation-only "
             "ops and ops on empty tensors excluded; the optimizers' `_foreach_` ops counted as CUDA's multi-tensor "
             "kernels; ops on tensors a CUDA run keeps on the host, such as the optimizers' step counters, excluded),"
             " the host-device syncs (`.item()` / `float()` / `bool()` of a device tensor, `.cpu()`, data-dependent "
             "shapes, host-to-device copies), the matmul FLOPs (`FlopCounterMode`) and the bytes the launched ops "
             "read and write. The rules are in the docstring of `tools/launches.py`. A randomly initialised model of "
             "the config's shape stands in for the checkpoints: counts depend on shapes and control flow only.", "",
             "**Predicted seconds of a unit = max(launches x launch cost, FLOPs / FLOP rate)** (`predict_seconds` in "
             "tools/launches.py): the host enqueues kernels while the device runs them, so the slower side sets the "
             "pace. Where the two alternate between syncs this is a lower bound; their sum, the upper bound, is under"
             " Sensitivity, as is the memory-traffic bound (bytes / bandwidth), which is left out of the headline "
             "because the byte count has no cache reuse (with it the batch-1024 pretraining step would be predicted "
             "19 ms against the 11.8 ms measured).", "",
             f"- **Launch cost {launch_s * 1e6:.1f} us** = {H100['pretrain_step_256_s'] * 1e3:.1f} ms (one pretraining "
             f"step at batch {CALIBRATION_BATCH}, measured on an H100 in issue 11) / "
             f"{H100['pretrain_step_256_s'] / launch_s:.0f} launches counted in that step. It is the effective cost "
             "of one eager op of this code on that machine (Python, dispatcher, launch, with the step's syncs and "
             "device time folded in), not the bare CUDA launch latency (~5 us). On this CPU, with a model of the "
             f"same depth but 16 wide (the same ops, next to no arithmetic), an op of the pretraining step costs "
             f"{host_here['pretrain_step'] * 1e6:.1f} us of host time and one of the RL step "
             f"{host_here['rl_step'] * 1e6:.1f} us (`host_cost_per_op`): the RL code's ops are "
             + ("not dearer on the host than the calibration step's, so one launch cost serves both."
                if host_here["rl_step"] <= 1.2 * host_here["pretrain_step"] else
                f"{host_here['rl_step'] / host_here['pretrain_step']:.1f}x dearer on the host than the calibration "
                "step's, which one launch cost for both does not capture."),
             f"- **FLOP rates** (assumed, not measured): {FLOP_ASSUMPTION}. Units computing in float64 (Part B, the "
             "exact metrics, pass@1 on a float64 copy) use the fp64 rate.",
             f"- **Members**: {members} (`pretrain.seeds`); every GPU rule runs once per member. The whole-DAG sum "
             "below is the GPU work serialized on one card (`--resources gpu=1`); the schedule section places the "
             f"jobs on {slots} slots (`--resources gpu={slots}`).", ""]

    rows = []
    for name, u in units.items():
        host, dev = u["launches"] * launch_s, flop_s(u)
        scaled = u["note"].startswith(("SCALED", "DERIVED"))
        rows.append({"unit": name, "launches": f"{u['launches']:,.0f}", "syncs": f"{u['syncs']:,.0f}",
                     "GFLOP": f"{u['flops'] / 1e9:,.1f}", "GB moved (bound)": f"{u['bytes'] / 1e9:,.1f}",
                     "dtype": u["dtype"].replace("float", "fp"),
                     "CPU wall here": fmt_s(u["measured_wall_s"]) + (" (counted runs)" if scaled else ""),
                     "launch s": fmt_s(host), "FLOP s": fmt_s(dev), "**predicted H100**": fmt_s(seconds(u, launch_s)),
                     "bound": "launch" if host >= dev else "FLOPs"})
    lines += ["## Units", "", pd.DataFrame(rows).to_markdown(index=False), "",
              "CPU wall: the counted run(s) on this machine, counting overhead included (for a scaled or derived "
              "unit, the smaller runs it was counted on). What each unit is, how it was counted, and where its syncs "
              "come from:", ""]
    for name, u in units.items():
        sites = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(u["syncs_by_site"].items(), key=lambda kv: -kv[1]))
        lines.append(f"- `{name}`: {u['note']}. Most launches: {u['top']}. Syncs: {sites or 'none'}.")
    lines += [f"- Not a unit: loading a checkpoint (`load_model`) takes {load_s * 1e3:.0f} ms of host time on this "
              "CPU (a GPU run adds one host-to-device copy per tensor); it is added per rule below.", ""]

    per_rule, total = [], {"launches": 0.0, "syncs": 0.0, "flops": 0.0, "s": 0.0, "load": 0.0}
    for rule, ts in terms.items():
        agg = {k: sum(n * units[u][k] for n, u in ts) for k in ("launches", "syncs", "flops")}
        sec = sum(n * seconds(units[u], launch_s) for n, u in ts)
        ld = loads[rule] * load_s
        per_rule.append({"rule (one member)": rule, "made of": " + ".join(f"{n:,} x {u}" for n, u in ts),
                         "launches": f"{agg['launches']:,.0f}", "syncs": f"{agg['syncs']:,.0f}",
                         "GFLOP": f"{agg['flops'] / 1e9:,.0f}", "**predicted GPU s**": fmt_s(sec),
                         "+ checkpoint loads": fmt_s(ld), "+ start-up": f"{lo:.0f}-{hi:.0f} s"})
        for k in ("launches", "syncs", "flops"):
            total[k] += agg[k]
        total["s"] += sec
        total["load"] += ld
    per_rule.append({"rule (one member)": "**member**", "made of": "", "launches": f"{total['launches']:,.0f}",
                     "syncs": f"{total['syncs']:,.0f}", "GFLOP": f"{total['flops'] / 1e9:,.0f}",
                     "**predicted GPU s**": fmt_s(total["s"]), "+ checkpoint loads": fmt_s(total["load"]),
                     "+ start-up": f"{len(terms) * lo:.0f}-{len(terms) * hi:.0f} s"})
    jobs = len(terms) * members
    dag_work = members * total["s"]
    dag_low = dag_work + members * total["load"] + jobs * lo
    dag_high = dag_work + members * total["load"] + jobs * hi
    share = sorted(((members * sum(n * seconds(units[u], launch_s) for n, u in ts), rule) for rule, ts in terms.items()),
                   reverse=True)
    lines += ["## Per rule and whole DAG", "",
              f"Per member: {len(p['checkpoints'])} checkpoints x {runs} RL runs ({len(tr['rl']['seeds'])} seeds + "
              f"{runs - len(tr['rl']['seeds'])} other lrs of the sweep) x {tr['rl']['steps']} steps, pass@1 on both "
              f"splits before and after each run; {p['steps']:,} pretraining steps and {pretrain_evals(p)} "
              f"training-log evals; {len(cfg['costates']['checkpoints'])} costates checkpoints; one alignment job.", "",
              pd.DataFrame(per_rule).to_markdown(index=False), "",
              f"**Whole DAG: {fmt_s(dag_work)} of predicted GPU work** ({members} members, {jobs} GPU jobs serialized "
              f"by `--resources gpu=1`); with the checkpoint loads and {lo:.0f}-{hi:.0f} s of start-up per job, "
              f"{fmt_s(dag_low)} to {fmt_s(dag_high)}. The CPU-only rules (Part A, data, summaries, figures) are "
              "not included.", "",
              "Share of the predicted GPU work: " + ", ".join(f"{rule} {x / dag_work:.0%}" for x, rule in share) + ".",
              ""]

    old_step = {**units["rl_step_single"], **ISSUE11_RL_STEP}
    run = (tr["rl"]["steps"] * seconds(old_step, launch_s)
           + 2 * (seconds(units["mean_pass1_eval_issue11"], launch_s)
                  + seconds(units["mean_pass1_rl_issue11"], launch_s)))
    old = H100["pretrain_job"]
    pre_job = (old["steps"] * seconds(units["calibration_step"], launch_s)
               + pretrain_evals(old) * seconds(units["pretrain_eval"], launch_s))
    big = units["pretrain_step_1024"]
    cross = [
        {"H100, issue 11": f"pretraining step, batch {CALIBRATION_BATCH}", "measured": fmt_s(H100["pretrain_step_256_s"]),
         "predicted": fmt_s(H100["pretrain_step_256_s"]), "note": "the calibration point (equal by construction)"},
        {"H100, issue 11": "pretraining step, batch 1024", "measured": fmt_s(H100["pretrain_step_1024_s"]),
         "predicted": fmt_s(seconds(big, launch_s)),
         "note": f"same {big['launches']:.0f} launches ({fmt_s(big['launches'] * launch_s)}); its "
                 f"{big['flops'] / 1e9:.0f} GFLOP take {fmt_s(flop_s(big))} at the assumed fp32 rate, so the "
                 f"measurement says the rate is at least {big['flops'] / H100['pretrain_step_1024_s'] / 1e12:.1f} TFLOP/s"},
        {"H100, issue 11": f"pretraining job, {old['steps']:,} steps of {CALIBRATION_BATCH}",
         "measured": fmt_s(H100["pretrain_job_s"]), "predicted": fmt_s(pre_job),
         "note": f"steps + {pretrain_evals(old)} evals; the measurement also holds start-up and the checkpoint and "
                 "resume saves"},
        {"H100, issue 11": f"one RL run ({tr['rl']['steps']} steps + 4 pass@1 evals)",
         "measured": f"{H100['rl_run_job_s']:.0f} s a job: ~{H100['rl_run_job_s'] - hi:.0f}-"
                     f"{H100['rl_run_job_s'] - lo:.0f} s of work",
         "predicted": fmt_s(run),
         "note": f"one job per run then: the job also loaded the checkpoint and the splits; start-up {lo:.0f}-{hi:.0f} "
                 f"s is a guess. Agrees only if start-up was ~{H100['rl_run_job_s'] - run:.0f} s"},
        {"H100, issue 11": "one costates checkpoint",
         "measured": f"{H100['costates_job_s']:.0f} s a job: ~{H100['costates_work_s']:.0f} s of work",
         "predicted": fmt_s(seconds(units["costates_checkpoint"], launch_s)), "note": "one job per checkpoint then"},
    ]
    lines += ["## Cross-check against the other H100 numbers", "",
              "Nothing is tuned to these. The measurements ran the single-member code of issue 11 (torch 2.11+cu130, "
              "commit 35f96fd): its pretraining step and costates chunk count as the current code's; its RL run is "
              f"predicted with that code's counts: {ISSUE11_RL_STEP['launches']} launches and "
              f"{ISSUE11_RL_STEP['syncs']} syncs a step (`ISSUE11_RL_STEP`; one run of the stacked code counts "
              f"{units['rl_step_single']['launches']:,.0f}) and its float64-copy pass@1.", "",
              pd.DataFrame(cross).to_markdown(index=False), ""]

    def dag(**kw) -> float:
        return members * sum(n * seconds(units[u], **kw) for ts in terms.values() for n, u in ts)

    rl_all = members * len(p["checkpoints"]) * tr["rl"]["steps"] * seconds(units["rl_step"], launch_s)
    measured_lo, measured_hi = H100["rl_run_job_s"] - hi, H100["rl_run_job_s"] - lo
    calib_1024 = H100["pretrain_step_1024_s"] / big["launches"]
    sens = [
        ("as above", dag(launch_s=launch_s)),
        ("FLOP rates halved", dag(launch_s=launch_s, flop_scale=0.5)),
        ("FLOP rates doubled", dag(launch_s=launch_s, flop_scale=2.0)),
        ("FLOP rates / 10", dag(launch_s=launch_s, flop_scale=0.1)),
        ("+ memory traffic (bytes / 1.2 TB/s, no cache reuse)", dag(launch_s=launch_s, with_bytes=True)),
        ("host + device summed (upper bound)", dag(launch_s=launch_s, how="sum")),
        (f"launch cost from the batch-1024 step ({calib_1024 * 1e6:.1f} us)", dag(launch_s=calib_1024)),
        (f"RL steps {measured_lo / run:.1f}x dearer (a lone run at the issue-11 job's work, {measured_lo:.0f} s, "
         f"instead of the predicted {run:.1f} s)", dag(launch_s=launch_s) + rl_all * (measured_lo / run - 1)),
        (f"RL steps {measured_hi / run:.1f}x dearer (a lone run at {measured_hi:.0f} s)",
         dag(launch_s=launch_s) + rl_all * (measured_hi / run - 1)),
    ]
    lines += ["## Sensitivity (whole DAG, GPU work only)", "",
              pd.DataFrame([{"variant": v, "predicted GPU work": fmt_s(x)} for v, x in sens]).to_markdown(index=False),
              ""]

    lines += schedule_section(cfg, units, terms, loads, load_s, launch_s, slots)

    rl = units["rl_step"]
    launch_bound = [n for n, u in units.items() if u["launches"] * launch_s >= flop_s(u)]
    flop_bound = [n for n, u in units.items() if u["launches"] * launch_s < flop_s(u)]
    rl_sites = ", ".join(f"{k} {v:.0f}" for k, v in sorted(rl["syncs_by_site"].items(), key=lambda kv: -kv[1]))
    lines += ["## Observations", "",
              f"- The largest rule is {share[0][1]} ({share[0][0] / dag_work:.0%} of the GPU work), and the RL step "
              f"of {runs} runs in lockstep ({fmt_s(rl_all)} in all): {rl['launches']:,.0f} launches and "
              f"{rl['syncs']:.0f} syncs for {rl['flops'] / 1e9:.0f} GFLOP, {fmt_s(rl['launches'] * launch_s)} of "
              f"launches against {fmt_s(flop_s(rl))} of arithmetic, x {members * len(p['checkpoints']) * tr['rl']['steps']:,} "
              f"steps in the DAG (one run alone: {units['rl_step_single']['launches']:,.0f} launches, "
              f"{units['rl_step_single']['syncs']:.0f} syncs). Most launches: {rl['top']}. Its syncs: {rl_sites}.",
              "- Launch-bound at the assumed rates: " + ", ".join(launch_bound) + "; bound by FLOPs: "
              + (", ".join(flop_bound) or "none") + f". Halving the FLOP rates moves the serialized total by "
              f"{sens[1][1] / sens[0][1] - 1:+.0%}, doubling them by {sens[2][1] / sens[0][1] - 1:+.0%} (Sensitivity); "
              "on N slots the card's busy time, mostly FLOPs, sets the wall (Schedule).",
              "- Not modelled: process start-up (a range above), disk I/O (checkpoint and resume saves in pretraining), "
              "CUDA's lazy loading of each kernel on first use, ops that launch several kernels on CUDA (counted "
              "once), tensors made from numpy (counted as device tensors), and the CPU-only rules.", ""]
    return "\n".join(lines)


KERNEL_DEVICE_S = 3e-6  # assumed least device time of one kernel (launch to completion of a tiny kernel on the card)
PART_A_CPU_S = {"control_a2_pendulum": 390.0, "control_a3": 352.0}  # issue 11, H100 machine's CPU, one thread each


def list_schedule(jobs: dict[str, tuple[float, list[str]]], slots: int) -> tuple[float, dict[str, float]]:
    """Wall time of `jobs` (name -> (seconds, names it needs)) on `slots` slots that run side by side without
    slowing each other: a free slot takes the longest job whose inputs are done (list scheduling). Returns the
    wall and each job's end."""
    import heapq

    end: dict[str, float] = {}
    free = [0.0] * slots
    todo = dict(jobs)
    while todo:
        t = heapq.heappop(free)
        ready = [(jobs[n][0], n) for n in todo if all(d in end and end[d] <= t for d in jobs[n][1])]
        if not ready:  # wait for the next input to finish
            t = min(end[d] for n in todo for d in jobs[n][1] if d in end and end[d] > t)
            heapq.heappush(free, t)
            continue
        dur, name = max(ready)
        end[name] = t + dur
        del todo[name]
        heapq.heappush(free, end[name])
    return max(end.values()), end


def device_busy(units: dict, terms: dict, members: int, fp32_rate: float) -> float:
    """Seconds the card itself is busy over the DAG: every kernel at least KERNEL_DEVICE_S, plus the matmul FLOPs at
    `fp32_rate` (float32 units) or the fp64 rate. Without MPS the kernels of processes sharing a card do not run at
    the same time, so N slots cannot finish before this."""
    rate = {"float32": fp32_rate, "float64": FLOP_RATE["float64"]}
    return members * sum(n * (units[u]["flops"] / rate[units[u]["dtype"]] + units[u]["launches"] * KERNEL_DEVICE_S)
                         for ts in terms.values() for n, u in ts)


def schedule_section(cfg: dict, units: dict, terms: dict, loads: dict, load_s: float, launch_s: float,
                     slots: int) -> list[str]:
    """The DAG's GPU jobs on 1 and on `slots` slots, with start-up at both ends of its range: the host-bound wall of
    the schedule, the card's busy time at two float32 rates, and the larger of the two."""
    members = len(cfg["pretrain"]["seeds"])
    lo, hi = H100["startup_s"]
    work = {rule: sum(n * seconds(units[u], launch_s) for n, u in ts) + loads[rule] * load_s
            for rule, ts in terms.items()}
    busy = {"fp32": device_busy(units, terms, members, FLOP_RATE["float32"]),
            "TF32": device_busy(units, terms, members, TF32_RATE)}
    rows = []
    for startup in (lo, hi):
        jobs = {}
        for m in range(members):
            for rule, w in work.items():
                jobs[f"{rule}/{m}"] = (w + startup, [] if rule == "pretrain" else [f"pretrain/{m}"])
        for n in (1, slots):
            wall, _ = list_schedule(jobs, n)
            row = {"start-up per job": f"{startup:.0f} s", "`--resources`": f"gpu={n}",
                   "host-bound wall (schedule)": fmt_s(wall)}
            for name, b in busy.items():
                row[f"**predicted wall, {name}**"] = fmt_s(max(wall, b))
            rows.append(row)
    critical = work["pretrain"] + hi + max(w + hi for r, w in work.items() if r != "pretrain")
    return ["## Schedule: GPU jobs on N slots", "",
            f"The {len(terms) * members} GPU jobs ({members} members x {', '.join(terms)}; each member's pretraining "
            f"before its other jobs) placed on 1 slot and on {slots} (`list_schedule`), each job its predicted work + "
            "checkpoint loads + start-up. N slots assume the jobs' host threads (one CPU core each) run side by "
            "side: each job is launch-bound, so its host thread sets its pace. The card runs one process's kernels "
            "at a time (no MPS), so the wall is at least the card's busy time: every kernel at least "
            f"{KERNEL_DEVICE_S * 1e6:.0f} us plus the matmul FLOPs, at the fp32 rate ({FLOP_RATE['float32'] / 1e12:.0f} "
            f"TFLOP/s, the measured batch-1024 step says at least 21.5) or on TF32 tensor cores, which "
            f"`select_device` enables on CUDA ({TF32_ASSUMPTION}); float64 at {FLOP_RATE['float64'] / 1e12:.0f} "
            "TFLOP/s either way. Predicted wall = max(host-bound wall, busy time). None of it is measured: "
            "`tools/gpu_probe.py` measures how N processes share a card and the TF32 step.", "",
            pd.DataFrame(rows).to_markdown(index=False), "",
            f"- The card's busy time: {fmt_s(busy['fp32'])} with fp32 matmuls, {fmt_s(busy['TF32'])} with TF32.",
            f"- Critical path (one member's pretraining, then its longest other job, at {hi:.0f} s start-up each): "
            f"{fmt_s(critical)}.",
            "- CPU-only jobs run beside them on the other cores; the longest, measured single-threaded on the H100 "
            "machine in issue 11: " + ", ".join(f"{k} {v:.0f} s" for k, v in PART_A_CPU_S.items()) + ".", ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configfile", nargs="+", default=["config/gpu.yaml"],
                    help="config files merged over config/config.yaml in order, as snakemake --configfile does")
    ap.add_argument("--out", help="also write the Markdown report here")
    ap.add_argument("--slots", type=int, default=8, help="GPU jobs sharing the card (--resources gpu=N)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    cfg = load(args.configfile)
    env = build_env(cfg)
    units = {}
    units.update(pretrain_units(env, cfg))
    units.update(trajectory_units(env, cfg))
    units["costates_checkpoint"] = costates_unit(env, cfg)
    units["update_alignment"] = alignment_unit(env, cfg)
    load_s = checkpoint_load_s(env)
    host_here = host_cost_per_op(env, cfg)
    launch_s = H100["pretrain_step_256_s"] / units["calibration_step"]["launches"]
    text = report(cfg, " ".join(args.configfile), units, load_s, launch_s, host_here, time.perf_counter() - t0, args.slots)
    print(text)
    if args.out:
        Path(args.out).write_text(text.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
