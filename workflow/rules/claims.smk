rule claims_table:
    """Aggregate every claim record into the verdict table (figures/claims.md and .csv)."""
    input:
        expand("results/claims/{claim}.json", claim=CLAIMS),
    output:
        md="figures/claims.md",
        csv="figures/claims.csv",
    params:
        figures=CLAIMS,
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
