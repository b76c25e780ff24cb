# R19 (docs/SCIENCE.md): every claim's check run on data where the claim is false (nulls) and where it is true
# (planted positives), with the same code that decides the claim: calibrate_<ID>, one per claim, reads the claim's
# tables (as its claim rule does) and writes results/calibration/<ID>.parquet; `calibration` draws every table into
# figures/calibration.png|pdf and writes figures/calibration.md.


for cid, job in CLAIM_JOBS.items():  # calibrate_<cid>; lambdas take their values as defaults, not from the loop

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
            **{k: (lambda wildcards, v=v: v) if isinstance(v, str) else v for k, v in job["params"].items()},
        script:
            "../scripts/calibrate.py"

    workflow.get_rule(f"calibrate_{cid}").docstring = (
        f"R19, {cid}: its check on nulls and planted positives, R18's rule on each sub-check's nulls."
    )


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
