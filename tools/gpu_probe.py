"""GPU probe: how long the GPU config's steps take, and how a tiny model's training scales when N processes share
one GPU. A short script (about 2-3 minutes on one H100 with the defaults) to run before the full GPU workflow.

    python tools/gpu_probe.py [--device cuda|cpu] [--configfile config/gpu.yaml] [--steps 200]
                              [--procs 1 2 4 8] [--out probe.md] [--tiny]

It needs torch, transformers, tokenizers and PyYAML (jsonschema too, to fill in the schema's defaults; without it
the YAML files are merged as they are), not Snakemake; `src/` is put on the path by the script itself. Inputs are
synthetic, with the shapes of the config's task (`data.digits`, `data.prompt_template`): random token ids of the
task's sequence length for pretraining, prompts and answers of random operands for the RL step and pass@1.

Measured (each after a warm-up, `torch.cuda.synchronize()` around every timed block, median of `--repeats`):
1. Concurrency: for N in --procs, N worker processes (this script with --worker) each build the model, warm up,
   wait on a common start file (so start-up is not timed), then run --steps pretraining steps (batch
   pretrain.batch_size, the workflow's float32 matmul precision). Per-process ms/step and aggregate steps/s.
2a. One lone-model pretraining step (`vgh.lm.pretrain.hf_train_step`: forward with labels, backward,
   clip_grad_norm_, AdamW step) at each --batches, float32 with matmul precision "highest" (plain fp32) and "high"
   (TF32 on CUDA).
2b. Part C's stacked RL step (`vgh.trajectory.rl.rl_train_runs`) for K in --rl-k runs at trajectory.rl's
   settings: calls with 1 and with --rl-steps steps; the marginal step is (T_n - T_1) / (n - 1).
2c. Exact pass@1 (`vgh.lm.stacked.exact_pass1`, float64) of K = 1 and K = max(--rl-k) runs on n_eval and n_rl
   prompts (what `run_group` computes before and after RL), and the pretraining eval
   (`vgh.lm.policy.exact_pass1` on the float32 model, n_eval prompts).
The Markdown report goes to stdout and to --out; the numbers also go to --out with suffix .json.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import vgh.runtime  # noqa: E402, F401  (its import sets the jobs' environment, OFFLINE_ENV, before transformers loads)

TINY_MODEL = {"n_layer": 1, "n_head": 2, "n_embd": 32}


def progress(msg: str) -> None:
    print(f"[probe {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ settings
def load_settings(args) -> dict:
    """What the probe needs from the config (config/config.yaml with --configfile merged over it)."""
    base, schema = ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml"
    cf = Path(args.configfile) if args.configfile else base
    if not cf.exists() and (ROOT / cf).exists():  # relative to the repository, wherever this runs from
        cf = ROOT / cf
    overrides = [cf] if cf.resolve() != base else []
    from vgh.config import deep_update, load_config, read_yaml

    try:
        cfg = load_config(base, schema, overrides)
    except ImportError:  # no jsonschema here: plain merge (the schema's defaults are then not filled in)
        cfg = read_yaml(base)
        for o in overrides:
            deep_update(cfg, read_yaml(o))
    data, rl = cfg["data"], cfg["trajectory"]["rl"]
    s = {
        "configfile": str(args.configfile),
        "digits": int(data["digits"]),
        "prompt_template": data.get("prompt_template", "{a}+{b}="),
        "n_eval": int(data["n_eval"]), "n_rl": int(data["n_rl"]),
        "model": {k: int(cfg["model"][k]) for k in ("n_layer", "n_head", "n_embd")},
        "batch_size": int(cfg["pretrain"]["batch_size"]),
        "pretrain_lr": float(cfg["pretrain"]["lr"]),
        "rl": {k: rl.get(k, d) for k, d in (("algo", "grpo"), ("optimizer", "sgd"), ("lr", 0.003), ("steps", 1),
                                            ("num_generations", 8), ("prompts_per_step", 16),
                                            ("epsilon", 0.2), ("num_iterations", 1),
                                            ("scale_rewards", "group"))},
    }
    traj, pre = cfg["trajectory"], cfg["pretrain"]
    s["workload"] = {  # for the projections at the end of the report
        "members": len(pre.get("seeds", [0])), "pretrain_steps": int(pre["steps"]),
        "checkpoints": len(pre["checkpoints"]), "rl_steps": int(s["rl"]["steps"]),
        "rl_runs_per_checkpoint": len(rl.get("seeds", [0])) + len(
            [lr for lr in traj.get("lr_sweep", []) if float(lr) != float(s["rl"]["lr"])])}
    if args.tiny:  # a test-sized run: tiny model, small batches and prompt sets
        s["model"] = dict(TINY_MODEL)
        s["batch_size"] = 16
        s["n_eval"], s["n_rl"] = 32, 32
        s["rl"].update(num_generations=4, prompts_per_step=4)
    s["batches"] = args.batches or ([s["batch_size"], 4 * s["batch_size"]])
    return s


# ------------------------------------------------------------------------------------------------ inputs
def task_inputs(s: dict, n: int, device, seed: int = 0):
    """(prompt_ids [n, P], answers [n, L], digit_ids [10], vocab size, sequence length P + L) of n random prompts."""
    import torch

    from vgh.lm.task import answer_indices, build_tokenizer, digit_token_ids, encode_prompts, prompt_text, true_answer

    tok = build_tokenizer()
    g = torch.Generator().manual_seed(seed)
    d = s["digits"]
    ab = torch.randint(0, 10 ** d, (n, 2), generator=g).tolist()
    prompts = encode_prompts(tok, [prompt_text(a, b, d, s["prompt_template"]) for a, b in ab])
    answers = answer_indices([true_answer(a, b, d) for a, b in ab])
    return (prompts.to(device), answers.to(device), digit_token_ids(tok).to(device), len(tok),
            prompts.shape[1] + answers.shape[1])


def new_model(s: dict, vocab: int, seq_len: int, device, seed: int = 0):
    from vgh.lm.model import build_model

    return build_model(vocab, seq_len, s["model"]["n_layer"], s["model"]["n_head"], s["model"]["n_embd"],
                       seed).to(device)


class PretrainStepper:
    """One lone Hugging Face model's pretraining step (`vgh.lm.pretrain.hf_train_step`, what `pretrain` took before
    members were stacked) and the on-device check of the loss; lr schedule aside: a constant lr."""

    def __init__(self, s: dict, batch: int, device, seed: int = 0, corpus: int = 20000):
        import torch

        from vgh.lm.pretrain import FirstNonFinite

        _, _, _, vocab, seq_len = task_inputs(s, 1, "cpu")
        self.model = new_model(s, vocab, seq_len, device, seed)
        g = torch.Generator().manual_seed(seed)
        self.train_ids = torch.randint(0, vocab, (corpus, seq_len), generator=g).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=s["pretrain_lr"], weight_decay=0.0,
                                     betas=(0.9, 0.98))
        self.gen = torch.Generator(device=self.train_ids.device).manual_seed(seed)
        self.batch, self.lr, self.step_no = batch, s["pretrain_lr"], 0
        self.nonfinite = FirstNonFinite(device)

    def step(self):
        from vgh.lm.pretrain import hf_train_step as train_step

        loss = train_step(self.model, self.opt, self.train_ids, self.batch, self.lr, self.gen)
        self.nonfinite.update(loss, self.step_no)
        self.step_no += 1


# ------------------------------------------------------------------------------------------------ timing
def sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of `fn()` per call, `repeats` times after `warmup` untimed calls, synchronized around each."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def summary(seconds: list[float], per: int = 1) -> dict:
    ms = [1000 * x / per for x in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "repeats": len(ms)}


# ------------------------------------------------------------------------------------------------ 1. concurrency
def worker(args) -> None:
    """One process of the concurrency test: build, warm up, say ready, wait for the go file, time the steps."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # the per-process attention-mask / loss-type notices
    if args.threads:
        torch.set_num_threads(args.threads)
    s = load_settings(args)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision(args.precision)
    stepper = PretrainStepper(s, s["batch_size"], device, seed=args.rank)
    for _ in range(args.warmup):
        stepper.step()
    sync(device)
    barrier = Path(args.barrier)
    (barrier / f"ready.{args.rank}").touch()
    deadline = time.time() + args.worker_timeout
    while not (barrier / "go").exists():
        if time.time() > deadline:
            sys.exit(f"worker: no start signal within {args.worker_timeout} s")
        time.sleep(0.0005)
    t0 = time.perf_counter()
    start = time.time()
    for _ in range(args.steps):
        stepper.step()
    sync(device)
    secs = time.perf_counter() - t0
    end = start + secs
    if int(stepper.nonfinite.step) >= 0:
        progress(f"worker {args.rank}: non-finite loss at step {int(stepper.nonfinite.step)} (timing still valid)")
    print(json.dumps({"rank": args.rank, "steps": args.steps, "seconds": secs, "start": start, "end": end,
                      "pid": os.getpid()}), flush=True)


