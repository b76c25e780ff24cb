"""Part C aggregation over the ensemble (docs/SCIENCE.md R0, R6-R13): per (member, checkpoint) table (metrics,
real gain over seeds, G_pred LOO), per member predictor correlations and peaks, the ensemble table (each
predictor's Spearman and Delta with nested member/seed bootstrap intervals) and the lr rule per member."""
from vgh.io import read_tables, write_table, write_text
from vgh.runtime import configure
from vgh.trajectory.summary import sweep_markdown, trajectory_summary

log = configure(snakemake.threads, snakemake.log[0])
t = snakemake.params.trajectory
tables = trajectory_summary(read_tables(snakemake.input.metrics), read_tables(snakemake.input.rl),
                            read_tables(snakemake.input.sweep), t, snakemake.params.bootstrap)
log.info("lr rule per member:\n%s", tables["sweep_summary"].to_string(index=False))
log.info("ensemble:\n%s", tables["ensemble"].to_string(index=False))
log.info("peaks per member:\n%s", tables["peaks"].to_string(index=False))
log.info("per checkpoint:\n%s", tables["checkpoints"][["member", "checkpoint", "pass_at_1", "headroom", "signal",
                                                       "gain_mean", "gain_se", "g_pred_loo"]].to_string(index=False))
for name, table in tables.items():
    write_table(table, snakemake.output[name])
write_text(sweep_markdown(tables["sweep"], tables["sweep_summary"], t["rl"]["lr"], t["lr_rule_alpha"]),
           snakemake.output.sweep_md)
