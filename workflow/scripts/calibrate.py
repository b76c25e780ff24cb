"""R19 for one claim (rule calibrate_<ID>): the claim's own check on its nulls and planted positives, and R21's
rule on each sub-check's nulls at the threshold; one table, results/calibration/<ID>.parquet."""
from vgh.calibration import calibration_table
from vgh.claims import run_check
from vgh.io import read_tables, write_table
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
params = dict(snakemake.params.items())
tables = {name: read_tables(paths) for name, paths in snakemake.input.items()}
claim = run_check(tables, params)
cal = params["calibration"]
table = calibration_table(claim.id, tables, params, claim.checks, int(params["bootstrap"]["seed"]),
                          rule_replicates=int(cal["rule_replicates"]), claim_replicates=int(cal["claim_replicates"]))
log.info("\n%s", table[["target", "case", "truth", "pass_rate", "inconclusive_rate", "fail_rate", "holds"]]
         .to_string(index=False))
write_table(table, snakemake.output[0])
