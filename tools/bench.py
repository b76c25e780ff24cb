"""Workflow benchmark: run a config with --cores 1 and --cores 2 in temporary copies and print a table.

    python tools/bench.py --configfile config/smoke.yaml [--cores 1 2] [--out docs/benchmarks_smoke.md] [--keep DIR]

Reports per-rule wall time and max RSS (from the rules' `benchmark:` files), total wall per core count,
the parallel speedup, the scheduling overhead wall / (sum of job wall / cores), the no-op dry-run time, the
time to build the HTML report and the time to rerun one restyled figure. It never touches the repo's
results/ or figures/. A config's outputs (its `benchmark:` files among them) lie under its `workdir`.
"""
from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from vgh.config import load_config  # noqa: E402
from vgh.io import copy_workflow  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def timed(wf: Path, *args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([SNAKEMAKE, *args], cwd=wf, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t0


def outputs(wf: Path, configfile: str) -> Path:
    """Where a run of `configfile` in the workflow copy `wf` writes: the config's `workdir`, under the copy."""
    config = load_config(wf / "config/config.yaml", wf / "workflow/schemas/config.schema.yaml", [wf / configfile])
    return wf / config["workdir"]


def benchmarks(out: Path) -> pd.DataFrame:
    """One row per job of the run whose outputs are under `out`, from its `benchmark:` files."""
    rows = []
    for tsv in sorted((out / "benchmarks").rglob("*.tsv")):
        b = pd.read_csv(tsv, sep="\t")
        rel = tsv.relative_to(out / "benchmarks").with_suffix("")
        # one job per wildcard value (step_*, member_*, ...) groups under its folder, the rule's benchmark folder
        rule = str(rel.parent) if re.match(r"(step|seed|lr|member)_", rel.name) else str(rel)
        rows.append({"job": str(rel), "rule": rule,
                     "s": float(b["s"].iloc[0]),
                     "max_rss_mb": float(pd.to_numeric(b["max_rss"], errors="coerce").iloc[0])})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--restyle", default="workflow/notebooks/A1_sf_vs_pd.py", help="notebook to touch")
    ap.add_argument("--out", help="also write the Markdown report here")
    ap.add_argument("--keep", help="run the copies in this folder and keep them (default: a temporary folder)")
    args = ap.parse_args()
    cfg = ["--configfile", args.configfile]
    lines = [f"# Workflow benchmark: `{args.configfile}`", "",
             f"Measured {time.strftime('%Y-%m-%d')} by `python tools/bench.py --configfile "
             f"{args.configfile}` on this machine ({_machine()}).", ""]
    summary, per_rule = [], None
    with contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory() as tmp:
        for cores in args.cores:
            wf = copy_workflow(ROOT, Path(tmp) / f"cores{cores}")
            wall = timed(wf, "--cores", str(cores), *cfg)
            jobs = benchmarks(outputs(wf, args.configfile))
            noop = timed(wf, "-n", "--cores", str(cores), *cfg)
            report = timed(wf, "--report", "report.html", *cfg)
            (wf / args.restyle).touch()
            restyle = timed(wf, "--cores", str(cores), *cfg)
            summary.append({"cores": cores, "wall_s": wall, "sum_job_s": jobs["s"].sum(), "jobs": len(jobs),
                            "overhead": wall / (jobs["s"].sum() / cores), "noop_dry_run_s": noop, "report_s": report,
                            "restyle_one_figure_s": restyle, "max_rss_mb": jobs["max_rss_mb"].max()})
            if per_rule is None or cores == max(args.cores):
                per_rule = (jobs.groupby("rule").agg(jobs=("s", "size"), total_s=("s", "sum"),
                                                     max_job_s=("s", "max"), max_rss_mb=("max_rss_mb", "max"))
                            .sort_values("total_s", ascending=False).reset_index())
    summ = pd.DataFrame(summary)
    if len(summ) > 1:
        base = summ.loc[summ.cores == min(args.cores), "wall_s"].iloc[0]
        summ["speedup"] = base / summ["wall_s"]
    lines += ["## Whole DAG", "", summ.to_markdown(index=False, floatfmt=".2f"), "",
              f"## Per rule (--cores {max(args.cores)})", "", per_rule.to_markdown(index=False, floatfmt=".2f"), ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


def _machine() -> str:
    import os
    import platform

    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
