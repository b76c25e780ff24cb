"""Fresh ensembles against the committed table's predictions (docs/SCIENCE.md, R22, R23; issue 28's done-when).

    python tools/fresh_ensembles.py figures/claims.csv RUN1/figures/claims.csv RUN2/figures/claims.csv ...

For each claim: the committed verdict, its predicted recurrence (R22), how many of the fresh ensembles gave the same
verdict, the central 95% range of that count under the prediction (Binomial(n, recurrence)) and whether the count
lies in it; then per fresh ensemble its flips against the committed table and R23's chance of a table at most as
probable. Prints Markdown (what docs/RESULTS.md quotes). Reads the committed members' pass bits from
claims_members.csv beside the committed claims.csv.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from vgh.fresh_check import MEMBERS_RECORD, predicted_tables, read_verdicts  # noqa: E402
from vgh.recurrence import table_chance  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("committed", type=Path, help="the committed claims.csv (claims_members.csv beside it)")
    ap.add_argument("fresh", type=Path, nargs="+", help="each fresh ensemble's claims.csv")
    args = ap.parse_args(argv)
    committed = read_verdicts(args.committed).set_index("id")
    fresh = [read_verdicts(p).set_index("id") for p in args.fresh]
    n = len(fresh)
    predicted = predicted_tables(args.committed.with_name(MEMBERS_RECORD))
    print(f"| claim | committed | predicted recurrence | same in {n} fresh | 95% range | within |")
    print("|---|---|---|---|---|---|")
    for cid, row in committed.iterrows():
        r = float(row["recurrence"])
        same = sum(f.loc[cid, "verdict"] == row["verdict"] for f in fresh if cid in f.index)
        lo, hi = (int(v) for v in stats.binom(n, r).interval(0.95)) if r == r else (0, n)
        others = [f.loc[cid, "verdict"] for f in fresh if cid in f.index and f.loc[cid, "verdict"] != row["verdict"]]
        moved = f" ({', '.join(others)})" if others else ""
        print(f"| {cid} | {row['verdict']} | {r:.2f} | {same}/{n}{moved} | {lo}–{hi} | "
              f"{'yes' if lo <= same <= hi else 'NO'} |")
    print()
    print("| fresh ensemble (its workdir) | flips | PASS <-> FAIL | chance of a table at most as probable (R23) |")
    print("|---|---|---|---|")
    for path, f in zip(args.fresh, fresh):
        verdicts = {cid: f.loc[cid, "verdict"] for cid in f.index}
        chance, _ = table_chance(predicted, verdicts)
        flips = [f"{cid} {committed.loc[cid, 'verdict']} -> {v}" for cid, v in verdicts.items()
                 if cid in committed.index and committed.loc[cid, "verdict"] != v]
        pf = sum({committed.loc[c, "verdict"], v} == {"PASS", "FAIL"}
                 for c, v in verdicts.items() if c in committed.index)
        print(f"| {path.parent.parent.name} | {', '.join(flips) or 'none'} | {pf} | {chance:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
