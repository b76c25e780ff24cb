rule data:
    """The addition task: pretraining corpus (rho corrupted), RL and eval prompt splits, char tokenizer."""
    output:
        pretrain="results/data/pretrain.parquet",
        rl="results/data/rl.parquet",
        eval="results/data/eval.parquet",
        tokenizer=directory("results/data/tokenizer"),
    params:
        data=config["data"],
    log:
        "logs/data.log",
    benchmark:
        "benchmarks/data.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/data.py"
