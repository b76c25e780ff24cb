# Part C: signal x headroom along the pretraining trajectory.
# One metrics job per checkpoint, one RL job per (checkpoint, seed), one lr-sweep job per learning rate (all
# checkpoints, first seed), all single-threaded so `--cores N` runs them side by side; one aggregation job.

TRAJ = config["trajectory"]
TRAJ_STEPS = config["pretrain"]["checkpoints"]


wildcard_constraints:
    lr=r"[0-9.eE+-]+",


rule checkpoint_metrics:
    """Exact pass@1 / pass@k, headroom H, signal S = |grad J|^2, mean p(1-p), |grad_x V| of one checkpoint (eval split)."""
    input:
        checkpoint="results/pretrain/step_{step}",
        eval="results/data/eval.parquet",
    output:
        "results/trajectory/metrics/step_{step}.parquet",
    params:
        trajectory=TRAJ,
        device=config["device"],
    log:
        "logs/trajectory/metrics/step_{step}.log",
    benchmark:
        "benchmarks/trajectory/metrics/step_{step}.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
        gpu=GPU,
    conda:
        ENV
    script:
        "../scripts/trajectory_metrics.py"


rule rl_run:
    """Critic-free RL (trajectory.rl) from one checkpoint with one seed: curve + exact eval pass@1 before/after."""
    input:
        checkpoint="results/pretrain/step_{step}",
        rl="results/data/rl.parquet",
        eval="results/data/eval.parquet",
    output:
        "results/trajectory/rl/step_{step}/seed_{seed}.parquet",
    params:
        rl=TRAJ["rl"],
        device=config["device"],
    log:
        "logs/trajectory/rl/step_{step}_seed_{seed}.log",
    benchmark:
        "benchmarks/trajectory/rl/step_{step}_seed_{seed}.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=20,
        gpu=GPU,
    conda:
        ENV
    script:
        "../scripts/trajectory_rl.py"


rule lr_sweep:
    """RL at one learning rate of trajectory.lr_sweep from every checkpoint (first seed): input to the lr rule."""
    input:
        checkpoints=expand("results/pretrain/step_{step}", step=TRAJ_STEPS),
        rl="results/data/rl.parquet",
        eval="results/data/eval.parquet",
    output:
        "results/trajectory/lr_sweep/lr_{lr}.parquet",
    params:
        rl=TRAJ["rl"],
        seed=TRAJ["rl"]["seeds"][0],
        steps=TRAJ_STEPS,
        device=config["device"],
    log:
        "logs/trajectory/lr_sweep/lr_{lr}.log",
    benchmark:
        "benchmarks/trajectory/lr_sweep/lr_{lr}.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=60,
        gpu=GPU,
    conda:
        ENV
    script:
        "../scripts/trajectory_lr_sweep.py"


rule trajectory_summary:
    """Tidy Part C tables: per checkpoint (metrics, real gain over seeds, G_pred LOO), predictor correlations with
    seed-bootstrap intervals, bootstrap peak frequencies, the lr sweep and its rule's verdict."""
    input:
        metrics=expand("results/trajectory/metrics/step_{step}.parquet", step=TRAJ_STEPS),
        rl=expand("results/trajectory/rl/step_{step}/seed_{seed}.parquet", step=TRAJ_STEPS, seed=TRAJ["rl"]["seeds"]),
        sweep=expand("results/trajectory/lr_sweep/lr_{lr}.parquet", lr=TRAJ["lr_sweep"]),
    output:
        checkpoints="results/trajectory/checkpoints.parquet",
        gains="results/trajectory/gains.parquet",
        curves="results/trajectory/curves.parquet",
        predictors="results/trajectory/predictors.parquet",
        peak_bootstrap="results/trajectory/peak_bootstrap.parquet",
        sweep="results/trajectory/lr_sweep.parquet",
        sweep_summary="results/trajectory/lr_sweep_summary.parquet",
        sweep_md="results/trajectory/lr_sweep.md",
    params:
        trajectory=TRAJ,
    log:
        "logs/trajectory/summary.log",
    benchmark:
        "benchmarks/trajectory/summary.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/trajectory_summary.py"
