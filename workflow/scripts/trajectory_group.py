"""Part C, a group of ensemble members in one process: at each checkpoint of their trajectories, the exact metrics,
RL with every seed and the lr sweep's runs."""
import pandas as pd

from vgh.io import member_of, write_table
from vgh.runtime import configure, select_device
from vgh.trajectory.checkpoint import measure_trajectory_point

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
steps = snakemake.params.steps
rl_frame, eval_frame = pd.read_parquet(snakemake.input.rl), pd.read_parquet(snakemake.input.eval)
for i, out in enumerate(snakemake.output.metrics):
    member = member_of(out)
    tables = {}
    for step, path in zip(steps, snakemake.input.checkpoints[i * len(steps) : (i + 1) * len(steps)]):
        assert member_of(path) == member, (path, member)
        log.info("member %d, checkpoint step %d", member, step)
        for name, table in measure_trajectory_point(path, int(step), rl_frame, eval_frame,
                                                    snakemake.params.trajectory, device, log).items():
            tables.setdefault(name, []).append(table)
    for name, parts in tables.items():
        table = pd.concat(parts, ignore_index=True)
        table.insert(0, "member", member)
        write_table(table, snakemake.output[name][i])
