"""The fresh-machine verdict check (rule R0): rebuild a config from scratch and compare its verdicts with that
config's committed verdict table.

A verdict is a property of the config, not of one run: another CPU is another draw of every float32 pretraining
trajectory, so the numbers may differ in their last digits, but no claim's verdict may. CI runs

    python -m vgh.fresh_check

on whatever machine it is given (after the tests): it copies the workflow into a temporary folder, runs the
README's main command `snakemake --cores all` there and prints every claim whose verdict differs, with both its
committed and its fresh estimate, interval and verdict. It fails (R19) on a PASS <-> FAIL flip, and on any other
flip of a verdict whose committed recurrence over member resamples was >= 0.9 (a verdict the table did not mark
unstable); a flip of an unstable verdict is printed, not failed. CI runs it twice: as it is, and under torch's
portable float32 kernels (`ATEN_CPU_CAPABILITY=default`, what another CPU does to the trajectory).

It compares like with like. The reference is the verdict table of the config it runs (`<workdir>/figures/claims.csv`
of the repository, beside `claims_config.yaml`, the resolved config that made it); a config that differs from the
one recorded there is refused before anything runs, naming the keys that differ. Before running, it also checks the
tables a person reads: `figures/claims.md` and, for the committed default table, the README's verdict table must
say what `claims.csv` says. `--compare COMMITTED FRESH` only compares two verdict tables. Every bad input (a
missing table, a duplicate claim id, a table without a `verdict` column, a `--workdir` already in use) ends in one
line naming it, with exit code 2.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from .io import copy_workflow

VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")
CONFIG_RECORD = "claims_config.yaml"  # beside claims.csv: the resolved config that made it (rule claims_table)


class FreshCheckError(Exception):
    """A bad input to the check: reported as one line, exit code 2."""


def read_verdicts(path: Path) -> pd.DataFrame:
    """A verdict table (claims.csv), checked: it exists, has `id` and `verdict`, no id twice, known verdicts."""
    if not path.is_file():
        raise FreshCheckError(f"{path}: no such verdict table")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise FreshCheckError(f"{path}: not a readable CSV verdict table ({str(err).splitlines()[0]})") from None
    for col in ("id", "verdict"):
        if col not in table.columns:
            raise FreshCheckError(f"{path}: no `{col}` column (columns: {', '.join(map(str, table.columns))})")
    dup = table["id"][table["id"].duplicated()].tolist()
    if dup:
        raise FreshCheckError(f"{path}: claim id {', '.join(map(str, dup))} appears more than once")
    bad = table.loc[~table["verdict"].isin(VERDICTS), "id"].tolist()
    if bad:
        raise FreshCheckError(f"{path}: claim {', '.join(map(str, bad))} has a verdict that is not one of "
                              f"{', '.join(VERDICTS)}")
    return table


def markdown_verdicts(text: str) -> dict[str, str]:
    """Claim id -> verdict of each row of a Markdown verdict table (`| A1 | ... | **PASS** | ... |`)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\| (\w\d) \|", line)
        v = re.search(r"\*\*(" + "|".join(VERDICTS) + r")\*\*", line)
        if m and v:
            out[m.group(1)] = v.group(1)
    return out


def human_table_mismatches(table: pd.DataFrame, name: str, text: str) -> list[str]:
    """One line per claim whose verdict in a human-facing Markdown table (`name`) differs from `table`'s."""
    shown, csv = markdown_verdicts(text), dict(zip(table["id"], table["verdict"]))
    return [f"{name} says {cid} {shown.get(cid, '(missing)')} but claims.csv says {csv.get(cid, '(missing)')}"
            for cid in sorted(set(shown) | set(csv)) if shown.get(cid) != csv.get(cid)]


def readme_table(readme: str) -> str:
    """The README's verdict table block (between its claims-table markers), or '' when it has none."""
    if "<!-- claims-table:start -->" not in readme:
        return ""
    return readme.split("<!-- claims-table:start -->")[1].split("<!-- claims-table:end -->")[0]


def config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two (nested) configs."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        key = f"{prefix}{k}"
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += config_differences(a[k], b[k], key + ".")
        elif a.get(k) != b.get(k):
            out.append(key)
    return out


def resolved_config(repo: Path, configfile: str | None) -> dict:
    """The config a run of `snakemake --cores all [--configfile F]` in `repo` would use, validated."""
    from .config import ConfigError, load_config

    overrides = [repo / configfile] if configfile else []
    for o in overrides:
        if not o.is_file():
            raise FreshCheckError(f"--configfile {configfile}: no such file in {repo}")
    try:
        return load_config(repo / "config/config.yaml", repo / "workflow/schemas/config.schema.yaml", overrides)
    except ConfigError as err:
        raise FreshCheckError(f"invalid config: {err}") from None


