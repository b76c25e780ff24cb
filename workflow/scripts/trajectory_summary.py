"""Part C aggregation: per-checkpoint table (metrics, real gain over seeds, G_pred LOO), predictor correlations
with seed-bootstrap intervals, the bootstrap distribution of the gain's peak, and the learning-rate sweep verdict."""
import numpy as np
import pandas as pd

from vgh.io import write_table, write_text
from vgh.runtime import configure
from vgh.trajectory.predictors import checkpoint_table, peak_frequencies, predictor_table
from vgh.trajectory.rl import lr_rule


log = configure(snakemake.threads, snakemake.log[0])
t = snakemake.params.trajectory
metrics = pd.concat([pd.read_parquet(p) for p in snakemake.input.metrics], ignore_index=True)
curves = pd.concat([pd.read_parquet(p) for p in snakemake.input.rl], ignore_index=True)
gains = (curves.groupby(["checkpoint", "seed"], as_index=False)
         [["eval_pass1_before", "eval_pass1_after", "gain", "rl_pass1_before", "rl_pass1_after"]].first())
table = checkpoint_table(metrics, gains)
preds, peaks = predictor_table(metrics, gains, np.random.default_rng(t["bootstrap_seed"]), t["n_bootstrap"])
peak_freq = peak_frequencies(table["checkpoint"].to_numpy(), peaks)

sweep = pd.concat([pd.read_parquet(p) for p in snakemake.input.sweep], ignore_index=True)
per_ckpt, per_lr, chosen = lr_rule(sweep)
configured = float(t["rl"]["lr"])
per_lr["configured"] = np.isclose(per_lr["lr"], configured)
per_lr["chosen_by_rule"] = np.isclose(per_lr["lr"], chosen) if chosen is not None else False
log.info("lr sweep: rule picks %s; configured lr %g %s", chosen, configured,
         "is in the sweep" if per_lr["configured"].any() else "is NOT in the sweep")
log.info("predictors:\n%s", preds.to_string(index=False))
log.info("per checkpoint:\n%s", table[["checkpoint", "pass_at_1", "headroom", "signal", "gain_mean", "gain_se",
                                       "g_pred_loo"]].to_string(index=False))

md = ["# Part C learning-rate sweep", "",
      "Rule (stated before the sweep, `vgh.trajectory.rl`): the largest lr of `trajectory.lr_sweep` at which no "
      "checkpoint's mean training reward over the last quarter of RL steps falls below its expected step-0 reward "
      "(exact RL-split pass@1) by more than 2 standard errors. RL settings as configured, seed "
      f"{t['rl']['seeds'][0]}.", "",
      f"Rule picks lr = {chosen}; configured `trajectory.rl.lr` = {configured:g} "
      f"({'agrees' if chosen is not None and np.isclose(chosen, configured) else 'DISAGREES'}).", "",
      per_lr.to_markdown(index=False, floatfmt=".4g"), "", "Per (checkpoint, lr):", "",
      per_ckpt.to_markdown(index=False, floatfmt=".4g"), ""]

write_table(table, snakemake.output.checkpoints)
write_table(gains, snakemake.output.gains)
write_table(curves, snakemake.output.curves)
write_table(preds, snakemake.output.predictors)
write_table(peak_freq, snakemake.output.peak_bootstrap)
write_table(per_ckpt, snakemake.output.sweep)
write_table(per_lr, snakemake.output.sweep_summary)
write_text("\n".join(md), snakemake.output.sweep_md)
