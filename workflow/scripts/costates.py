"""Part B (B1, B2), a group of ensemble members: exact value gradient, E[lambda_PD] and lambda_SF over the temperature
sweep at each measured checkpoint of each member (each member on its own prompts and streams, R20)."""
import pandas as pd
import torch

from vgh.costates.measure import measure_costates, summarize
from vgh.io import member_of, read_table, write_table
from vgh.lm.model import load_checkpoint
from vgh.lm.task import encode_split
from vgh.runtime import configure, progress, select_device
from vgh.streams import torch_generator

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
c, steps = snakemake.params.costates, snakemake.params.steps
bar = progress(None, "Part B costates: checkpoints", total=len(snakemake.output.prompts) * len(steps))
for i, (prompts_out, summary_out, eval_path) in enumerate(zip(snakemake.output.prompts, snakemake.output.summary,
                                                                snakemake.input.eval, strict=True)):
    member = member_of(prompts_out)
    assert member_of(eval_path) == member, (eval_path, member)
    evals = read_table(eval_path)  # the member's own eval prompts (R20)
    tables = []
    for step, path in zip(steps, snakemake.input.checkpoints[i * len(steps) : (i + 1) * len(steps)]):
        assert member_of(path) == member, (path, member)
        model, tok, digit_ids = load_checkpoint(path, dtype=torch.float64, device=device)
        ids, answers = encode_split(tok, evals, device, c["n_prompts"])
        meta = evals.iloc[: len(ids)][["a", "b", "prompt", "answer", "carry"]]
        gen = torch_generator(member, "costates", step, device=device)
        log.info("member %d, checkpoint step %d: %d prompts (%d with a carry), temperatures %s, N = %d", member, step,
                 len(meta), int(meta["carry"].sum()), c["temperatures"], c["sample_budget"])
        prompts = measure_costates(model, ids, answers, meta, digit_ids, c["temperatures"],
                                   c["reward"], c["sample_budget"], gen, c["max_batch_rows"], log)
        prompts.insert(0, "checkpoint", step)
        tables.append(prompts)
        bar.update()
    prompts = pd.concat(tables, ignore_index=True)
    prompts.insert(0, "member", member)
    write_table(prompts, prompts_out)
    write_table(summarize(prompts, ["member", "checkpoint", "temperature"]), summary_out)
