# Part A: toy continuous control with exact references (independent of the language-model branch).
# Four single-threaded experiment jobs, so `--cores 2` runs two side by side; each writes one tidy table. Each seed of
# `control.seeds` is an independent replicate with its own system from the config's class (R20).


rule control_a1:
    """A1: SF (leave-one-out baseline) and PD estimates of the exact LQ policy gradient vs the rollout count N."""
    output:
        "results/control/a1_sf_pd.parquet",
    log:
        "logs/control/a1.log",
    benchmark:
        "benchmarks/control/a1.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        lq=config["control"]["lq"],
        max_alpha=max(config["control"]["a3"]["alphas"]),  # the class of systems (R20): MS-stable up to it
        seeds=config["control"]["seeds"],
        n_rollouts=config["control"]["a1"]["n_rollouts"],
    script:
        "../scripts/control_a1.py"


rule control_a2_lq:
    """A2 (LQ): mean costate over M continuations from probe states vs the exact value gradient -2 P_t x."""
    output:
        "results/control/a2_lq_costates.parquet",
    log:
        "logs/control/a2_lq.log",
    benchmark:
        "benchmarks/control/a2_lq.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        lq=config["control"]["lq"],
        max_alpha=max(config["control"]["a3"]["alphas"]),
        seeds=config["control"]["seeds"],
        n_probes=config["control"]["a2"]["n_probes"],
        continuations=config["control"]["a2"]["continuations"],
    script:
        "../scripts/control_a2_lq.py"


rule control_a2_pendulum:
    """A2 (pendulum): mean costate vs an antithetic Gaussian-smoothing reference at several scales."""
    output:
        "results/control/a2_pendulum_costates.parquet",
    log:
        "logs/control/a2_pendulum.log",
    benchmark:
        "benchmarks/control/a2_pendulum.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        pendulum=config["control"]["pendulum"],
        seeds=config["control"]["seeds"],
        continuations=config["control"]["a2"]["continuations"],
    script:
        "../scripts/control_a2_pendulum.py"


rule control_a3:
    """A3: state-dependent noise scale; detached vs reparameterized costates vs the exact value gradient."""
    output:
        "results/control/a3_additive_noise.parquet",
    log:
        "logs/control/a3.log",
    benchmark:
        "benchmarks/control/a3.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        lq=config["control"]["lq"],
        seeds=config["control"]["seeds"],
        alphas=config["control"]["a3"]["alphas"],
        n_probes=config["control"]["a3"]["n_probes"],
        continuations=config["control"]["a3"]["continuations"],
    script:
        "../scripts/control_a3.py"
