# One claim rule per claim, claim_<ID>, generated from the claim table (workflow/claims.yaml, read in common.smk):
# the claim's check on its tables, with its thresholds (claims.<ID>) and the bootstrap settings, writes the record
# results/claims/<ID>.json. Then the verdict table over every record.


def claim_rule(cid, job):
    """Define claim_<cid> (a factory, like figure_rule in figures.smk, so each rule keeps its own claim id)."""

    rule:
        name:
            f"claim_{cid}"
        input:
            **job["input"],
        output:
            claim=job["output"]["claim"],
        params:
            # a string param as a function: Snakemake would read the metric's "{key}" as a wildcard
            **{k: (lambda wildcards, v=v: v) if isinstance(v, str) else v for k, v in job["params"].items()},
        log:
            f"logs/claims/{cid}.log",
        benchmark:
            f"benchmarks/claims/{cid}.tsv"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        conda:
            ENV
        script:
            "../scripts/claim.py"

    workflow.get_rule(f"claim_{cid}").docstring = f"{cid}: {CLAIM_TABLE[cid]['statement']}"


for claim_id, resolved in CLAIM_JOBS.items():
    claim_rule(claim_id, resolved)


rule claims_table:
    """Aggregate every claim record into the verdict table, the report captions and the resolved config."""
    input:
        records=expand("results/claims/{claim}.json", claim=CLAIMS),
        descriptions=expand("workflow/report/{claim}.rst", claim=CLAIMS),
    output:
        md=report("figures/claims.md", category="Claims", caption="../report/claims.rst"),
        csv=report("figures/claims.csv", category="Claims", caption="../report/claims.rst"),
        captions=expand("results/report/{claim}.rst", claim=CLAIMS),
        config=report("results/report/config.yaml", category="Configuration",
                      caption="../report/config.rst"),
    params:
        figures=CLAIMS,
        config=config,
    log:
        "logs/claims_table.log",
    benchmark:
        "benchmarks/claims_table.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/claims_table.py"
