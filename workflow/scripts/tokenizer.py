"""The task's character-level tokenizer, saved as a Hugging Face tokenizer folder (shared by every member)."""
from vgh.lm.task import build_tokenizer
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
build_tokenizer().save_pretrained(snakemake.output[0])
log.info("tokenizer: %s", snakemake.output[0])
