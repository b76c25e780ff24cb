"""Part C, one checkpoint in one process: exact metrics, RL with every seed, the lr sweep's runs."""
import pandas as pd

from vgh.io import write_table
from vgh.runtime import configure, select_device
from vgh.trajectory.checkpoint import measure_checkpoint

log = configure(snakemake.threads, snakemake.log[0])
tables = measure_checkpoint(snakemake.input.checkpoint, int(snakemake.wildcards.step),
                            pd.read_parquet(snakemake.input.rl), pd.read_parquet(snakemake.input.eval),
                            snakemake.params.trajectory, select_device(snakemake.params.device), log)
for name, table in tables.items():
    write_table(table, snakemake.output[name])
