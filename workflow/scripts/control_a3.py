"""A3: state-dependent noise; detached vs reparameterized backward passes vs the exact value gradient."""
from vgh.control.experiments import lq_description, lq_system, run_a3
from vgh.io import write_table
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params
sys = lq_system(**p.lq)
log.info("LQ system: %s", lq_description(sys))
write_table(run_a3(sys, p.alphas, p.n_probes, p.continuations, p.seeds), snakemake.output[0])
