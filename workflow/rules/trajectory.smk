# Part C: signal x headroom along the pretraining trajectory.
# One job per checkpoint does all of Part C's work on it (metrics, RL with every seed, the lr sweep's runs) in one
# process, which pays the torch/transformers import once; the jobs are single-threaded so `--cores N` runs N
# checkpoints side by side. One aggregation job.

TRAJ = config["trajectory"]
TRAJ_STEPS = config["pretrain"]["checkpoints"]


rule trajectory_checkpoint:
    """Part C, one checkpoint in one process: exact pass@1 / pass@k, headroom H, signal S = |grad J|^2, mean p(1-p),
    |grad_x V| (eval split); critic-free RL (trajectory.rl) with every seed, each a curve + exact eval pass@1
    before/after; the lr sweep's runs (first seed; the configured lr's run is that seed's RL run)."""
    input:
        checkpoint="results/pretrain/step_{step}",
        rl="results/data/rl.parquet",
        eval="results/data/eval.parquet",
    output:
        metrics="results/trajectory/metrics/step_{step}.parquet",
        rl="results/trajectory/rl/step_{step}.parquet",
        sweep="results/trajectory/lr_sweep/step_{step}.parquet",
    params:
        trajectory=TRAJ,
        device=config["device"],
    log:
        "logs/trajectory/step_{step}.log",
    benchmark:
        "benchmarks/trajectory/step_{step}.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=60,
        gpu=GPU,
    conda:
        ENV
    script:
        "../scripts/trajectory_checkpoint.py"


rule trajectory_summary:
    """Tidy Part C tables: per checkpoint (metrics, real gain over seeds, G_pred LOO), predictor correlations with
    seed-bootstrap intervals, bootstrap peak frequencies, the lr sweep and its rule's verdict."""
    input:
        metrics=expand("results/trajectory/metrics/step_{step}.parquet", step=TRAJ_STEPS),
        rl=expand("results/trajectory/rl/step_{step}.parquet", step=TRAJ_STEPS),
        sweep=expand("results/trajectory/lr_sweep/step_{step}.parquet", step=TRAJ_STEPS),
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
