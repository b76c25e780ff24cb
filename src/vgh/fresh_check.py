"""The fresh-machine verdict check (rules R0, R22, R23): rebuild a config from scratch and compare its verdicts with the
committed table's prediction for a fresh ensemble.

A verdict is a property of the config, not of one run: another CPU is another draw of every float32 pretraining
trajectory, and other member seeds another draw of every member, so the numbers differ, and a verdict may flip only as
often as the committed table predicts. CI runs

    python -m vgh.fresh_check
    ATEN_CPU_CAPABILITY=default python -m vgh.fresh_check --seeds-from-commit

on whatever machine it is given (after the tests): each copies the workflow into a temporary folder, runs the
README's main command `snakemake --cores all` there (the second with every seed list of the config replaced by seeds
derived from the commit under test, under torch's portable float32 kernels, R23) and prints every claim whose verdict
differs, with both its committed and its fresh numbers and the predicted chance of the fresh verdict. It fails on a
PASS <-> FAIL flip, and when the fresh verdict table is improbable under the config's prediction (the chance of a
table at most as probable as the fresh one below 0.01), so that an honest table fails about once in a hundred runs.
The prediction is R22's predictive over the pooled members of every recorded ensemble of the config,
figures/reference_members.csv (R24), else over the committed members alone, figures/claims_members.csv.
`--seeds-from N` runs another draw with chosen seeds (N, N + 1, ...; the fresh ensembles of docs/RESULTS.md).

It compares like with like. The reference is the verdict table of the config it runs (`<workdir>/figures/claims.csv`
of the repository, beside `claims_config.yaml`, the resolved config that made it); a config that differs from the
one recorded there (other than in its seed lists, when the seeds are replaced) is refused before anything runs,
naming the keys that differ. Before running, it also checks the tables a person reads: `figures/claims.md` and, for
the committed default table, the README's verdict table must say what `claims.csv` says. `--compare COMMITTED FRESH`
only compares two verdict tables. Every bad input (a missing table, a duplicate claim id, a table without a
`verdict` column, a `--workdir` already in use) ends in one line naming it, with exit code 2.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from .claims_table import markdown_verdicts, readme_table
from .config import config_differences
from .ensemble import VERDICTS
from .fresh_gate import IMPROBABLE, FreshCheckError, failing_flips, predicted_tables
from .io import copy_workflow
from .recurrence import table_chance

CONFIG_RECORD = "claims_config.yaml"  # beside claims.csv: the resolved config that made it (rule claims_table)


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


def human_table_mismatches(table: pd.DataFrame, name: str, text: str) -> list[str]:
    """One line per claim whose verdict in a human-facing Markdown table (`name`) differs from `table`'s."""
    shown, csv = markdown_verdicts(text), dict(zip(table["id"], table["verdict"]))
    return [f"{name} says {cid} {shown.get(cid, '(missing)')} but claims.csv says {csv.get(cid, '(missing)')}"
            for cid in sorted(set(shown) | set(csv)) if shown.get(cid) != csv.get(cid)]


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


SEED_LISTS = ("control.seeds", "pretrain.seeds")  # what --seeds-from replaces (R23); nothing else may differ
FRESH_CONFIG = "config/fresh_seeds.yaml"  # written into the temporary copy, merged over the config it checks
FRESH_WORKDIR = "runs/fresh_seeds"


