# Part B: transformer costates against exact references by enumerating all 10^L completions (float64).
# Per ensemble member: one job for its measured checkpoints (each one's whole temperature sweep: the sweep costs a
# few seconds, a job's start ~5 s) and one for the update alignment (B3, config section `alignment`); all
# single-threaded, so `--cores N` runs N side by side. Each rule takes only the config keys it reads, so a change
# reruns only the jobs it affects.


rule costates:
    """B1/B2, one member: exact g* = grad_x V, exact E[lambda_PD], lambda_SF at budget N, entropy, gaps, at each
    checkpoint of costates.checkpoints.

    Tables: one row per (checkpoint, temperature, prompt) with its carry flag, and one aggregate row per
    (checkpoint, temperature); both with the member.
    """
    input:
        checkpoints=expand("results/pretrain/member_{{member}}/step_{step}", step=config["costates"]["checkpoints"]),
        eval="results/data/eval.parquet",
    output:
        prompts="results/costates/member_{member}/prompts.parquet",
        summary="results/costates/member_{member}/summary.parquet",
    log:
        "logs/costates/member_{member}.log",
    benchmark:
        "benchmarks/costates/member_{member}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
        gpu=GPU,
    params:
        costates=config["costates"],  # every key of the section is B1/B2's
        steps=config["costates"]["checkpoints"],
        device=config["device"],
    script:
        "../scripts/costates.py"


rule update_alignment:
    """B3, one member: cosine of REINFORCE / RLOO / GRPO first-step directions with the exact grad_theta J vs
    group size G (TRL's num_generations, and the permuted-reward null)."""
    input:
        checkpoint=f"results/pretrain/member_{{member}}/step_{config['alignment']['checkpoint']}",
        eval="results/data/eval.parquet",
    output:
        "results/costates/member_{member}/update_alignment.parquet",
    log:
        "logs/update_alignment/member_{member}.log",
    benchmark:
        "benchmarks/update_alignment/member_{member}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
        gpu=GPU,
    params:
        alignment=config["alignment"],
        seed=config["costates"]["seed"],
        reward=config["costates"]["reward"],
        n_prompts=config["costates"]["n_prompts"],
        max_batch_rows=config["costates"]["max_batch_rows"],
        device=config["device"],
    script:
        "../scripts/costates_alignment.py"
