"""One claim's check (rule claim_<ID>, workflow/claims.yaml): its tables, thresholds and the bootstrap settings in,
the claim record results/claims/<ID>.json out, with the members it was decided on and the verdict's recurrence,
R22's predicted chance that a fresh ensemble repeats it. No figure here: a verdict never imports matplotlib."""
from vgh.calibration import claim_rng, ensemble_members
from vgh.claims import run_check
from vgh.io import read_tables
from vgh.recurrence import recurrence
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
params = dict(snakemake.params.items())
tables = {name: read_tables(paths) for name, paths in snakemake.input.items()}
claim = run_check(tables, params)
claim.members = ensemble_members(tables)
claim.recurrence = recurrence(claim.checks, claim.verdict, int(params["calibration"]["recurrence_draws"]),
                              claim_rng(params["bootstrap"]["seed"], claim.id), claim.id)
log.info(claim.summary())
claim.write(snakemake.output.claim, config={k: v for k, v in params.items()
                                            if k not in ("claim", "check", "nulls", "statement", "metric")})
