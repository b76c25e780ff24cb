"""Part C, a group of ensemble members in one process: at each checkpoint step, every member's exact metrics, then
the RL runs of all the members (every seed and the lr sweep's runs) as one stack, each member on its own RL and eval
prompts (R20). One table of each kind per member:
input.checkpoints is member-major (for each member, its steps), output.metrics / .rl / .sweep list one file per
member, in members order (a job reads its members from its outputs: `vgh.io.member_of`)."""
import pandas as pd

from vgh.io import member_of, read_table, write_table
from vgh.runtime import configure, progress, select_device
from vgh.trajectory.checkpoint import measure_trajectory_points

log = configure(snakemake.threads, snakemake.log[0])
device = select_device(snakemake.params.device)
members = [member_of(path) for path in snakemake.output.metrics]
steps = [int(s) for s in snakemake.params.steps]
paths = list(snakemake.input.checkpoints)
if [member_of(p) for p in paths] != [m for m in members for _ in steps]:
    raise ValueError(f"checkpoints {paths} are not member-major over members {members} x steps {steps}")
if [member_of(p) for p in (*snakemake.input.rl, *snakemake.input.eval)] != members * 2:
    raise ValueError(f"the prompt splits {snakemake.input.rl}, {snakemake.input.eval} are not members {members}")
# each member's own RL and eval prompts (R20)
rl_frames, eval_frames = ([read_table(p) for p in paths_] for paths_ in (snakemake.input.rl, snakemake.input.eval))
tables = [{} for _ in members]
for j, step in enumerate(progress(steps, f"Part C, members {members}: checkpoints")):
    log.info("members %s, checkpoint step %d", members, step)
    group = [paths[i * len(steps) + j] for i in range(len(members))]
    for mine, measured in zip(tables, measure_trajectory_points(group, members, step, rl_frames, eval_frames,
                                                                snakemake.params.trajectory, device, log)):
        for name, table in measured.items():
            mine.setdefault(name, []).append(table)
for i, (member, mine) in enumerate(zip(members, tables)):
    for name, parts in mine.items():
        table = pd.concat(parts, ignore_index=True)
        table.insert(0, "member", member)
        write_table(table, getattr(snakemake.output, name)[i])
