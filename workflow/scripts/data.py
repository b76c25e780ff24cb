"""Data prep: the three splits as parquet and the character-level tokenizer folder."""
import numpy as np

from vgh.io import write_table
from vgh.lm.task import build_tokenizer, make_splits
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params.data
splits = make_splits(p["digits"], p["n_pretrain"], p["n_rl"], p["n_eval"], p["corruption_rate"],
                     np.random.default_rng(p["seed"]), p["prompt_template"])
for name, ds in splits.items():
    write_table(ds.to_pandas(), snakemake.output[name])
    log.info("%s: %d rows", name, len(ds))
log.info("pretrain: %.3f of answers corrupted (rho = %g)", np.mean(splits["pretrain"]["corrupted"]),
         p["corruption_rate"])
build_tokenizer().save_pretrained(snakemake.output.tokenizer)
