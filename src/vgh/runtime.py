"""Process set-up shared by every workflow script: offline Hugging Face, thread count, log file, device; and what a
Snakemake invocation tells its user (where the report goes, the summary at the end)."""
from __future__ import annotations

import fcntl
import logging
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# The jobs' environment: nothing reaches the network, figures render without a display, and no "Loading weights"
# bar from transformers at every checkpoint load (HF_HUB_DISABLE_PROGRESS_BARS, read when transformers is imported;
# the jobs' own progress bars are tqdm's, `progress`).
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)
INTERRUPTED = "interrupted (Ctrl-C): run the same command again to resume"


def _quiet_interrupt(exc_type, exc, tb):
    """Ctrl-C in a job (Snakemake's jobs get it with Snakemake) ends in one line, not a traceback per job."""
    if issubclass(exc_type, KeyboardInterrupt):
        print(INTERRUPTED, file=sys.stderr)
    else:
        sys.__excepthook__(exc_type, exc, tb)


if sys.excepthook is sys.__excepthook__:  # from the job's first import of vgh.runtime, before its heavy imports
    sys.excepthook = _quiet_interrupt


def configure(threads: int, log_path: str | None, name: str = "vgh") -> logging.Logger:
    """Limit torch (and BLAS) to the rule's `threads`; send log records to `log_path` (and stderr).

    The job's log file also receives its warnings (Python's and transformers') and, if the job dies, the
    traceback of the uncaught exception: on a cluster the job's stderr may sit elsewhere, its log does not.

    Called first by every workflow script, so parallel jobs never oversubscribe the cores. torch is not
    imported here (a figure job needs none of its ~2 s import): the thread variables cover a later import,
    and a torch already imported is set directly.
    """
    n = str(max(1, int(threads)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = n
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(n))
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set in this process
            pass
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    for h in logger.handlers:  # an earlier configure's, in this process: its log file (and lock) released
        h.close()
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    kept = None
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        kept = keep_running_log(log_path)
        handlers.append(logging.FileHandler(log_path, mode="w"))
        try:  # the log is this job's while it runs (`keep_running_log`)
            fcntl.flock(handlers[-1].stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a file system without locks, or another handle of this process
            pass
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    logger.propagate = False
    logging.captureWarnings(True)
    warn_logger = logging.getLogger("py.warnings")
    warn_logger.handlers = list(handlers)
    warn_logger.propagate = False
    if "transformers" in sys.modules:  # imported before this call: its bars are silenced here
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    file_handler = handlers[-1] if log_path else None
    if file_handler is not None:
        hf_logger = logging.getLogger("transformers")  # keeps its own stderr handler; add the job's log
        hf_logger.handlers = [h for h in hf_logger.handlers if not isinstance(h, logging.FileHandler)]
        hf_logger.addHandler(file_handler)
    sys.excepthook = _excepthook_to(file_handler)
    if kept:
        logger.warning("the log of a job still running from an earlier Snakemake run (PID %s) was moved to %s",
                       kept[1], kept[0])
    return logger


# Σ job seconds of each stage of the default config (10 members), measured on a 2-core CPU (docs/benchmarks.md,
# docs/benchmarks_default.md, 2026-12-03: 1,419 s of job time, 714 s of wall time on 2 cores), and what each scales
# with. A coarse model: it says when a config is far larger than the default, not how long it takes to the minute.
DEFAULT_JOB_SECONDS = {"pretraining": 329.0, "Part B costates": 128.0, "Part B alignment (B3)": 222.0,
                       "Part C": 443.0, "the rest (Part A, claims, calibration, figures)": 297.0}
DEFAULT_WALL_SECONDS = 714.0


def _stage_sizes(c: dict[str, Any]) -> dict[str, float]:
    """Each stage's work in the units its time scales with (see `cost_estimate`)."""
    m, pre, d = len(c["pretrain"]["seeds"]), c["pretrain"], c["data"]
    width = c["model"]["n_layer"] * c["model"]["n_embd"] ** 2  # a step's FLOPs grow with layers x width^2
    ext = bool(c.get("external", {}).get("checkpoints"))
    co, al, tr = c["costates"], c["alignment"], c["trajectory"]
    rl = tr["rl"]
    completions = 10.0 ** (d["digits"] + 1)  # Part B enumerates every answer of a prompt
    return {"pretraining": 0.0 if ext else m * pre["steps"] * pre["batch_size"] * width,
            "Part B costates": m * len(co["checkpoints"]) * len(co["temperatures"]) * co["n_prompts"] * completions,
            "Part B alignment (B3)": m * al["n_batches"] * sum(al["num_generations"]) * co["n_prompts"] * completions,
            "Part C": m * len(pre["checkpoints"]) * (len(rl["seeds"]) + len(tr["lr_sweep"]) - 1) * rl["steps"]
            * rl["prompts_per_step"] * rl["num_generations"] * rl["num_iterations"] * width,
            "the rest (Part A, claims, calibration, figures)": 1.0}


def cost_estimate(config: dict[str, Any], default: dict[str, Any], factor: float = 10.0) -> str | None:
    """A warning when a validated `config` would take more than `factor` times the `default` config's job time,
    scaling each stage's measured seconds (`DEFAULT_JOB_SECONDS`) by its work relative to the default's: members x
    steps x batch x layers x width^2 (pretraining), members x checkpoints x temperatures x prompts x completions (Part
    B), members x checkpoints x runs x RL steps x prompts x G x iterations x layers x width^2 (Part C); None below
    (and for `device: cuda`)."""
    if config.get("device") == "cuda":  # CPU figures say nothing of a GPU's time (docs/gpu_cost.md does)
        return None
    mine, base = _stage_sizes(config), _stage_sizes(default)
    stages = {k: DEFAULT_JOB_SECONDS[k] * (mine[k] / base[k] if base[k] else 1.0) for k in DEFAULT_JOB_SECONDS}
    total = sum(stages.values())
    ratio = total / sum(DEFAULT_JOB_SECONDS.values())
    if ratio < factor:
        return None
    wall = DEFAULT_WALL_SECONDS * ratio
    big = ", ".join(f"{k} x{v / DEFAULT_JOB_SECONDS[k]:.3g}" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])
                    if v > 2 * DEFAULT_JOB_SECONDS[k])
    return (f"This config is about {ratio:.3g} times the default's work ({big}): on the 2-core CPU of "
            f"docs/benchmarks.md about {_duration(wall)} instead of 12 minutes, a coarse estimate from its measured "
            f"stages. Check the sizes (pretrain.steps, members, ...) or see docs/scaling.md for a GPU or a cluster.")


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s"


