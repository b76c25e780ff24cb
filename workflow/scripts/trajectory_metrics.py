"""Part C, one checkpoint: exact pass@1 / pass@k, headroom, signal S, mean p(1-p), value-gradient norm (eval split)."""
import time

import pandas as pd
import torch

from vgh.io import write_table
from vgh.lm.model import load_checkpoint
from vgh.lm.task import encode_split
from vgh.runtime import configure, select_device
from vgh.trajectory.metrics import checkpoint_metrics

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
t = snakemake.params.trajectory
step = int(snakemake.wildcards.step)
t0 = time.time()
model, tok, digit_ids = load_checkpoint(snakemake.input.checkpoint, dtype=torch.float64, device=device)
prompt_ids, answers = encode_split(tok, pd.read_parquet(snakemake.input.eval), device)
row = {"checkpoint": step, **checkpoint_metrics(model, prompt_ids, answers, digit_ids, t["pass_k"], t["headroom_k"])}
log.info("step %d: %s (%.1f s)", step, ", ".join(f"{k} {v:.4g}" for k, v in row.items()), time.time() - t0)
write_table(pd.DataFrame([row]), snakemake.output[0])
