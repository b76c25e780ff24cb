# Part B: transformer costates against exact references by enumerating all 10^L completions (float64).
# Per group of ensemble members (`pretrain.members_per_job`): one job for their measured checkpoints (each one's
# whole temperature sweep) and one for the update alignment (B3, config section `alignment`); all single-threaded, so
# `--cores N` runs N side by side. Each member's numbers are its own (its own prompts and streams, R20), whatever its
# group. Each rule
# takes only the config keys it reads, so a change reruns only the jobs it affects.


def costates_rules(g, members):
    """Define costates_group_<g> and update_alignment_group_<g> (a factory, so each keeps its own members)."""

    rule:
        name:
            f"costates_group_{g}"
        input:
            checkpoints=[
                f"results/pretrain/member_{m}/step_{s}" for m in members for s in config["costates"]["checkpoints"]
            ],
            eval=[f"results/data/member_{m}/eval.parquet" for m in members],
        output:
            prompts=[f"results/costates/member_{m}/prompts.parquet" for m in members],
            summary=[f"results/costates/member_{m}/summary.parquet" for m in members],
        log:
            f"logs/costates/{group_label(members)}.log",
        benchmark:
            f"benchmarks/costates/{group_label(members)}.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30 * len(members),
            gpu=GPU,
        params:
            costates=config["costates"],  # every key of the section is B1/B2's
            steps=config["costates"]["checkpoints"],
            device=config["device"],
        script:
            "../scripts/costates.py"

    workflow.get_rule(f"costates_group_{g}").docstring = (
        f"B1/B2, members {members}: exact g* = grad_x V, exact E[lambda_PD], lambda_SF at budget N, entropy, gaps, "
        "at each checkpoint of costates.checkpoints. Per member: one row per (checkpoint, temperature, prompt) with "
        "its carry flag, and one aggregate row per (checkpoint, temperature)."
    )

    rule:
        name:
            f"update_alignment_group_{g}"
        input:
            checkpoints=[f"results/pretrain/member_{m}/step_{config['alignment']['checkpoint']}" for m in members],
            eval=[f"results/data/member_{m}/eval.parquet" for m in members],
        output:
            [f"results/costates/member_{m}/update_alignment.parquet" for m in members],
        log:
            f"logs/update_alignment/{group_label(members)}.log",
        benchmark:
            f"benchmarks/update_alignment/{group_label(members)}.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=20 * len(members),
            gpu=GPU,
        params:
            alignment=config["alignment"],
            algo=config["trajectory"]["rl"]["algo"],
            n_bootstrap=config["bootstrap"]["n_resamples"],
            reward=config["costates"]["reward"],
            n_prompts=config["costates"]["n_prompts"],
            max_batch_rows=config["costates"]["max_batch_rows"],
            device=config["device"],
        script:
            "../scripts/costates_alignment.py"

    workflow.get_rule(f"update_alignment_group_{g}").docstring = (
        f"B3, members {members}: cosine of REINFORCE / RLOO / GRPO first-step directions with the exact "
        "grad_theta J vs group size G (TRL's num_generations), exact and sampled, and the permuted-reward null of the "
        "algorithm Part C runs."
    )


for group_index, group_members in enumerate(GROUPS):
    costates_rules(group_index, group_members)
