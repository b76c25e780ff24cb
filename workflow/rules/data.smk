rule data:
    """The addition task: pretraining corpus (rho corrupted), RL and eval prompt splits, char tokenizer."""
    output:
        pretrain="results/data/pretrain.parquet",
        rl="results/data/rl.parquet",
        eval="results/data/eval.parquet",
        tokenizer=directory("results/data/tokenizer"),
    log:
        "logs/data.log",
    benchmark:
        "benchmarks/data.tsv"
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
