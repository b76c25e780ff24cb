# The rules over every claim: the verdict table over every claim record (claim_<ID>, claim.smk) and R19's
# calibration figure over every claim's calibration table (calibrate_<ID>, claim.smk).


rule claims_table:
    """Aggregate every claim record into the verdict table, every member's pass bits (figures/claims_members.csv), the
    report captions and the resolved config that made them (figures/claims_config.yaml)."""
    input:
        records=expand("results/claims/{claim}.json", claim=CLAIMS),
        # repository files, not outputs: absolute, since outputs are relative to the config's workdir
        descriptions=expand(f"{workflow.basedir}/workflow/report/{{claim}}.rst", claim=CLAIMS),
    output:
        md=report("figures/claims.md", category="Claims", caption="../report/claims.rst"),
        csv=report("figures/claims.csv", category="Claims", caption="../report/claims.rst"),
        # every member's pass bits: what R22's prediction of a fresh ensemble needs (vgh.fresh_check, R23)
        members="figures/claims_members.csv",
        captions=expand("results/report/{claim}.rst", claim=CLAIMS),
        # the resolved config that made this table, beside it: the fresh-machine check compares like with like
        config=report("figures/claims_config.yaml", category="Configuration", caption="../report/config.rst"),
    log:
        "logs/claims_table.log",
    benchmark:
        "benchmarks/claims_table.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        figures=CLAIMS,
        config=config,
    script:
        "../scripts/claims_table.py"


rule calibration:
    """Every claim's calibration in one figure (rate of PASS / INCONCLUSIVE / FAIL per null and positive) and one
    Markdown table, with each check's worst wrong-verdict rate on its nulls."""
    input:
        expand("results/calibration/{claim}.parquet", claim=CLAIMS),
    output:
        png=report("figures/calibration.png", category="Calibration", caption="../report/calibration.rst"),
        pdf="figures/calibration.pdf",
        md="figures/calibration.md",
    log:
        "logs/calibration/figure.log",
    benchmark:
        "benchmarks/calibration/figure.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/calibration_figure.py"
