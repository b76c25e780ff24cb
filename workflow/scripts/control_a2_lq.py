"""A2 (LQ): mean costate over M continuations from probe states vs the exact value gradient -2 P_t x (each seed its
own system, R20)."""
from vgh.control.experiments import run_a2_lq
from vgh.io import write_table
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params
write_table(run_a2_lq(p.lq, p.max_alpha, p.n_probes, p.continuations, p.seeds), snakemake.output[0])
