# One figure rule per claim: a jupytext percent-format notebook (workflow/notebooks/) run with `script:`.
# It reads tidy tables, checks the claim (library code), draws the figure and writes the claim record.
# Restyling a figure re-runs only its rule; no experiment is recomputed.

# ------------------------------------------------------------------ Part A


rule fig_A1:
    """A1: SF vs PD relative error and per-rollout variance vs N; claim record."""
    input:
        table="results/control/a1_sf_pd.parquet",
    output:
        pdf="figures/A1_sf_vs_pd.pdf",
        png=report("figures/A1_sf_vs_pd.png", caption="../../results/report/A1.rst", category="Part A",
                   labels={"claim": "A1"}),
        claim="results/claims/A1.json",
    params:
        thresholds=config["claims"]["A1"],
        control=config["control"],
    log:
        "logs/figures/A1.log",
    benchmark:
        "benchmarks/figures/A1.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../notebooks/A1_sf_vs_pd.py"


rule fig_A2:
    """A2: mean costates vs value gradients (LQ exact, pendulum smoothing reference); claim record."""
    input:
        lq="results/control/a2_lq_costates.parquet",
        pendulum="results/control/a2_pendulum_costates.parquet",
    output:
        pdf="figures/A2_costates.pdf",
        png=report("figures/A2_costates.png", caption="../../results/report/A2.rst", category="Part A",
                   labels={"claim": "A2"}),
        claim="results/claims/A2.json",
    params:
        thresholds=config["claims"]["A2"],
        control=config["control"],
    log:
        "logs/figures/A2.log",
    benchmark:
        "benchmarks/figures/A2.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../notebooks/A2_costates.py"


rule fig_A3:
    """A3: bias of detached vs reparameterized costates vs the noise state-dependence alpha; claim record."""
    input:
        table="results/control/a3_additive_noise.parquet",
    output:
        pdf="figures/A3_additive_noise.pdf",
        png=report("figures/A3_additive_noise.png", caption="../../results/report/A3.rst", category="Part A",
                   labels={"claim": "A3"}),
        claim="results/claims/A3.json",
    params:
        thresholds=config["claims"]["A3"],
        control=config["control"],
    log:
        "logs/figures/A3.log",
    benchmark:
        "benchmarks/figures/A3.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../notebooks/A3_additive_noise.py"


# ------------------------------------------------------------------ Part B


rule fig_B1:
    """B1: error of E[lambda_PD] (exact bias) and of lambda_SF (budget N) vs policy entropy; claim record."""
    input:
        summaries=expand(
            "results/costates/step_{step}_summary.parquet",
            step=config["costates"]["checkpoints"],
        ),
        prompts=expand(
            "results/costates/step_{step}_prompts.parquet",
            step=config["costates"]["checkpoints"],
        ),
    output:
        pdf="figures/B1_entropy.pdf",
        png=report("figures/B1_entropy.png", caption="../../results/report/B1.rst", category="Part B",
                   labels={"claim": "B1"}),
        claim="results/claims/B1.json",
    params:
        thresholds=config["claims"]["B1"],
        costates=config["costates"],
    log:
        "logs/figures/B1.log",
    benchmark:
        "benchmarks/figures/B1.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../notebooks/B1_entropy.py"


rule fig_B2:
    """B2: error of E[lambda_PD] vs the sampling gap with a least-squares line through the origin; claim record."""
    input:
        summaries=expand(
            "results/costates/step_{step}_summary.parquet",
            step=config["costates"]["checkpoints"],
        ),
    output:
        pdf="figures/B2_sampling_gap.pdf",
        png=report("figures/B2_sampling_gap.png", caption="../../results/report/B2.rst", category="Part B",
                   labels={"claim": "B2"}),
        claim="results/claims/B2.json",
    params:
        thresholds=config["claims"]["B2"],
        costates=config["costates"],
    log:
        "logs/figures/B2.log",
    benchmark:
        "benchmarks/figures/B2.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../notebooks/B2_sampling_gap.py"


rule fig_B3:
    """B3: cosine of REINFORCE / RLOO / GRPO directions with the exact grad_theta J vs group size; claim record."""
    input:
        table="results/costates/update_alignment.parquet",
    output:
        pdf="figures/B3_update_alignment.pdf",
        png=report("figures/B3_update_alignment.png", caption="../../results/report/B3.rst", category="Part B",
                   labels={"claim": "B3"}),
        claim="results/claims/B3.json",
    params:
        thresholds=config["claims"]["B3"],
        costates=config["costates"],
    log:
        "logs/figures/B3.log",
    benchmark:
        "benchmarks/figures/B3.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../notebooks/B3_update_alignment.py"


# ------------------------------------------------------------------ Part C


rule fig_C1:
    """C1: pass@k, headroom, signal, real and predicted RL gain along the pretraining trajectory; claim record."""
    input:
        checkpoints="results/trajectory/checkpoints.parquet",
        gains="results/trajectory/gains.parquet",
        curves="results/trajectory/curves.parquet",
        peak_bootstrap="results/trajectory/peak_bootstrap.parquet",
    output:
        pdf="figures/C1_trajectory.pdf",
        png=report("figures/C1_trajectory.png", caption="../../results/report/C1.rst", category="Part C",
                   labels={"claim": "C1"}),
        claim="results/claims/C1.json",
    params:
        trajectory=config["trajectory"],
        data=config["data"],
    log:
        "logs/figures/C1.log",
    benchmark:
        "benchmarks/figures/C1.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../notebooks/C1_trajectory.py"


rule fig_C2:
    """C2: real vs leave-one-out predicted RL gain, and Spearman of each predictor with bootstrap intervals; claim."""
    input:
        checkpoints="results/trajectory/checkpoints.parquet",
        gains="results/trajectory/gains.parquet",
        predictors="results/trajectory/predictors.parquet",
        sweep_summary="results/trajectory/lr_sweep_summary.parquet",
    output:
        pdf="figures/C2_real_vs_predicted.pdf",
        png=report("figures/C2_real_vs_predicted.png", caption="../../results/report/C2.rst", category="Part C",
                   labels={"claim": "C2"}),
        claim="results/claims/C2.json",
    params:
        thresholds=config["claims"]["C2"],
        trajectory=config["trajectory"],
    log:
        "logs/figures/C2.log",
    benchmark:
        "benchmarks/figures/C2.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../notebooks/C2_real_vs_predicted.py"
