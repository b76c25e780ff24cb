"""A1: score-function vs pathwise estimates of the exact LQ policy gradient, vs the number of rollouts (each seed its
own system, R20)."""
from vgh.control.experiments import run_a1
from vgh.io import write_table
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params
write_table(run_a1(p.lq, p.max_alpha, p.n_rollouts, p.seeds), snakemake.output[0])
