"""CI's gate on a fresh ensemble (rules R23, R24; docs/SCIENCE.md): what a fresh verdict table is compared with, R22's
prediction of a fresh ensemble of the committed size from the reference members (the pooled members of every recorded
ensemble of the config, figures/reference_members.csv, else the committed members alone), and which flips fail.
`vgh.fresh_check` runs the fresh ensembles and reports."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .recurrence import PREDICTION_DRAWS, family_sizes, table_prediction


class FreshCheckError(Exception):
    """A bad input to the check: reported as one line, exit code 2."""


IMPROBABLE = 0.01  # R23: a fresh verdict table less probable than this under the committed prediction fails CI
MEMBERS_RECORD = "claims_members.csv"  # beside claims.csv: every member's pass bits (rule claims_table)
REFERENCE_RECORD = "reference_members.csv"  # R24: beside claims.csv, the pooled members of every recorded ensemble


def reference_members(committed_csv: Path) -> tuple[pd.DataFrame, dict[str, int], str]:
    """R24: the member pass bits a fresh ensemble's prediction draws on, the size of a fresh ensemble per family (the
    committed one's), and a line saying which members: the pooled members of every recorded ensemble of the config
    (`reference_members.csv` beside the committed claims.csv, column `ensemble`; it must hold the committed members'
    bits exactly as claims_members.csv has them, and every ensemble the committed sub-checks of each family it
    holds), else the committed members alone (R22, R23)."""
    members_csv = committed_csv.with_name(MEMBERS_RECORD)
    if not members_csv.is_file():
        raise FreshCheckError(f"{members_csv}: no such table of member pass bits (rule claims_table writes it beside "
                              "claims.csv); rebuild the committed table")
    committed = pd.read_csv(members_csv)
    sizes = family_sizes(committed)
    pool_csv = committed_csv.with_name(REFERENCE_RECORD)
    if not pool_csv.is_file():
        return committed, sizes, f"the committed members alone ({members_csv})"
    pool = pd.read_csv(pool_csv)
    stale = (f"{pool_csv} is stale (was the committed table rebuilt?): restore the committed figures, rebuild the "
             f"pool from the recorded ensembles (R24; docs/RESULTS.md says how), or delete it to predict from the "
             f"committed members alone (R23)")
    if "ensemble" not in pool.columns or set(pool.columns) - {"ensemble"} != set(committed.columns):
        raise FreshCheckError(f"{stale}; its columns are not claims_members.csv's plus `ensemble`")
    mine = pool[pool["ensemble"] == "committed"].drop(columns="ensemble")[list(committed.columns)]
    if not mine.reset_index(drop=True).equals(committed.reset_index(drop=True)):
        raise FreshCheckError(f"{stale}; its `committed` rows differ from {members_csv}")
    keys = {f: set(zip(d["id"], d["subcheck"])) for f, d in committed.groupby("family")}
    # an ensemble pools the families it was scored for under the rules in force (R29: Part B/C's other ensembles
    # were scored under R12/R13 and left the pool), each with every sub-check the committed table has
    odd = [f"{e} (family {f})" for (e, f), d in pool.groupby(["ensemble", "family"])
           if set(zip(d["id"], d["subcheck"])) != keys.get(f)]
    if odd:
        raise FreshCheckError(f"{stale}; ensemble(s) {', '.join(odd)} have other sub-checks than the committed table")
    n = family_sizes(pool)
    return (pool.drop(columns="ensemble"), sizes,
            f"the pooled members of {pool['ensemble'].nunique()} recorded ensembles ({pool_csv}: "
            + ", ".join(f"{n[f]} in family {f}" for f in sorted(n)) + ")")


def predicted_tables(committed_csv: Path, n_draws: int = PREDICTION_DRAWS, seed: int = 0
                     ) -> tuple[list[pd.DataFrame], str]:
    """R22's prediction of the verdict table of a fresh ensemble (`vgh.recurrence.table_prediction`) of the committed
    table's size, from R24's reference members (`reference_members`), and the line saying which members."""
    members, sizes, which = reference_members(committed_csv)
    return table_prediction(members, n_draws, seed, sizes), which


def failing_flips(committed: pd.DataFrame, fresh: pd.DataFrame, chance: float) -> list[str]:
    """R23: the claims whose flips fail the check: a PASS <-> FAIL flip, a claim only one table has, and, when the
    fresh table is improbable (`chance` < IMPROBABLE), every flip."""
    c, f = committed.set_index("id"), fresh.set_index("id")
    out = []
    for cid in sorted(set(c.index) | set(f.index)):
        if cid not in f.index or cid not in c.index:
            out.append(cid)
            continue
        a, b = c.loc[cid, "verdict"], f.loc[cid, "verdict"]
        if a != b and ({a, b} == {"PASS", "FAIL"} or chance < IMPROBABLE):
            out.append(cid)
    return out
