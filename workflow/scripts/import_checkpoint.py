"""Import one external checkpoint folder into results/pretrain/member_0/step_<s>."""
from vgh.lm.external import import_checkpoint
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
import_checkpoint(snakemake.params.source, snakemake.output[0], snakemake.params.tokenizer, snakemake.params.sha256)
log.info("imported %s (content sha256 %s) -> %s", snakemake.params.source, snakemake.params.sha256,
         snakemake.output[0])
