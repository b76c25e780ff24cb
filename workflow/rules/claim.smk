# The rules of one claim, all three from one factory and the claim table (workflow/claims.yaml, read in
# common.smk as CLAIM_JOBS and FIGURE_JOBS):
#   claim_<ID>      the claim's check on its tables, with its thresholds (claims.<ID>) and the bootstrap settings:
#                   the record results/claims/<ID>.json. No figure here: a verdict never imports matplotlib.
#   calibrate_<ID>  R19 (docs/SCIENCE.md): the same check on data where the claim is false (nulls) and where it is
#                   true (planted positives): results/calibration/<ID>.parquet.
#   fig_<ID>        the claim's jupytext percent-format notebook (workflow/notebooks/<figure>.py) run with
#                   `script`: it reads tidy tables and the record and draws; it decides nothing. Restyling a figure
#                   re-runs only its rule: no experiment and no verdict is recomputed.
# The rules over every claim (the verdict table, the calibration figure) are in verdicts.smk.


def string_params(params):
    """Params for `params:`, each string as a function: Snakemake would read a metric's "{key}" as a wildcard."""
    return {k: (lambda wildcards, v=v: v) if isinstance(v, str) else v for k, v in params.items()}


def claim_rules(cid, job, figure):
    """Define claim_<cid>, calibrate_<cid> and fig_<cid>. A factory, not a bare loop body, because Snakemake
    resolves a `script` path again when the job runs; inside a function it still sees this claim's id."""

    rule:
        name:
            f"claim_{cid}"
        input:
            **job["input"],
        output:
            claim=job["output"]["claim"],
        log:
            f"logs/claims/{cid}.log",
        benchmark:
            f"benchmarks/claims/{cid}.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        params:
            **string_params(job["params"]),
        script:
            "../scripts/claim.py"

    rule:
        name:
            f"calibrate_{cid}"
        input:
            **job["input"],
        output:
            f"results/calibration/{cid}.parquet",
        log:
            f"logs/calibration/{cid}.log",
        benchmark:
            f"benchmarks/calibration/{cid}.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=20,
        params:
            **string_params(job["params"]),
        script:
            "../scripts/calibrate.py"

    rule:
        name:
            f"fig_{cid}"
        input:
            **figure["input"],
        output:
            pdf=figure["output"]["pdf"],
            # the caption is an output of claims_table (under the config's workdir); the path is this file's
            png=report(
                figure["output"]["png"],
                caption=f"../../{config['workdir']}/results/report/{cid}.rst",
                category=f"Part {cid[0]}",
                labels={"claim": cid},
            ),
        log:
            f"logs/figures/{cid}.log",
        benchmark:
            f"benchmarks/figures/{cid}.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        params:
            **figure["params"],
        script:
            f"../notebooks/{CLAIMS[cid]}.py"

    workflow.get_rule(f"claim_{cid}").docstring = f"{cid}: {CLAIM_TABLE[cid]['statement']}"
    workflow.get_rule(f"calibrate_{cid}").docstring = (
        f"R19, {cid}: its check on nulls and planted positives, R18's rule on each sub-check's nulls."
    )
    workflow.get_rule(f"fig_{cid}").docstring = CLAIM_TABLE[cid]["doc"]


for claim_id in CLAIM_TABLE:
    claim_rules(claim_id, CLAIM_JOBS[claim_id], FIGURE_JOBS[claim_id])
