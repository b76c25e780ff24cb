# Shared by every rules file: config validation, environment, claim list, helpers, what the run tells its user.
import os
import sys

from vgh.claims import claim_job, figure_job, load_claim_table
from vgh.config import ConfigError, load_config, load_schema, resolve_locations, validate_config
from vgh.notices import cost_estimate, end_summary, report_path, unlock_elsewhere
from vgh.runtime import OFFLINE_ENV

# Nothing reaches the network at run time; figures render without a display.
os.environ.update(OFFLINE_ENV)

DEFAULT_CONFIG = f"{workflow.basedir}/config/config.yaml"  # the paper's: the only one that writes figures/ here
# a path on disk, not a source-cache copy: the schema takes each claim's thresholds from workflow/claims.yaml beside it
SCHEMA = f"{workflow.basedir}/workflow/schemas/config.schema.yaml"
try:  # where this config writes (`workdir`) and reads (external checkpoints), from the files that name them
    resolve_locations(config, workflow.config_settings.configfiles, workflow.basedir, DEFAULT_CONFIG)
    validate_config(config, load_schema(SCHEMA))
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}") from None
if workflow.is_main_process and (COST := cost_estimate(config, load_config(DEFAULT_CONFIG, SCHEMA))):
    print(COST, file=sys.stderr)  # a run far larger than the default's: said before any job


onstart:
    # `device: cuda` needs a GPU where the jobs run: here, unless a cluster executor sends them elsewhere
    # (a dry run never gets here). Checked before any job, not inside the first GPU job after the CPU jobs ran.
    if config["device"] == "cuda" and workflow.local_exec:
        import torch

        if not torch.cuda.is_available():
            raise WorkflowError(
                "Invalid config: config key `device` is 'cuda' but this machine has no CUDA "
                "device (use 'auto' or 'cpu', or run the GPU jobs on a cluster executor)"
            )


# Where this run's outputs go (the config's workdir, absolute) and what it prints about them: the report's file
# (Snakemake says only "Report created."), at the end the verdict table, the figures and the report command, and on
# a failure where the job logs are (Snakemake names them relative to the workdir).
OUT = os.path.join(workflow.basedir, config["workdir"])
LAUNCH_DIR = os.getcwd()  # where Snakemake was started (before the Snakefile's `workdir:`)
if (REPORT := report_path(sys.argv)) is not None:
    print(f"The report goes to {os.path.relpath(os.path.join(OUT, REPORT))}", file=sys.stderr)
if "--unlock" in sys.argv:  # each config's lock is in its workdir: name the others that are locked
    for other in unlock_elsewhere(workflow.basedir, OUT):
        print(
            f"{os.path.relpath(other)} (another config's workdir) is locked too: unlock it with "
            "`snakemake --unlock --configfile <that config>`",
            file=sys.stderr,
        )


onsuccess:
    print(f"\n{end_summary(OUT, workflow.config_settings.configfiles, DEFAULT_CONFIG, LAUNCH_DIR)}", file=sys.stderr)


onerror:
    print(
        f"\nEvery job's log is under {os.path.join(OUT, 'logs')}/ (the log paths above are relative to it)",
        file=sys.stderr,
    )


ENV = "../../environment.yml"  # conda: directive, relative to workflow/rules/

# Rules that run torch on the device declare resources gpu=GPU: with `device: cuda`, `--resources gpu=N` lets N of
# them share one card at once (N = 1 serializes them; the SLURM profile turns each job's gpu=1 into --gpus=1).
# `auto` picks CUDA at job time when present but declares no GPU, so CPU-only clusters never queue for one.
GPU = 1 if config["device"] == "cuda" else 0

# The claim table (workflow/claims.yaml, also read by the notebooks run by hand): claim id -> statement, metric,
# check, tables and params of its claim rule, figure stem and extras of its figure rule; CLAIM_JOBS and
# FIGURE_JOBS resolve it against this config.
CLAIM_TABLE = load_claim_table(workflow.source_path("../claims.yaml"))
CLAIMS = {cid: entry["figure"] for cid, entry in CLAIM_TABLE.items()}  # figures/<stem>.pdf|png
try:  # a sub-check named in `not_meaningful_at_this_size` must be one of the claim's (R17)
    CLAIM_JOBS = {cid: claim_job(cid, entry, config) for cid, entry in CLAIM_TABLE.items()}
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}") from None
FIGURE_JOBS = {cid: figure_job(cid, entry, config) for cid, entry in CLAIM_TABLE.items()}


# The pretraining ensemble (R0): member k is pretrained with seed k; external checkpoints are member 0.
MEMBERS = config["pretrain"]["seeds"]
# The member-level jobs of every stage (pretraining, costates, alignment, trajectory) each serve a group of
# `pretrain.members_per_job` members, computed together; the outputs stay per member, so grouping moves no number
# and no path. A job reads its members from its outputs (not a param); regrouping reruns the member-level jobs (each
# job's inputs are its members' own data, R20), never a member's data draw.
GROUPS = [
    MEMBERS[i : i + config["pretrain"]["members_per_job"]]
    for i in range(0, len(MEMBERS), config["pretrain"]["members_per_job"])
]


def group_label(members):
    """The group's name in logs, benchmarks and resume folders: members_0_1_2."""
    return "members_" + "_".join(str(m) for m in members)


wildcard_constraints:
    claim="|".join(CLAIMS),
    member=r"\d+",
    step=r"\d+",
    seed=r"\d+",


FIGURES = [f"figures/{stem}.{ext}" for stem in CLAIMS.values() for ext in ("pdf", "png")]