def progress(iterable, desc: str, total: int | None = None):
    """A long job's progress bar (tqdm on stderr: done, rate, time left), at most one update every 2 s."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, mininterval=2.0)


def keep_running_log(log_path: str | os.PathLike) -> tuple[str, str] | None:
    """Move `log_path` aside when a job that is still running holds it (an orphan of a Snakemake that was killed: its
    log is locked by `configure`), so that a rerun's job does not overwrite it; the orphan goes on writing to the
    moved file. Returns (the new name, the holder's PID), or None when no running job holds the log."""
    try:
        fd = os.open(log_path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        holder = _lock_holder(log_path)
        if holder == str(os.getpid()):
            return None
        moved = f"{log_path}.running-{holder}-{time.strftime('%Y%m%d-%H%M%S')}"
        os.replace(log_path, moved)
        return moved, holder
    finally:
        os.close(fd)


def _lock_holder(path: str | os.PathLike) -> str:
    """The PID holding a lock on `path` (from /proc/locks), or "?"."""
    try:
        inode = os.stat(path).st_ino
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            if len(parts) > 5 and parts[5].rsplit(":", 1)[-1] == str(inode):
                return parts[4]
    except OSError:
        pass
    return "?"


def disk_full_hint(exc: BaseException, folder: str | os.PathLike = ".") -> str | None:
    """What to do when `exc` came from a full disk (errno ENOSPC, or torch's "iostream error" on a disk with almost
    no space left): the folder, its free space and the remedy; None otherwise."""
    import errno

    free = shutil.disk_usage(folder).free
    full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    if not full and free < 64 * 2 ** 20 and any(w in str(exc) for w in ("iostream", "write", "No space")):
        full = True
    if not full:
        return None
    return (f"the disk holding {os.path.abspath(folder)} is full ({free / 2 ** 20:.0f} MB free): free some space "
            f"(a finished run's resume/ and scratch/ may go) and run the same command again; the job's temporary "
            f"files were removed")


def _excepthook_to(handler: logging.Handler | None):
    """An excepthook for a job: Ctrl-C ends in one line; any other exception's traceback goes to `handler` (the
    job's log), then to stderr as usual, followed by what to do when the disk is full."""

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            print(INTERRUPTED, file=sys.stderr)
            return
        if handler is not None:
            handler.handle(logging.LogRecord("vgh", logging.CRITICAL, __file__, 0,
                                             "the job failed with an uncaught exception:", None,
                                             (exc_type, exc, tb)))
        sys.__excepthook__(exc_type, exc, tb)
        hint = disk_full_hint(exc)
        if hint:
            if handler is not None:
                handler.handle(logging.LogRecord("vgh", logging.CRITICAL, __file__, 0, hint, None, None))
            print(hint, file=sys.stderr)
        if handler is not None:
            handler.flush()

    return hook


def select_device(device: str) -> "torch.device":
    """`auto` picks CUDA when present, else CPU; `cuda` without a GPU is an error.

    On CUDA, float32 matmuls may use TF32 tensor cores (`torch.backends.cuda.matmul.fp32_precision = "tf32"`, a
    CUDA-only setting): the float32 work is pretraining and Part C's RL updates, where TF32's 10-bit mantissa in
    the products is noise far below SGD's; every exact measurement (pass@1, costates, signals, value gradients)
    runs in float64, which TF32 never touches. CPU numbers are unaffected.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key `device` is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if device == "cuda":
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    return torch.device(device)


def _shown(path: str | os.PathLike, cwd: str | os.PathLike) -> str:
    """A path as the user may type it in `cwd` (where Snakemake was started): relative when inside it, else
    absolute."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path(cwd).resolve())) or "."
    except ValueError:
        return str(path)


def report_path(argv: list[str]) -> str | None:
    """The file that `snakemake --report [FILE]` in `argv` writes (relative to the config's workdir, as every
    output), or None when `argv` does not ask for a report."""
    for i, arg in enumerate(argv):
        if arg.startswith("--report="):
            return arg.split("=", 1)[1]
        if arg == "--report":
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            return nxt if nxt and not nxt.startswith("-") else "report.html"
    return None


def unlock_elsewhere(root: str | os.PathLike, workdir: str | os.PathLike) -> list[str]:
    """The workdirs under `root` (itself and runs/*/) that a Snakemake lock holds, besides `workdir`: `snakemake
    --unlock` unlocks only its config's workdir."""
    found = [Path(root), *sorted(Path(root).glob("runs/*"))]
    return [os.path.abspath(d) for d in found if list((d / ".snakemake/locks").glob("*.lock"))
            and os.path.abspath(d) != os.path.abspath(workdir)]


def configfile_args(configfiles, default: str | os.PathLike, cwd: str | os.PathLike) -> str:
    """The ` --configfile ...` part of a command that repeats this run's config (none for the default config)."""
    files = [_shown(f, cwd) for f in configfiles if Path(f).resolve() != Path(default).resolve()]
    return f" --configfile {' '.join(map(shlex.quote, files))}" if files else ""


def end_summary(workdir: str | os.PathLike, configfiles, default: str | os.PathLike, cwd: str | os.PathLike) -> str:
    """What a finished run prints last: where its verdict table and figures are, and the report command (with the
    run's --configfile, and where the report lands: under the config's workdir); paths as typed in `cwd`."""
    workdir = Path(workdir)
    table = workdir / "figures/claims.md"
    lines = []
    if table.exists():
        counts = next((ln for ln in reversed(table.read_text().splitlines()) if " claims: " in ln), "")
        lines.append(f"Verdict table: {_shown(table, cwd)}" + (f" ({counts.rstrip('.')})" if counts else ""))
        lines.append(f"Figures: {_shown(workdir / 'figures', cwd)}/")
    else:
        lines.append(f"Outputs under {_shown(workdir, cwd)}/ (no verdict table yet: run without targets to build it)")
    lines.append(f"HTML report: snakemake --report report.html{configfile_args(configfiles, default, cwd)}  (writes "
                 f"{_shown(workdir / 'report.html', cwd)})")
    return "\n".join(lines)
