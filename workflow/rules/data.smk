# The addition task (docs/SCIENCE.md, C.1, R1, R20): the character tokenizer, shared by every member, and each
# member's own data draw (its pretraining corpus, RL and eval prompt splits), one job per member.


rule tokenizer:
    """The character-level tokenizer of the task (shared on purpose: the members' vocabulary)."""
    output:
        directory("results/data/tokenizer"),
    log:
        "logs/data/tokenizer.log",
    benchmark:
        "benchmarks/data/tokenizer.tsv"
    priority: 10  # the start of the critical path
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/tokenizer.py"


rule data:
    """Member {wildcards.member}'s draw of the task (R20): pretraining corpus (rho corrupted), RL and eval prompt
    splits, disjoint as unordered pairs (R1), from the member's own stream."""
    output:
        pretrain="results/data/member_{member}/pretrain.parquet",
        rl="results/data/member_{member}/rl.parquet",
        eval="results/data/member_{member}/eval.parquet",
    log:
        "logs/data/member_{member}.log",
    benchmark:
        "benchmarks/data/member_{member}.tsv"
    priority: 10  # the start of the critical path
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        data=config["data"],
    script:
        "../scripts/data.py"
