"""Part C learning-rate sweep, one lr: RL (configured settings, first seed) from every checkpoint; the curves."""
import pandas as pd
import torch

from vgh.io import write_table
from vgh.lm.model import load_checkpoint
from vgh.lm.task import encode_split
from vgh.runtime import configure, select_device
from vgh.trajectory.rl import RLSettings, run_from_checkpoint

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
lr = float(snakemake.wildcards.lr)
seed = int(snakemake.params.seed)
settings = RLSettings.from_config(snakemake.params.rl, lr=lr)
rl_frame, eval_frame = pd.read_parquet(snakemake.input.rl), pd.read_parquet(snakemake.input.eval)
curves = []
for step, path in zip(snakemake.params.steps, snakemake.input.checkpoints):
    model, tok, digit_ids = load_checkpoint(path, dtype=torch.float32, device=device)
    curve = run_from_checkpoint(model, encode_split(tok, rl_frame, device), encode_split(tok, eval_frame, device),
                                digit_ids, settings, seed, log=log, desc=f"lr {lr:g} step_{step}")
    curves.append(curve.assign(checkpoint=step, lr=lr))
write_table(pd.concat(curves, ignore_index=True), snakemake.output[0])