def concurrency(args, s: dict, errors: list[str]) -> list[dict]:
    rows = []
    for n in args.procs:
        progress(f"concurrency: starting {n} process(es), {args.steps} steps each, batch {s['batch_size']}")
        try:
            rows.append(concurrency_group(args, s, n))
        except Exception as err:  # noqa: BLE001 - a failed group is reported, the other measurements still run
            errors.append(f"concurrency N={n}: {type(err).__name__}: {err}")
            progress(errors[-1])
            continue
        r = rows[-1]
        progress(f"concurrency N={n}: {r['ms_per_step_mean']:.2f} ms/step per process, aggregate "
                 f"{r['agg_steps_per_s']:.1f} steps/s (start-up {r['startup_s']:.1f} s, untimed)")
    base = rows[0]["agg_steps_per_s"] if rows else 1.0
    for r in rows:
        r["agg_vs_first"] = r["agg_steps_per_s"] / base
    return rows


def concurrency_group(args, s: dict, n: int) -> dict:
    """N worker processes started together; their per-process and aggregate step rates."""
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="gpu_probe_") as barrier:
        threads = args.threads or max(1, cpus // n)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--device", args.device,
               "--configfile", str(args.configfile), "--steps", str(args.steps), "--barrier", barrier,
               "--warmup", str(args.warmup), "--threads", str(threads), "--precision", args.precision,
               "--worker-timeout", str(args.worker_timeout)]
        if args.tiny:
            cmd.append("--tiny")
        procs = [subprocess.Popen(cmd + ["--rank", str(r)], stdout=subprocess.PIPE, text=True)
                 for r in range(n)]
        t_spawn = time.perf_counter()
        try:
            while len(list(Path(barrier).glob("ready.*"))) < n:
                dead = [p for p in procs if p.poll() not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a worker exited with code {dead[0].returncode} before it was ready")
                if time.perf_counter() - t_spawn > args.worker_timeout:
                    raise RuntimeError(f"workers not ready within {args.worker_timeout} s")
                time.sleep(0.01)
            startup = time.perf_counter() - t_spawn
            (Path(barrier) / "go").touch()
            outs = []
            for p in procs:
                out, _ = p.communicate(timeout=args.worker_timeout)
                if p.returncode != 0:
                    raise RuntimeError(f"a worker failed with code {p.returncode}")
                outs.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    per = [1000 * o["seconds"] / o["steps"] for o in outs]
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    return {"procs": n, "steps_per_proc": args.steps, "ms_per_step_mean": statistics.mean(per),
            "ms_per_step_max": max(per), "wall_s": wall, "agg_steps_per_s": n * args.steps / wall,
            "startup_s": startup, "threads_per_proc": threads}


# ------------------------------------------------------------------------------------------------ 2. step times
def pretrain_steps(args, s: dict, device) -> list[dict]:
    import torch

    rows = []
    for batch in s["batches"]:
        for precision in ("highest", "high"):
            torch.set_float32_matmul_precision(precision)
            stepper = PretrainStepper(s, batch, device)

            def block(stepper=stepper):  # bound now: the loop deletes its name after timing
                for _ in range(args.block):
                    stepper.step()

            secs = timed(block, device, args.repeats, warmup=1)
            label = "fp32" if precision == "highest" else ("tf32" if device.type == "cuda" else "high")
            rows.append({"what": "pretrain step", "settings": f"batch {batch}, {label} (precision {precision})",
                         **summary(secs, args.block)})
            progress(f"pretrain step batch {batch} {label}: {rows[-1]['median_ms']:.2f} ms")
            del stepper
    return rows


def rl_steps(args, s: dict, device) -> list[dict]:
    import torch

    from vgh.trajectory.rl import RLSettings, rl_train_runs

    torch.set_float32_matmul_precision(args.precision)
    prompts, answers, digit_ids, vocab, seq_len = task_inputs(s, s["n_rl"], device, seed=1)
    model = new_model(s, vocab, seq_len, device)
    quiet = logging.getLogger("gpu_probe.rl")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    rows = []
    for k in args.rl_k:
        def call(steps):
            st = RLSettings.from_config(s["rl"], steps=steps)
            gens = [torch.Generator(device=device).manual_seed(i) for i in range(k)]
            return lambda: rl_train_runs(model, prompts, answers, digit_ids, st, [st.lr] * k, gens, log=quiet,
                                         progress=False)

        one = timed(call(1), device, args.rl_repeats, warmup=1)
        many = timed(call(args.rl_steps), device, args.rl_repeats, warmup=0)
        r = s["rl"]
        what = (f"K {k}, {r['algo']}/{r['optimizer']}, B {r['prompts_per_step']} x G {r['num_generations']}, "
                f"{args.precision}")
        rows.append({"what": "RL call, 1 step", "settings": what, **summary(one)})
        rows.append({"what": f"RL step (call of {args.rl_steps} / {args.rl_steps})", "settings": what,
                     **summary(many, args.rl_steps)})
        marginal = 1000 * (statistics.median(many) - statistics.median(one)) / max(1, args.rl_steps - 1)
        rows.append({"what": "RL step, marginal (T_n - T_1)/(n - 1)", "settings": what, "median_ms": marginal,
                     "min_ms": marginal, "max_ms": marginal, "repeats": args.rl_repeats})
        progress(f"RL K={k}: {rows[-2]['median_ms']:.1f} ms/step ({args.rl_steps}-step calls), marginal "
                 f"{marginal:.1f} ms")
    return rows


def eval_times(args, s: dict, device) -> list[dict]:
    import torch

    from vgh.lm import policy, stacked
    from vgh.lm.stack import Stack

    torch.set_float32_matmul_precision(args.precision)
    rows = []
    ev = task_inputs(s, s["n_eval"], device, seed=2)
    rl = task_inputs(s, s["n_rl"], device, seed=1)
    model = new_model(s, ev[3], ev[4], device)
    for k in sorted({1, max(args.rl_k)}):
        params = Stack.of_model(model, k).params()
        for split, (p, a, d, _, _) in (("n_eval", ev), ("n_rl", rl)):
            secs = timed(lambda: stacked.exact_pass1(params, model, p, a, d), device, args.repeats)
            rows.append({"what": "exact pass@1 (stacked, float64)", "settings": f"K {k}, {len(p)} prompts ({split})",
                         **summary(secs)})
            progress(f"exact_pass1 K={k} {len(p)} prompts: {rows[-1]['median_ms']:.2f} ms")
    p, a, d = ev[:3]
    secs = timed(lambda: policy.exact_pass1(model.eval(), p, a, d), device, args.repeats)
    rows.append({"what": "pretraining eval pass@1 (HF model, fp32)", "settings": f"{len(p)} prompts (n_eval)",
                 **summary(secs)})
    return rows


# ------------------------------------------------------------------------------------------------ report
def table(rows: list[dict], cols: list[tuple[str, str, str]]) -> list[str]:
    out = ["| " + " | ".join(h for _, h, _ in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(format(r[k], f) if f else str(r[k]) for k, _, f in cols) + " |")
    return out


def report(args, s: dict, env: dict, conc: list[dict], steps: list[dict], total_s: float,
           errors: list[str]) -> str:
    lines = ["# GPU probe", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M')} by `python tools/gpu_probe.py "
             f"{' '.join(sys.argv[1:])}` in {total_s:.0f} s.", "",
             f"- device: {env['device_name']} ({env['device']})",
             f"- torch {env['torch']}, CUDA {env['cuda']}, transformers {env['transformers']}, "
             f"{env['cpus']} CPUs",
             f"- config: {s['configfile']}{' with --tiny' if args.tiny else ''}: model {s['model']}, digits "
             f"{s['digits']} (sequence length {s['seq_len']}: prompt {s['prompt_len']} + answer "
             f"{s['seq_len'] - s['prompt_len']}), pretraining batch {s['batch_size']}",
             f"- RL: {s['rl']}",
             f"- float32 matmul precision for the concurrency test, RL and pass@1: {args.precision!r} "
             "(the workflow's `select_device` sets 'high' on CUDA)",
             "", "## 1. N processes sharing the device", "",
             f"Each process: {args.steps} pretraining steps (batch {s['batch_size']}) after {args.warmup} warm-up "
             "steps, started together by a start file. Aggregate = N x steps / (last end - first start).", ""]
    lines += ["(skipped)"] if not conc else table(conc, [("procs", "N", ""), ("steps_per_proc", "steps/proc", ""),
                          ("ms_per_step_mean", "ms/step per proc (mean)", ".2f"),
                          ("ms_per_step_max", "ms/step (slowest proc)", ".2f"), ("wall_s", "wall s", ".2f"),
                          ("agg_steps_per_s", "aggregate steps/s", ".1f"), ("agg_vs_first", "x first N", ".2f"),
                          ("startup_s", "start-up s (untimed)", ".1f"), ("threads_per_proc", "threads", "")])
    lines += ["", "## 2. Step times (median of repeats, after warm-up)", ""]
    lines += ["(skipped)"] if not steps else table(steps, [("what", "measurement", ""), ("settings", "settings", ""),
                           ("median_ms", "median ms", ".2f"), ("min_ms", "min ms", ".2f"),
                           ("max_ms", "max ms", ".2f"), ("repeats", "repeats", "")])
    lines += projections(args, s, conc, steps)
    if errors:
        lines += ["", "## Errors", "", *[f"- {e}" for e in errors]]
    return "\n".join(lines) + "\n"


def projections(args, s: dict, conc: list[dict], steps: list[dict]) -> list[str]:
    """Rough device time of the config's two big parts from the numbers above (step time x steps only: no
    evaluation, metrics, checkpoint I/O or process start-up)."""
    w, out = s["workload"], []
    pre = [r for r in steps if r["what"] == "pretrain step" and r["settings"].startswith(f"batch {s['batch_size']},")
           and f"precision {args.precision})" in r["settings"]]
    total_steps = w["members"] * w["pretrain_steps"]
    if pre:
        out.append(f"- pretraining, one process after another: {w['members']} members x {w['pretrain_steps']} steps "
                   f"x {pre[0]['median_ms']:.2f} ms = {total_steps * pre[0]['median_ms'] / 1000:.0f} s")
    for r in conc:
        if r["procs"] <= w["members"]:
            out.append(f"- pretraining, N = {r['procs']} at a time: {total_steps} steps / "
                       f"{r['agg_steps_per_s']:.1f} steps/s = {total_steps / r['agg_steps_per_s']:.0f} s")
    k = w["rl_runs_per_checkpoint"]
    rl = [r for r in steps if r["what"].startswith("RL step, marginal") and r["settings"].startswith(f"K {k},")]
    if rl:
        n = w["members"] * w["checkpoints"] * w["rl_steps"]
        out.append(f"- Part C RL: {w['members']} members x {w['checkpoints']} checkpoints x {w['rl_steps']} steps, "
                   f"K = {k} stacked runs, x {rl[0]['median_ms']:.1f} ms = {n * rl[0]['median_ms'] / 1000:.0f} s")
    elif any(r["what"].startswith("RL step") for r in steps):
        out.append(f"- Part C RL: the config stacks K = {k} runs per checkpoint; measure it with --rl-k {k}")
    if not out:
        return []
    return ["", "## Projections for this config (step time x steps only)", "", *out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--configfile", default="config/gpu.yaml", help="merged over config/config.yaml")
    ap.add_argument("--steps", type=int, default=200, help="pretraining steps per process (concurrency test)")
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--out", help="write the Markdown report here (and the numbers to the same name .json)")
    ap.add_argument("--tiny", action="store_true", help=f"test size: model {TINY_MODEL}, batch 16, small RL")
    ap.add_argument("--batches", type=int, nargs="+", help="pretraining batch sizes of 2a (default: B and 4B)")
    ap.add_argument("--rl-k", type=int, nargs="+", default=[1, 8], help="stacked RL runs K")
    ap.add_argument("--rl-steps", type=int, default=5, help="steps of the longer timed RL call")
    ap.add_argument("--rl-repeats", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--block", type=int, default=10, help="pretraining steps per timed block in 2a")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps per worker before the start signal")
    ap.add_argument("--precision", default="high", choices=["highest", "high", "medium"],
                    help="float32 matmul precision outside 2a (the workflow uses 'high' on CUDA)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["concurrency", "pretrain", "rl", "eval"])
    ap.add_argument("--worker-timeout", type=float, default=120.0, help="seconds a worker group may take")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--barrier", help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads per process (default: torch's own in the main process, cores / N in "
                         "the N workers)")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    t_start = time.perf_counter()
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but torch sees no CUDA device (use --device cpu)")
    device = torch.device(args.device)
    s = load_settings(args)
    p, a, _, _, seq_len = task_inputs(s, 1, "cpu")
    s["seq_len"], s["prompt_len"] = seq_len, p.shape[1]
    env = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda or "none",
           "transformers": transformers.__version__, "cpus": os.cpu_count(),
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"}
    progress(f"{env['device_name']}, torch {env['torch']}; config {args.configfile}, model {s['model']}, "
             f"sequence length {seq_len}")
    errors: list[str] = []
    conc = [] if "concurrency" in args.skip else concurrency(args, s, errors)
    steps = []
    for name, section in (("pretrain", pretrain_steps), ("rl", rl_steps), ("eval", eval_times)):
        if name in args.skip:
            continue
        try:
            steps += section(args, s, device)
        except Exception as err:  # noqa: BLE001 - reported; the other sections still run
            errors.append(f"{name}: {type(err).__name__}: {err}")
            progress(errors[-1])
    total = time.perf_counter() - t_start
    text = report(args, s, env, conc, steps, total, errors)
    print(text, flush=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(
            {"env": env, "settings": s, "concurrency": conc, "steps": steps, "errors": errors,
             "total_s": total}, indent=1,
            default=str))
    progress(f"done in {total:.0f} s" + (f" with {len(errors)} error(s)" if errors else ""))
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
