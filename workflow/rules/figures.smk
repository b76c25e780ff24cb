# One figure rule per claim, fig_<ID>, generated from the claim table (workflow/claims.yaml, read in
# common.smk). Each runs a jupytext percent-format notebook (workflow/notebooks/<figure>.py) with `script`.
# It reads tidy tables and the claim record of claim_<ID> (claims.smk) and draws; it decides nothing.
# Restyling a figure re-runs only its rule: no experiment and no verdict is recomputed.


def figure_rule(cid, job):
    """Define fig_<cid>. A factory, not a bare loop body, because Snakemake resolves the `script` path again
    when the job runs; inside a function it still sees this claim's id, not the loop's last."""

    rule:
        name:
            f"fig_{cid}"
        input:
            **job["input"],
        output:
            pdf=job["output"]["pdf"],
            # the caption is an output of claims_table (under the config's workdir); the path is this file's
            png=report(
                job["output"]["png"],
                caption=f"../../{config['workdir']}/results/report/{cid}.rst",
                category=f"Part {cid[0]}",
                labels={"claim": cid},
            ),
        log:
            f"logs/figures/{cid}.log",
        benchmark:
            f"benchmarks/figures/{cid}.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        params:
            **job["params"],
        script:
            f"../notebooks/{CLAIMS[cid]}.py"

    workflow.get_rule(f"fig_{cid}").docstring = CLAIM_TABLE[cid]["doc"]


for claim_id, resolved in FIGURE_JOBS.items():
    figure_rule(claim_id, resolved)
