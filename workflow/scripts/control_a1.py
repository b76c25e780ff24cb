"""A1: score-function vs pathwise estimates of the exact LQ policy gradient, vs the number of rollouts."""
from vgh.control.experiments import lq_description, lq_system, run_a1
from vgh.io import write_table
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params
sys = lq_system(**p.lq)
desc = lq_description(sys)
log.info("LQ system: %s", desc)
table = run_a1(sys, p.n_rollouts, p.seeds).assign(grad_norm=desc["grad_norm"],
                                                   closed_loop_radius=desc["closed_loop_radius"])
write_table(table, snakemake.output[0])
