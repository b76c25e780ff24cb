# Value-Gradient Hypothesis of RL for LLMs (2026): a reproducible replication.
#   snakemake --cores all                          every figure and claim verdict (config/config.yaml)
#   snakemake --cores all --configfile config/smoke.yaml   the tiny CI run (written under runs/smoke/)
#   snakemake figures/A1_sf_vs_pd.pdf              one figure
from snakemake.utils import min_version

min_version("9.0")

try:  # Snakemake reports a YAML error in its config file without file or line; name both
    from vgh.config import ConfigError, read_yaml

    read_yaml(f"{workflow.basedir}/config/config.yaml")
except ConfigError as err:
    raise WorkflowError(str(err)) from None


# absolute, as Snakemake makes --configfile files: `--report` rereads every config file after `workdir:` below
configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/control.smk"
include: "workflow/rules/trajectory.smk"
include: "workflow/rules/costates.smk"
include: "workflow/rules/claim.smk"
include: "workflow/rules/verdicts.smk"


rule all:
    input:
        "figures/claims.md",
        FIGURES,
        "figures/calibration.md",
        "figures/calibration.png",


# Every output path above is relative to the config's `workdir` (default config: the repository root; another:
# runs/<its name>, vgh.config.resolve_locations), so a config that is not the paper's never rewrites the committed
# figures/. Absolute, so that a job that a cluster starts inside the workdir (SLURM's job step re-reads this file
# there) lands in the same folder.
workdir: f"{workflow.basedir}/{config['workdir']}"
