"""Process set-up shared by every workflow script: offline Hugging Face, thread count, log file, device. What a
Snakemake invocation tells its user (a large config's cost, where the report goes, the summary at the end) is in
`vgh.notices`."""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

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
