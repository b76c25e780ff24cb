"""Rescore one Part A claim of every recorded ensemble in R24's pool under the rules in force, through the workflow.

    python tools/rescore_pool.py A2 [--cores 1]

R24's pool (figures/reference_members.csv) holds every recorded ensemble's member pass bits. When a rule of a Part A
claim changes (R28: A2's reference budget), each recorded ensemble's rows of that claim are recomputed: Part A is
float64 and depends only on its seeds (`control.seeds`, read from the pool's own rows of the claim), so the default
config with those seeds, run here under runs/pool/<ensemble>/ up to results/claims/<ID>.json, gives what that ensemble
gives under the new rule on any machine. The ensemble "committed" is skipped: its rows are the committed table's
(figures/claims_members.csv), copied in. Prints each ensemble's verdict and members passing per sub-check.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from vgh.claims_table import claim_family, claims_members  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("claim", help="a Part A claim id (family A: its members are control.seeds)")
    ap.add_argument("--pool", type=Path, default=ROOT / "figures" / "reference_members.csv")
    ap.add_argument("--cores", type=int, default=1)
    args = ap.parse_args(argv)
    if claim_family(args.claim) != "A":
        ap.error(f"{args.claim} is not a Part A claim (only Part A is float64 and rebuilt from its seeds alone)")
    pool = pd.read_csv(args.pool)
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    parts = []
    for name, rows in pool[pool["ensemble"] != "committed"].groupby("ensemble", sort=True):
        seeds = sorted(int(m) for m in rows[rows["id"] == args.claim]["member"].unique())
        workdir = Path("runs") / "pool" / name
        config = {**base, "workdir": str(workdir), "control": {**base["control"], "seeds": seeds}}
        path = ROOT / workdir.with_suffix(".yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        subprocess.run(["snakemake", "--cores", str(args.cores), f"results/claims/{args.claim}.json",
                        "--configfile", str(path)], cwd=ROOT, env=env, check=True)
        record = json.loads((ROOT / workdir / "results" / "claims" / f"{args.claim}.json").read_text())
        new = claims_members([record]).assign(ensemble=name)[list(pool.columns)]
        passing = new.groupby("subcheck")["passed"].sum().to_dict()
        print(f"{name}: seeds {seeds[0]}-{seeds[-1]}, {args.claim} {record['verdict']}, members passing {passing}")
        parts.append(pd.concat([rows[rows["id"] != args.claim], new]))
    committed = pd.read_csv(args.pool.with_name("claims_members.csv")).assign(ensemble="committed")
    out = pd.concat([committed[list(pool.columns)], *parts], ignore_index=True)
    out.to_csv(args.pool, index=False)
    print(f"wrote {args.pool}: {out['ensemble'].nunique()} ensembles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
