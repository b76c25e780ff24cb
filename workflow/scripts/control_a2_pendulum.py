"""A2 (pendulum): mean costate over M continuations vs a Gaussian-smoothing reference that never backprops."""
from vgh.control.experiments import pendulum_setup, run_a2_pendulum
from vgh.io import write_table
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params
pen = p.pendulum
env, policy = pendulum_setup(pen["horizon"], pen["dt"], pen["sigma"], pen["hidden"], pen["policy_seed"])
log.info("pendulum: %s", env)
table = run_a2_pendulum(env, policy, pen["n_probes"], p.continuations, pen["smoothing_scales"],
                        pen["smoothing_samples"], p.seeds)
write_table(table, snakemake.output[0])
