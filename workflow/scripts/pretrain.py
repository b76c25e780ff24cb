"""Pretraining of a group of ensemble members (interim: one after another): build each model from the config with
the member's seed, train it on the shared corpus (the member's data order), publish the checkpoints."""
import pandas as pd
from transformers import AutoTokenizer

from vgh.io import member_of
from vgh.lm.model import build_model
from vgh.lm.pretrain import PretrainSettings, finish_pretraining, pretrain, resume_lock
from vgh.lm.task import digit_token_ids, encode_prompts, encode_split
from vgh.runtime import configure, select_device

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
m, p = snakemake.params.model, snakemake.params.pretrain
tok = AutoTokenizer.from_pretrained(snakemake.input.tokenizer)
corpus = pd.read_parquet(snakemake.input.pretrain)
evals = pd.read_parquet(snakemake.input.eval)
train_ids = encode_prompts(tok, corpus["text"].tolist()).to(device)


def save_checkpoint(model, folder):
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


n = len(p["checkpoints"])
for i, log_table in enumerate(snakemake.output.log_tables):
    seed = member_of(log_table)
    model = build_model(len(tok), train_ids.shape[1], m["n_layer"], m["n_head"], m["n_embd"], seed).to(device)
    settings = PretrainSettings(steps=p["steps"], batch_size=p["batch_size"], lr=p["lr"], warmup=p["warmup"],
                                checkpoints=tuple(p["checkpoints"]), eval_every=p["eval_every"], seed=seed)
    resume_dir = f"resume/pretrain/member_{seed}"
    with resume_lock(resume_dir):  # one writer per resume folder
        table = pretrain(model, train_ids, *encode_split(tok, evals, device), digit_token_ids(tok).to(device),
                         settings, resume_dir, save_checkpoint, log)
        finish_pretraining(resume_dir, dict(zip(p["checkpoints"], snakemake.output.checkpoints[i * n:(i + 1) * n])),
                           table, log_table)
    log.info("member %d done: final eval pass@1 %.4f", seed, table["eval_pass1"].iloc[-1])
