# Part B: transformer costates against exact references by enumerating all 10^L completions (float64).
# One job per checkpoint (its whole temperature sweep: the sweep costs a few seconds, a job's start ~5 s),
# plus one job for the update alignment (B3); all single-threaded, so `--cores 2` runs two side by side.


rule costates:
    """B1/B2, one checkpoint: exact g* = grad_x V, exact E[lambda_PD], lambda_SF at budget N, entropy, gaps.

    Tables: one row per (temperature, prompt) with its carry flag, and one aggregate row per temperature.
    """
    input:
        checkpoint="results/pretrain/step_{step}",
        eval="results/data/eval.parquet",
    output:
        prompts="results/costates/step_{step}_prompts.parquet",
        summary="results/costates/step_{step}_summary.parquet",
    params:
        costates=config["costates"],
        device=config["device"],
    log:
        "logs/costates/step_{step}.log",
    benchmark:
        "benchmarks/costates/step_{step}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
        gpu=GPU,
    conda:
        ENV
    script:
        "../scripts/costates.py"


rule update_alignment:
    """B3: cosine of REINFORCE / RLOO / GRPO first-step directions with the exact grad_theta J vs group size G."""
    input:
        checkpoint=f"results/pretrain/step_{config['costates']['alignment_checkpoint']}",
        eval="results/data/eval.parquet",
    output:
        "results/costates/update_alignment.parquet",
    params:
        costates=config["costates"],
        device=config["device"],
    log:
        "logs/costates/update_alignment.log",
    benchmark:
        "benchmarks/costates/update_alignment.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
        gpu=GPU,
    conda:
        ENV
    script:
        "../scripts/costates_alignment.py"
