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
    """Tidy Part C tables over the ensemble (docs/SCIENCE.md R0, R6-R9): per (member, checkpoint) metrics, real gain
    over seeds and G_pred LOO; per member predictor correlations and real / predicted peaks; the ensemble table
    (each predictor's Spearman and Delta, nested member/seed bootstrap intervals); the lr rule per member."""
    input:
        metrics=expand("results/trajectory/member_{member}/metrics.parquet", member=config["pretrain"]["seeds"]),
        rl=expand("results/trajectory/member_{member}/rl.parquet", member=config["pretrain"]["seeds"]),
        sweep=expand("results/trajectory/member_{member}/lr_sweep.parquet", member=config["pretrain"]["seeds"]),
    output:
        checkpoints="results/trajectory/checkpoints.parquet",
        gains="results/trajectory/gains.parquet",
        curves="results/trajectory/curves.parquet",
        member_predictors="results/trajectory/member_predictors.parquet",
        ensemble="results/trajectory/ensemble.parquet",
        peaks="results/trajectory/peaks.parquet",
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
