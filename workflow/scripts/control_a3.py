"""A3: state-dependent noise; detached vs reparameterized backward passes vs the exact value gradient (each seed its
own system, R20)."""
from vgh.control.experiments import run_a3
from vgh.io import write_table
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params
write_table(run_a3(p.lq, p.alphas, p.n_probes, p.continuations, p.seeds), snakemake.output[0])