def reference(repo: Path, config: dict, configfile: str | None) -> Path:
    """The committed verdict table of `config`, after checking that it was made by this config and that the
    human-facing tables agree with it."""
    figures = repo / config.get("workdir", ".") / "figures"
    csv = figures / "claims.csv"
    what = f"--configfile {configfile}" if configfile else "the default config"
    if not csv.is_file():
        raise FreshCheckError(f"no committed verdict table for {what}: {csv} does not exist (the check compares a "
                              f"config with its own table; build it first, or use --compare COMMITTED FRESH)")
    record = figures / CONFIG_RECORD
    if not record.is_file():
        raise FreshCheckError(f"{record} is missing: nothing says which config made {csv} (rerun the workflow)")
    made_by = yaml.safe_load(record.read_text()) or {}
    diffs = config_differences(config, made_by)
    if diffs:
        raise FreshCheckError(f"{csv} was made by another config than {what}: it differs at "
                              f"{len(diffs)} key(s): {', '.join(diffs[:8])}{' ...' if len(diffs) > 8 else ''}; "
                              f"compare a config with its own table (or use --compare COMMITTED FRESH)")
    table = read_verdicts(csv)
    problems = []
    if (figures / "claims.md").is_file():
        problems += human_table_mismatches(table, str(figures / "claims.md"), (figures / "claims.md").read_text())
    else:
        problems.append(f"{figures / 'claims.md'} does not exist")
    if figures.resolve() == (repo / "figures").resolve() and (repo / "README.md").is_file():
        problems += human_table_mismatches(table, "README.md", readme_table((repo / "README.md").read_text()))
    if problems:
        raise FreshCheckError("the human-facing verdict tables disagree with the committed claims.csv: "
                              + "; ".join(problems))
    return csv


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


def failing_flips(committed: pd.DataFrame, fresh: pd.DataFrame, stable: float = 0.9) -> list[str]:
    """R19: the claims whose flip fails the check: PASS <-> FAIL, or any flip of a verdict whose committed
    recurrence was >= `stable` (or is unknown), or a claim only one table has."""
    c, f = committed.set_index("id"), fresh.set_index("id")
    out = []
    for cid in sorted(set(c.index) | set(f.index)):
        if cid not in f.index or cid not in c.index:
            out.append(cid)
            continue
        a, b = c.loc[cid, "verdict"], f.loc[cid, "verdict"]
        rec = c.loc[cid, "recurrence"] if "recurrence" in c.columns else float("nan")
        if a != b and ({a, b} == {"PASS", "FAIL"} or not (pd.notna(rec) and rec < stable)):
            out.append(cid)
    return out


def _numbers(row: pd.Series) -> str:
    def num(col):
        return f"{row[col]:.4g}" if col in row and pd.notna(row[col]) else "?"

    return (f"(estimate {num('estimate')}, interval [{num('interval_lo')}, {num('interval_hi')}], "
            f"members passing alone {row.get('members_passing', '?')}/{row.get('n_members', '?')}, "
            f"recurrence {num('recurrence')})")


def side_by_side(committed: pd.DataFrame, fresh: pd.DataFrame) -> str:
    """Both tables' estimate, interval and verdict per claim, as text."""
    cols = ["estimate", "interval_lo", "interval_hi", "members_passing", "recurrence", "verdict"]

    def part(t, suffix):
        return t.set_index("id")[[c for c in cols if c in t.columns]].add_suffix(suffix)

    both = pd.concat([part(committed, "_committed"), part(fresh, "_fresh")], axis=1)
    return both.to_string(float_format=lambda x: f"{x:.4g}")


def run_fresh(repo: Path, workdir: Path, config: dict, configfile: str | None = None) -> Path:
    """Run `snakemake --cores all` (on `configfile` over the default, if given) in a fresh copy of the workflow;
    return its claims.csv."""
    wf = copy_workflow(repo, workdir / "wf")
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    subprocess.run([snakemake, "--cores", "all", *(["--configfile", configfile] if configfile else [])], cwd=wf,
                   check=True)
    return wf / config.get("workdir", ".") / "figures/claims.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vgh.fresh_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", nargs=2, metavar=("COMMITTED", "FRESH"), help="only compare two claims.csv files")
    ap.add_argument("--repo", default=".", help="the repository whose committed verdict table is the reference")
    ap.add_argument("--workdir", default=None, help="a new folder to run in (default: a temporary one, removed "
                                                    "after); refused if it exists and is not empty")
    ap.add_argument("--configfile", default=None, help="a config merged over the default (default: none); its "
                                                       "own committed verdict table is the reference")
    args = ap.parse_args(argv)
    try:
        if args.compare:
            return _report(*map(Path, args.compare))
        repo = Path(args.repo).resolve()
        config = resolved_config(repo, args.configfile)
        committed = reference(repo, config, args.configfile)
        if args.workdir:
            work = Path(args.workdir)
            if work.exists() and (not work.is_dir() or any(work.iterdir())):
                raise FreshCheckError(f"--workdir {work}: already exists and is not empty; give a new folder")
            return _report(committed, run_fresh(repo, work, config, args.configfile))
        with tempfile.TemporaryDirectory(prefix="vgh-fresh-") as tmp:
            return _report(committed, run_fresh(repo, Path(tmp), config, args.configfile))
    except FreshCheckError as err:
        print(f"fresh_check: error: {err}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as err:
        print(f"fresh_check: error: the workflow run failed (exit code {err.returncode}); its log is above",
              file=sys.stderr)
        return 1


def _report(committed_csv: Path, fresh_csv: Path) -> int:
    committed, fresh = read_verdicts(committed_csv), read_verdicts(fresh_csv)
    print(side_by_side(committed, fresh))
    diffs = compare_verdicts(committed, fresh)
    failing = failing_flips(committed, fresh)
    if failing:
        print(f"\nFAIL: {len(diffs)} verdict(s) differ from {committed_csv}; {', '.join(failing)} flipped "
              "PASS <-> FAIL or had a recurrence >= 0.9 (R19):", *diffs, sep="\n  ")
        return 1
    if diffs:
        print(f"\nOK (R19): {len(diffs)} verdict(s) differ from {committed_csv}, each one the table marked unstable "
              "(recurrence < 0.9), none PASS <-> FAIL:", *diffs, sep="\n  ")
        return 0
    print(f"\nOK: all {len(committed)} verdicts agree with {committed_csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
