"""A2 (LQ): mean costate over M continuations from probe states vs the exact value gradient -2 P_t x."""
from vgh.control.experiments import lq_description, lq_system, run_a2_lq
from vgh.io import write_table
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params
sys = lq_system(**p.lq)
log.info("LQ system: %s", lq_description(sys))
write_table(run_a2_lq(sys, p.n_probes, p.continuations, p.seeds), snakemake.output[0])
