"""Pretraining of a group of ensemble members as one stacked computation: build each member's model from the config
with its seed (its initialisation and data order), train them together, each on its own corpus (R20), publish every
member's checkpoints and training log. A job reads its members from its outputs (`vgh.io.member_of`)."""
import torch
from transformers import AutoTokenizer

from vgh.io import member_of, read_table
from vgh.lm.model import build_model
from vgh.lm.pretrain import PretrainSettings, finish_pretraining, pretrain, resume_lock
from vgh.lm.task import digit_token_ids, encode_prompts, encode_split
from vgh.runtime import configure, select_device

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
m, p = snakemake.params.model, snakemake.params.pretrain
seeds = [member_of(path) for path in snakemake.output.log_tables]  # member k has seed k
# one resume folder per group, named by its members (not a param)
resume_dir = "resume/pretrain/members_" + "_".join(map(str, seeds))
tok = AutoTokenizer.from_pretrained(snakemake.input.tokenizer)
if [member_of(path) for path in (*snakemake.input.pretrain, *snakemake.input.eval)] != seeds * 2:
    raise ValueError(f"the corpora and eval splits {snakemake.input} are not those of members {seeds}")
# each member's own corpus and eval prompts (R20), stacked [K, N, S] / [K, E, P]
train_ids = torch.stack([encode_prompts(tok, read_table(path)["text"].tolist())
                         for path in snakemake.input.pretrain]).to(device)
evals = [encode_split(tok, read_table(path), device) for path in snakemake.input.eval]
eval_prompts, eval_answers = torch.stack([e[0] for e in evals]), torch.stack([e[1] for e in evals])
members = {s: build_model(len(tok), train_ids.shape[2], m["n_layer"], m["n_head"], m["n_embd"], s).to(device)
           for s in seeds}
log.info("members %s: model: %d parameters each, sequence length %d, device %s", seeds,
         sum(x.numel() for x in members[seeds[0]].parameters()), train_ids.shape[2], device)


def save_checkpoint(model, folder):
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


settings = PretrainSettings(steps=p["steps"], batch_size=p["batch_size"], lr=p["lr"], warmup=p["warmup"],
                            checkpoints=tuple(p["checkpoints"]), eval_every=p["eval_every"])
outputs = dict(zip([(s, step) for s in seeds for step in p["checkpoints"]], snakemake.output.checkpoints, strict=True))
with resume_lock(resume_dir):  # one writer per resume folder
    tables = pretrain(members, train_ids, eval_prompts, eval_answers, digit_token_ids(tok).to(device),
                      settings, resume_dir, save_checkpoint, log)
    finish_pretraining(resume_dir, outputs, tables,
                       dict(zip(seeds, snakemake.output.log_tables, strict=True)))
for s in seeds:
    log.info("done: member %d final eval pass@1 %.4f", s, tables[s]["eval_pass1"].iloc[-1])
