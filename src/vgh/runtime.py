"""Process set-up shared by every workflow script: offline Hugging Face, thread count, log file, device."""
from __future__ import annotations

import logging
import os
import sys

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg"}
for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)


def configure(threads: int, log_path: str | None, name: str = "vgh") -> logging.Logger:
    """Limit torch (and BLAS) to the rule's `threads`; send log records to `log_path` (and stderr).

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
    return logger


def select_device(device: str) -> "torch.device":
    """`auto` picks CUDA when present, else CPU; `cuda` without a GPU is an error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key `device` is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(device)
