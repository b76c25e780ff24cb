# Part C: signal x headroom along the pretraining trajectory of every ensemble member.
# One job per group of members (`pretrain.members_per_job`) does all of Part C's work on their trajectories (per
# checkpoint: metrics, RL with every seed, the lr sweep's runs) in one process, which pays the torch/transformers
# import once; the jobs are single-threaded so `--cores N` runs N groups side by side. One aggregation job over the
# members. Each rule takes only the keys of `trajectory` it reads, so a change reruns only the jobs it affects.

TRAJ = config["trajectory"]
TRAJ_STEPS = config["pretrain"]["checkpoints"]


for g, members in enumerate(GROUPS):  # trajectory_group_<g>: its members' outputs are fixed here, in the loop

    rule:
        name:
            f"trajectory_group_{g}"
        input:
            checkpoints=[f"results/pretrain/member_{m}/step_{s}" for m in members for s in TRAJ_STEPS],
            rl=[f"results/data/member_{m}/rl.parquet" for m in members],
            eval=[f"results/data/member_{m}/eval.parquet" for m in members],
        output:
            metrics=[f"results/trajectory/member_{m}/metrics.parquet" for m in members],
            rl=[f"results/trajectory/member_{m}/rl.parquet" for m in members],
            sweep=[f"results/trajectory/member_{m}/lr_sweep.parquet" for m in members],
        log:
            f"logs/trajectory/{group_label(members)}.log",
        benchmark:
            f"benchmarks/trajectory/{group_label(members)}.tsv"
        priority: 10  # the critical path (pretraining, then Part C): first whenever a core is free
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000 + 200 * len(members),
            runtime=120 * len(members),
            gpu=GPU,
        params:
            trajectory={k: TRAJ[k] for k in ("rl", "pass_k", "headroom_k", "lr_sweep")},
            steps=TRAJ_STEPS,
            device=config["device"],
        script:
            "../scripts/trajectory_group.py"

    workflow.get_rule(f"trajectory_group_{g}").docstring = (
        f"Part C, members {members} in one process, at every checkpoint of their trajectories: exact pass@1 / "
        "pass@k, headroom H, the signal, mean p(1-p), |grad_x V| (eval split); critic-free RL (trajectory.rl) with "
        "every seed, each a curve + exact eval pass@1 before/after; the lr sweep's runs (each other lr one run on "
        "its own generator; the configured lr's runs are the RL runs, R11). The RL runs of every member at a "
        "checkpoint are one stacked model."
    )


rule trajectory_summary:
    """Tidy Part C tables over the ensemble (docs/SCIENCE.md R0, R6-R9): per (member, checkpoint) metrics, real gain
    over seeds and G_pred LOO; per member predictor correlations and real / predicted peaks; the ensemble table
    (each predictor's Spearman and Delta, nested member/seed bootstrap intervals); the lr rule per member."""
    input:
        metrics=expand("results/trajectory/member_{member}/metrics.parquet", member=MEMBERS),
        rl=expand("results/trajectory/member_{member}/rl.parquet", member=MEMBERS),
        sweep=expand("results/trajectory/member_{member}/lr_sweep.parquet", member=MEMBERS),
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
    log:
        "logs/trajectory/summary.log",
    benchmark:
        "benchmarks/trajectory/summary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        trajectory={"rl": TRAJ["rl"], "lr_rule_alpha": TRAJ["lr_rule_alpha"]},
        bootstrap=config["bootstrap"],
    script:
        "../scripts/trajectory_summary.py"
