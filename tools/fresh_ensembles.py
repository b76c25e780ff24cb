"""Fresh ensembles against the committed table's predictions (docs/SCIENCE.md, R22-R24; issue 28's done-when).

    python tools/fresh_ensembles.py figures/claims.csv RUN1/figures/claims.csv RUN2/figures/claims.csv ...

For each claim: the committed verdict, its predicted recurrence (R22, from the committed members), the chance of
that verdict under the prediction from every given ensemble's members pooled (R24), how many of the fresh ensembles
gave the same verdict, the central 95% range of that count under R22's prediction (Binomial(n, recurrence)) and
whether the count lies in it; then per fresh ensemble its flips against the committed table and the chance of a
table at most as probable under the committed members' prediction (R23) and under the pooled members of every other
ensemble (R24, out of sample: the ensemble itself left out). Prints Markdown (what docs/RESULTS.md quotes). Reads
each ensemble's member pass bits from claims_members.csv beside its claims.csv (a fresh ensemble is named after its
workdir). `--pool figures/reference_members.csv` also writes the pooled members, what CI's check predicts from
(R24).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from vgh.fresh_check import read_verdicts  # noqa: E402
from vgh.fresh_gate import MEMBERS_RECORD  # noqa: E402
from vgh.recurrence import PREDICTION_DRAWS, family_sizes, table_chance, table_prediction  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("committed", type=Path, help="the committed claims.csv (claims_members.csv beside it)")
    ap.add_argument("fresh", type=Path, nargs="+", help="each fresh ensemble's claims.csv")
    ap.add_argument("--pool", type=Path, default=None, help="write every ensemble's members pooled here (R24)")
    args = ap.parse_args(argv)
    committed = read_verdicts(args.committed).set_index("id")
    fresh = [read_verdicts(p).set_index("id") for p in args.fresh]
    names = ["committed"] + [p.parent.parent.name for p in args.fresh]
    if len(set(names)) < len(names):
        ap.error(f"two ensembles share a name (their workdir): {names}")
    members = {name: pd.read_csv(p.with_name(MEMBERS_RECORD)).assign(ensemble=name)
               for name, p in zip(names, [args.committed, *args.fresh])}
    sizes = family_sizes(members["committed"])

    def pooled(without: str | None = None) -> list[pd.DataFrame]:
        rows = pd.concat([m for name, m in members.items() if name != without], ignore_index=True)
        return table_prediction(rows.drop(columns="ensemble"), PREDICTION_DRAWS, 0, sizes)

    own = table_prediction(members["committed"].drop(columns="ensemble"), PREDICTION_DRAWS, 0)
    _, pool_chances = table_chance(pooled(), dict(committed["verdict"]))
    n = len(fresh)
    print(f"| claim | committed | predicted recurrence (R22) | pooled (R24) | same in {n} fresh | 95% range | within |")
    print("|---|---|---|---|---|---|---|")
    for cid, row in committed.iterrows():
        r = float(row["recurrence"])
        same = sum(f.loc[cid, "verdict"] == row["verdict"] for f in fresh if cid in f.index)
        lo, hi = (int(v) for v in stats.binom(n, r).interval(0.95)) if r == r else (0, n)
        others = [f.loc[cid, "verdict"] for f in fresh if cid in f.index and f.loc[cid, "verdict"] != row["verdict"]]
        moved = f" ({', '.join(others)})" if others else ""
        print(f"| {cid} | {row['verdict']} | {r:.2f} | {pool_chances.get(cid, float('nan')):.2f} | {same}/{n}{moved} | "
              f"{lo}–{hi} | {'yes' if lo <= same <= hi else 'NO'} |")
    print()
    print("| fresh ensemble (its workdir) | flips | PASS <-> FAIL | chance of a table at most as probable: committed "
          "members (R23) | the other ensembles pooled (R24) |")
    print("|---|---|---|---|---|")
    for name, f in zip(names[1:], fresh):
        verdicts = {cid: f.loc[cid, "verdict"] for cid in f.index}
        chance, _ = table_chance(own, verdicts)
        out_of_sample, _ = table_chance(pooled(without=name), verdicts)
        flips = [f"{cid} {committed.loc[cid, 'verdict']} -> {v}" for cid, v in verdicts.items()
                 if cid in committed.index and committed.loc[cid, "verdict"] != v]
        pf = sum({committed.loc[c, "verdict"], v} == {"PASS", "FAIL"}
                 for c, v in verdicts.items() if c in committed.index)
        print(f"| {name} | {', '.join(flips) or 'none'} | {pf} | {chance:.3f} | {out_of_sample:.3f} |")
    if args.pool:
        pd.concat(members.values(), ignore_index=True).to_csv(args.pool, index=False)
        print(f"\nwrote {args.pool}: {len(members)} ensembles pooled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
