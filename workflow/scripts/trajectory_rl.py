"""Part C, one (checkpoint, seed): RL on the RL split from the checkpoint; curve + exact eval pass@1 before/after."""
import pandas as pd
import torch

from vgh.io import write_table
from vgh.lm.model import load_checkpoint
from vgh.lm.task import encode_split
from vgh.runtime import configure, select_device
from vgh.trajectory.rl import RLSettings, run_from_checkpoint

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
step, seed = int(snakemake.wildcards.step), int(snakemake.wildcards.seed)
settings = RLSettings.from_config(snakemake.params.rl)
log.info("checkpoint step %d, seed %d: %s", step, seed, settings)
model, tok, digit_ids = load_checkpoint(snakemake.input.checkpoint, dtype=torch.float32, device=device)
rl_split = encode_split(tok, pd.read_parquet(snakemake.input.rl), device)
eval_split = encode_split(tok, pd.read_parquet(snakemake.input.eval), device)
curve = run_from_checkpoint(model, rl_split, eval_split, digit_ids, settings, seed, log=log,
                            desc=f"rl step_{step} seed_{seed}")
curve.insert(0, "checkpoint", step)
write_table(curve, snakemake.output[0])
