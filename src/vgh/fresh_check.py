"""The fresh-machine verdict check (rule R0): rebuild the default config from scratch and compare its verdicts with
the committed `figures/claims.csv`.

A verdict is a property of the config, not of one run: another CPU is another draw of every float32 pretraining
trajectory, so the numbers may differ in their last digits, but no claim's verdict may. CI runs

    python -m vgh.fresh_check

on whatever machine it is given (after the tests): it copies the workflow into a temporary folder, runs the
README's main command `snakemake --cores all` there and fails, listing each claim with both its committed and its
fresh estimate, interval and verdict, when any verdict differs. `--compare COMMITTED FRESH` only compares two
verdict tables; `--configfile` runs another config against the same committed table (the tests use the smoke
config against the smoke run's table).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from .io import copy_workflow


def compare_verdicts(committed: pd.DataFrame, fresh: pd.DataFrame) -> list[str]:
    """One line per claim whose verdict differs between the two verdict tables (or that only one of them has);
    empty when every verdict agrees."""
    c, f = committed.set_index("id"), fresh.set_index("id")
    out = []
    for cid in sorted(set(c.index) | set(f.index)):
        if cid not in f.index or cid not in c.index:
            out.append(f"{cid}: only in the {'committed' if cid in c.index else 'fresh'} table")
        elif c.loc[cid, "verdict"] != f.loc[cid, "verdict"]:
            out.append(f"{cid}: committed {c.loc[cid, 'verdict']} {_numbers(c.loc[cid])}, "
                       f"fresh {f.loc[cid, 'verdict']} {_numbers(f.loc[cid])}")
    return out


def _numbers(row: pd.Series) -> str:
    return (f"(estimate {row['estimate']:.4g}, 95% interval [{row['interval_lo']:.4g}, {row['interval_hi']:.4g}], "
            f"members passing {row['members_passing']}/{row['n_members']})")


def side_by_side(committed: pd.DataFrame, fresh: pd.DataFrame) -> str:
    """Both tables' estimate, interval and verdict per claim, as text."""
    cols = ["estimate", "interval_lo", "interval_hi", "members_passing", "verdict"]
    both = pd.concat([committed.set_index("id")[cols].add_suffix("_committed"),
                      fresh.set_index("id")[cols].add_suffix("_fresh")], axis=1)
    return both.to_string(float_format=lambda x: f"{x:.4g}")


def run_fresh(repo: Path, workdir: Path, configfile: str | None = None) -> Path:
    """Run `snakemake --cores all` (on `configfile` over the default, if given) in a fresh copy of the workflow;
    return its claims.csv."""
    wf = copy_workflow(repo, workdir / "wf")
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    subprocess.run([snakemake, "--cores", "all", *(["--configfile", configfile] if configfile else [])], cwd=wf,
                   check=True)
    return wf / "figures/claims.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vgh.fresh_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", nargs=2, metavar=("COMMITTED", "FRESH"), help="only compare two claims.csv files")
    ap.add_argument("--repo", default=".", help="the repository whose committed figures/claims.csv is the reference")
    ap.add_argument("--workdir", default=None, help="where to run (default: a temporary folder, removed after)")
    ap.add_argument("--configfile", default=None, help="a config merged over the default (default: none)")
    args = ap.parse_args(argv)
    if args.compare:
        committed_csv, fresh_csv = map(Path, args.compare)
        return _report(committed_csv, fresh_csv)
    repo = Path(args.repo).resolve()
    if args.workdir:
        return _report(repo / "figures/claims.csv", run_fresh(repo, Path(args.workdir), args.configfile))
    with tempfile.TemporaryDirectory(prefix="vgh-fresh-") as tmp:
        return _report(repo / "figures/claims.csv", run_fresh(repo, Path(tmp), args.configfile))


def _report(committed_csv: Path, fresh_csv: Path) -> int:
    committed, fresh = pd.read_csv(committed_csv), pd.read_csv(fresh_csv)
    print(side_by_side(committed, fresh))
    diffs = compare_verdicts(committed, fresh)
    if diffs:
        print(f"\nFAIL: {len(diffs)} verdict(s) differ from {committed_csv}:", *diffs, sep="\n  ")
        return 1
    print(f"\nOK: all {len(committed)} verdicts agree with {committed_csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