def commit_seed_start(repo: Path) -> int:
    """R23: the first seed of CI's unchosen ensemble, from the commit under test: 10^7 + 100 (h mod 10^5), h its first
    8 hex digits."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as err:
        raise FreshCheckError(f"--seeds-from-commit: cannot read the commit of {repo} ({err})") from None
    return 10**7 + 100 * (int(head[:8], 16) % 10**5)


def seed_override(config: dict, start: int) -> dict:
    """The config keys that replace every seed list of `config` by start, start + 1, ... (as many seeds as before)
    and send the run to its own workdir."""
    out: dict = {"workdir": FRESH_WORKDIR}
    for key in SEED_LISTS:
        section, name = key.split(".")
        out.setdefault(section, {})[name] = list(range(start, start + len(config[section][name])))
    return out


def run_fresh(repo: Path, workdir: Path, config: dict, configfile: str | None = None,
              seeds_from: int | None = None) -> Path:
    """Run `snakemake --cores all` (on `configfile` over the default, if given; with every seed list from
    `seeds_from`, if given) in a fresh copy of the workflow; return its claims.csv."""
    wf = copy_workflow(repo, workdir / "wf")
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    files = [configfile] if configfile else []
    if seeds_from is not None:
        if configfile:
            raise FreshCheckError("--seeds-from and --configfile: use one of them")
        override = seed_override(config, seeds_from)
        (wf / FRESH_CONFIG).write_text(yaml.safe_dump(override, sort_keys=False))
        files = [FRESH_CONFIG]
        config = {**config, "workdir": override["workdir"]}
        print(f"fresh_check: seeds from {seeds_from}: {yaml.safe_dump(override, default_flow_style=True).strip()}")
    subprocess.run([snakemake, "--cores", "all", *(["--configfile", *files] if files else [])], cwd=wf, check=True)
    return wf / config.get("workdir", ".") / "figures/claims.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vgh.fresh_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", nargs=2, metavar=("COMMITTED", "FRESH"), help="only compare two claims.csv files")
    ap.add_argument("--repo", default=".", help="the repository whose committed verdict table is the reference")
    ap.add_argument("--workdir", default=None, help="a new folder to run in (default: a temporary one, removed "
                                                    "after); refused if it exists and is not empty")
    ap.add_argument("--configfile", default=None, help="a config merged over the default (default: none); its "
                                                       "own committed verdict table is the reference")
    seeds = ap.add_mutually_exclusive_group()
    seeds.add_argument("--seeds-from", type=int, default=None, metavar="N",
                       help="replace every seed list of the default config by N, N + 1, ... (another draw of every "
                            "member)")
    seeds.add_argument("--seeds-from-commit", action="store_true",
                       help="the same with N derived from the commit under test (R23: seeds nobody chose)")
    args = ap.parse_args(argv)
    try:
        if args.compare:
            return _report(*map(Path, args.compare))
        repo = Path(args.repo).resolve()
        seeds_from = commit_seed_start(repo) if args.seeds_from_commit else args.seeds_from
        if seeds_from is not None and not 0 <= seeds_from < 2**32 - 1000:
            raise FreshCheckError(f"--seeds-from {seeds_from}: a seed must lie in [0, 2^32)")
        config = resolved_config(repo, args.configfile)
        committed = reference(repo, config, args.configfile)
        if args.workdir:
            work = Path(args.workdir)
            if work.exists() and (not work.is_dir() or any(work.iterdir())):
                raise FreshCheckError(f"--workdir {work}: already exists and is not empty; give a new folder")
            return _report(committed, run_fresh(repo, work, config, args.configfile, seeds_from))
        with tempfile.TemporaryDirectory(prefix="vgh-fresh-") as tmp:
            return _report(committed, run_fresh(repo, Path(tmp), config, args.configfile, seeds_from))
    except FreshCheckError as err:
        print(f"fresh_check: error: {err}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as err:
        print(f"fresh_check: error: the workflow run failed (exit code {err.returncode}); its log is above",
              file=sys.stderr)
        return 1


def _report(committed_csv: Path, fresh_csv: Path) -> int:
    committed, fresh = read_verdicts(committed_csv), read_verdicts(fresh_csv)
    predicted, which = predicted_tables(committed_csv)
    chance, chances = table_chance(predicted, dict(zip(fresh["id"], fresh["verdict"])))
    print(side_by_side(committed, fresh))
    diffs = compare_verdicts(committed, fresh)
    flips = [f"{d} (predicted chance of the fresh verdict {chances.get(d.split(':')[0], float('nan')):.3f})"
             for d in diffs]
    failing = failing_flips(committed, fresh, chance)
    where = (f"the chance of a verdict table at most as probable as the fresh one is {chance:.4f} under the prediction "
             f"from {which} (R22-R24; improbable below {IMPROBABLE})")
    if failing:
        print(f"\nFAIL: {len(diffs)} verdict(s) differ from {committed_csv}; {', '.join(failing)} flipped PASS <-> "
              f"FAIL or belong to an improbable table: {where}:", *flips, sep="\n  ")
        return 1
    if diffs:
        print(f"\nOK (R23, R24): {len(diffs)} verdict(s) differ from {committed_csv}, none PASS <-> FAIL; {where}:",
              *flips, sep="\n  ")
        return 0
    print(f"\nOK: all {len(committed)} verdicts agree with {committed_csv}; {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
