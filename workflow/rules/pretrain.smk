# The pretraining trajectories: one per ensemble member (`pretrain.seeds`), checkpoints
# results/pretrain/member_<k>/step_<s> (Hugging Face folders, model + tokenizer) that Parts B and C analyse. Either
# pretrained here from the config, one job per member, or imported from `external.checkpoints` (one member, 0).
EXTERNAL = {e["step"]: e["path"] for e in config["external"]["checkpoints"]}


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

else:

    rule pretrain:
        """Pretrain one ensemble member (seed = k: its initialisation and data order) on the shared corpus; save
        its trajectory's checkpoints (HF format) and a training log.

        Rolling resume state lives in resume/pretrain/member_<k> (not an output): an interrupted run resumes from it.
        """
        input:
            pretrain="results/data/pretrain.parquet",
            eval="results/data/eval.parquet",
            tokenizer="results/data/tokenizer",
        output:
            checkpoints=[
                directory(f"results/pretrain/member_{{member}}/step_{s}") for s in config["pretrain"]["checkpoints"]
            ],
            log_table="results/pretrain/member_{member}/train_log.parquet",
        log:
            "logs/pretrain/member_{member}.log",
        benchmark:
            "benchmarks/pretrain/member_{member}.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
            gpu=GPU,
        params:
            model=config["model"],
            # every key but `seeds`: adding a member does not rerun the others
            pretrain={k: v for k, v in config["pretrain"].items() if k != "seeds"},
            device=config["device"],
            seed=lambda wc: int(wc.member),
            resume_dir="resume/pretrain/member_{member}",
        script:
            "../scripts/pretrain.py"
