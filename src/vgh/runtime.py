"""Process set-up shared by every workflow script: offline Hugging Face, thread count, log file, device."""
from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg"}
for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)


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
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    logger.propagate = False
    logging.captureWarnings(True)
    warn_logger = logging.getLogger("py.warnings")
    warn_logger.handlers = list(handlers)
    warn_logger.propagate = False
    if log_path:
        file_handler = handlers[-1]
        hf_logger = logging.getLogger("transformers")  # keeps its own stderr handler; add the job's log
        hf_logger.handlers = [h for h in hf_logger.handlers if not isinstance(h, logging.FileHandler)]
        hf_logger.addHandler(file_handler)
        sys.excepthook = _excepthook_to(file_handler)
    return logger


def _excepthook_to(handler: logging.Handler):
    """An excepthook that writes the traceback to `handler` (the job's log), then to stderr as usual."""

    def hook(exc_type, exc, tb):
        if not issubclass(exc_type, KeyboardInterrupt):
            handler.handle(logging.LogRecord("vgh", logging.CRITICAL, __file__, 0,
                                             "the job failed with an uncaught exception:", None,
                                             (exc_type, exc, tb)))
            handler.flush()
        sys.__excepthook__(exc_type, exc, tb)

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
