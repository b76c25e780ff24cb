"""Data prep of one member (R20): its three splits as parquet, drawn from the member's own stream."""
import numpy as np

from vgh.io import member_of, write_table
from vgh.lm.task import make_splits
from vgh.runtime import configure
from vgh.streams import numpy_rng

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params.data
member = member_of(snakemake.output.eval)
splits = make_splits(p["digits"], p["n_pretrain"], p["n_rl"], p["n_eval"], p["corruption_rate"],
                     numpy_rng(member, "data"), p["prompt_template"])
for name, ds in splits.items():
    write_table(ds.to_pandas(), snakemake.output[name])
    log.info("member %d, %s: %d rows", member, name, len(ds))
log.info("member %d, pretrain: %.3f of answers corrupted (rho = %g)", member, np.mean(splits["pretrain"]["corrupted"]),
         p["corruption_rate"])
