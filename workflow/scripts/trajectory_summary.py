"""Part C aggregation: per-checkpoint table (metrics, real gain over seeds, G_pred LOO), predictor correlations
with seed-bootstrap intervals, the bootstrap distribution of the gain's peak, and the learning-rate sweep verdict."""
from vgh.io import read_tables, write_table, write_text
from vgh.runtime import configure
from vgh.trajectory.summary import sweep_markdown, sweep_verdict, trajectory_summary

log = configure(snakemake.threads, snakemake.log[0])
t = snakemake.params.trajectory
tables = trajectory_summary(read_tables(snakemake.input.metrics), read_tables(snakemake.input.rl),
                            read_tables(snakemake.input.sweep), t["rl"]["lr"], t["n_bootstrap"], t["bootstrap_seed"])
verdict = sweep_verdict(tables["sweep_summary"], t["rl"]["lr"])
log.info("lr sweep: rule picks %s; configured lr %g %s", verdict["chosen_lr"], verdict["configured_lr"],
         "is in the sweep" if verdict["configured_lr_in_sweep"] else "is NOT in the sweep")
log.info("predictors:\n%s", tables["predictors"].to_string(index=False))
log.info("per checkpoint:\n%s", tables["checkpoints"][["checkpoint", "pass_at_1", "headroom", "signal", "gain_mean",
                                                       "gain_se", "g_pred_loo"]].to_string(index=False))
for name, table in tables.items():
    write_table(table, snakemake.output[name])
write_text(sweep_markdown(tables["sweep"], tables["sweep_summary"], t["rl"]["lr"], t["rl"]["seeds"][0]),
           snakemake.output.sweep_md)
