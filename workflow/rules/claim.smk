# claim_<ID>, one per claim, generated from the claim table (workflow/claims.yaml, read in common.smk). Each runs
# the claim's check on its tables, with its thresholds (claims.<ID>) and the bootstrap settings, and writes the
# record results/claims/<ID>.json. No figure here: the figure rule fig_<ID> (figures.smk) reads the record.


def claim_rule(cid, job):
    """Define claim_<cid> (a factory, like figure_rule in figures.smk, so each rule keeps its own claim id)."""

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
            # a string param as a function: Snakemake would read the metric's "{key}" as a wildcard
            **{k: (lambda wildcards, v=v: v) if isinstance(v, str) else v for k, v in job["params"].items()},
        script:
            "../scripts/claim.py"

    workflow.get_rule(f"claim_{cid}").docstring = f"{cid}: {CLAIM_TABLE[cid]['statement']}"


for claim_id, resolved in CLAIM_JOBS.items():
    claim_rule(claim_id, resolved)
