"""Import one external checkpoint folder into results/pretrain/step_<s>."""
from vgh.lm.model import import_checkpoint
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
import_checkpoint(snakemake.params.source, snakemake.output[0], snakemake.params.tokenizer)
log.info("imported %s -> %s", snakemake.params.source, snakemake.output[0])
