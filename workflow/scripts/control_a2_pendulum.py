"""A2 (pendulum): mean costate over M continuations vs a Gaussian-smoothing reference that never backprops (each
seed its own policy, R20)."""
from vgh.control.experiments import run_a2_pendulum
from vgh.io import write_table
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
p = snakemake.params
pen = p.pendulum
setup = {k: pen[k] for k in ("horizon", "dt", "sigma", "hidden")}
log.info("pendulum: %s", setup)
table = run_a2_pendulum(setup, pen["n_probes"], p.continuations, pen["smoothing_scales"], pen["smoothing_samples"],
                        p.seeds, pen["power_target"], pen["max_smoothing_samples"])
write_table(table, snakemake.output[0])
