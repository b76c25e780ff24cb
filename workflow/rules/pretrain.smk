# The pretraining trajectories: one per ensemble member (`pretrain.seeds`), checkpoints
# results/pretrain/member_<k>/step_<s> (Hugging Face folders, model + tokenizer) that Parts B and C analyse. Either
# pretrained here from the config, one job per group of members (`pretrain.members_per_job`), or imported from
# `external.checkpoints` (one member, 0).
EXTERNAL = {e["step"]: e["path"] for e in config["external"]["checkpoints"]}


# pretrain_group_<g> per group (none with external checkpoints): each one's members are fixed here, in the loop
for g, members in [] if EXTERNAL else enumerate(GROUPS):

    rule:
        name:
            f"pretrain_group_{g}"
        input:
            pretrain=[f"results/data/member_{m}/pretrain.parquet" for m in members],
            eval=[f"results/data/member_{m}/eval.parquet" for m in members],
            tokenizer="results/data/tokenizer",
        output:
            checkpoints=[
                directory(f"results/pretrain/member_{m}/step_{s}")
                for m in members
                for s in config["pretrain"]["checkpoints"]
            ],
            log_tables=[f"results/pretrain/member_{m}/train_log.parquet" for m in members],
        log:
            f"logs/pretrain/{group_label(members)}.log",
        benchmark:
            f"benchmarks/pretrain/{group_label(members)}.tsv"
        priority: 10  # the critical path (pretraining, then Part C): first whenever a core is free
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000 + 200 * len(members),
            runtime=60,
            gpu=GPU,
        params:
            model=config["model"],
            # every key but `seeds` and the grouping: adding a member in a new group does not rerun the others
            pretrain={k: v for k, v in config["pretrain"].items() if k not in ("seeds", "members_per_job")},
            device=config["device"],
        script:
            "../scripts/pretrain.py"

    workflow.get_rule(f"pretrain_group_{g}").docstring = (
        f"Pretrain ensemble members {members} together (member k: seed k, its initialisation and data order) "
        "each on its own corpus (R20); save each member's trajectory of checkpoints (HF format) and training log. "
        "Rolling resume state lives in resume/pretrain/<group> (not an output): an interrupted run resumes."
    )


if EXTERNAL:
    from vgh.lm.external import check_external_checkpoints

    # Each folder is checked (loaded once) before any job; the sha256 of its files is a param of its import, so
    # overwritten weights rerun the import and everything downstream.
    try:
        EXTERNAL_SHA256 = check_external_checkpoints(config)
    except ConfigError as err:
        raise WorkflowError(f"Invalid config: {err}") from None

    rule import_checkpoint:
        """Copy one user-supplied causal-LM checkpoint (and its tokenizer) into the trajectory layout, with a
        manifest. Its content (`sha256`) decides a rerun: changed weights rerun it and everything downstream."""
        output:
            directory("results/pretrain/member_0/step_{step}"),
        log:
            "logs/import_checkpoint/step_{step}.log",
        benchmark:
            "benchmarks/import_checkpoint/step_{step}.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            source=lambda wc: EXTERNAL[int(wc.step)],
            sha256=lambda wc: EXTERNAL_SHA256[int(wc.step)],
            tokenizer=config["external"]["tokenizer"],
        script:
            "../scripts/import_checkpoint.py"
