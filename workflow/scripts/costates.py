"""Part B (B1, B2), one checkpoint: exact value gradient, E[lambda_PD] and lambda_SF over the temperature sweep."""
import numpy as np
import pandas as pd
import torch

from vgh.io import write_table
from vgh.lm.measure import measure_checkpoint, summarize
from vgh.lm.model import load_checkpoint
from vgh.lm.task import encode_split
from vgh.runtime import configure, select_device

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
c = snakemake.params.costates
step = int(snakemake.wildcards.step)
model, tok, digit_ids = load_checkpoint(snakemake.input.checkpoint, dtype=torch.float64, device=device)
evals = pd.read_parquet(snakemake.input.eval)
ids, answers = encode_split(tok, evals, device, c["n_prompts"])
meta = evals.iloc[:len(ids)][["a", "b", "prompt", "answer", "carry"]]
seed = int(np.random.SeedSequence([c["seed"], step]).generate_state(1)[0])
gen = torch.Generator(device=device).manual_seed(seed)
log.info("checkpoint step %d: %d prompts (%d with a carry), temperatures %s, N = %d", step, len(meta),
         int(meta["carry"].sum()), c["temperatures"], c["sample_budget"])
prompts = measure_checkpoint(model, ids, answers, meta, digit_ids, c["temperatures"],
                             c["reward"], c["sample_budget"], gen, c["max_batch_rows"], log)
prompts.insert(0, "checkpoint", step)
write_table(prompts, snakemake.output.prompts)
write_table(summarize(prompts, ["checkpoint", "temperature"]), snakemake.output.summary)
