"""Part B (B3), a group of ensemble members: cosines of REINFORCE / RLOO / GRPO update directions with the exact
grad_theta J vs group size, in exact expectation and sampled, with the permuted-reward null of the algorithm Part C
runs (each member on its own prompts and stream, R20)."""
import torch

from vgh.costates.alignment import update_alignment
from vgh.io import member_of, read_table, write_table
from vgh.lm.model import load_checkpoint
from vgh.lm.task import encode_split
from vgh.runtime import configure, select_device
from vgh.streams import torch_generator

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
p, a = snakemake.params, snakemake.params.alignment
for checkpoint, eval_path, out in zip(snakemake.input.checkpoints, snakemake.input.eval, snakemake.output, strict=True):
    member = member_of(out)
    assert member_of(checkpoint) == member == member_of(eval_path), (checkpoint, eval_path, member)
    evals = read_table(eval_path)  # the member's own eval prompts (R20)
    model, tok, digit_ids = load_checkpoint(checkpoint, dtype=torch.float64, device=device)
    ids, answers = encode_split(tok, evals, device, p.n_prompts)
    gen = torch_generator(member, "alignment", a["checkpoint"], device=device)
    log.info("member %d, checkpoint step %d, %d prompts, tau %g, group sizes %s, %d batches each", member,
             a["checkpoint"], len(ids), a["temperature"], a["num_generations"], a["n_batches"])
    table = update_alignment(model, ids, answers, digit_ids, a["temperature"],
                             p.reward, a["num_generations"], a["n_batches"], gen, "group", p.max_batch_rows, log,
                             null_algos=(p.algo,), n_bootstrap=p.n_bootstrap)
    table.insert(0, "checkpoint", a["checkpoint"])
    table.insert(0, "member", member)
    write_table(table, out)
