"""The verdict table over the claim records (what figures/claims.md and .csv hold and the README embeds): one row per
claim (`claims_table`), its Markdown (`claims_markdown`) and the verdicts read back from it (`markdown_verdicts`),
every member's pass bits (`claims_members`, figures/claims_members.csv, R22) and one report caption per record
(`caption_rst`)."""
from __future__ import annotations

import os
import re
from typing import Any

import pandas as pd

from .claims import fmt_interval, fmt_number
from .ensemble import PASS, VERDICTS

TABLE_COLUMNS = ["id", "claim", "metric", "estimate", "interval_lo", "interval_hi", "threshold", "deciding",
                 "deciding_value", "deciding_lo", "deciding_hi", "deciding_check",
                 "members_passing", "n_members", "not_meaningful", "recurrence", "verdict", "figure"]
UNSTABLE = 0.9  # R22: a verdict whose predicted chance of recurring is below this is marked unstable


def claims_table(records: list[dict[str, Any]], figures: dict[str, str]) -> pd.DataFrame:
    """One row per claim record: id, claim, metric, estimate, its interval (R21: the median's order-statistic
    interval; a yes/no count's Clopper-Pearson bounds with 5% in each tail), threshold, the sub-check that
    decided the verdict with its value and interval, members passing alone (of n_members: each member's own point
    values, not the ensemble rule), the verdict's recurrence (R22: the predicted chance that a fresh ensemble repeats
    it), verdict, figure."""
    def row(r):
        iv = r.get("interval") or [float("nan"), float("nan")]
        mv = r.get("member_verdicts", [])
        name = r.get("deciding") or next(iter(r["checks"]))
        d = r["checks"][name]
        div = d.get("interval") or [float("nan"), float("nan")]
        rec = r.get("recurrence")
        return {"id": r["id"], "claim": r["statement"], "metric": r["metric"], "estimate": r["value"],
                "interval_lo": iv[0], "interval_hi": iv[1], "threshold": r["threshold"], "deciding": name,
                "deciding_value": d["value"], "deciding_lo": div[0], "deciding_hi": div[1],
                "deciding_check": d["threshold"],
                "members_passing": sum(v == PASS for v in mv), "n_members": len(mv),
                "not_meaningful": ", ".join(n for n, c in r["checks"].items() if c.get("meaningful", True) is False),
                "recurrence": float("nan") if rec is None else rec, "verdict": r["verdict"],
                "figure": f"figures/{figures[r['id']]}.pdf"}

    return pd.DataFrame([row(r) for r in sorted(records, key=lambda r: r["id"])], columns=TABLE_COLUMNS)


MEMBER_COLUMNS = ["id", "family", "subcheck", "role", "p0", "meaningful", "verdict", "member", "passed",
                  "informative"]


def claim_family(claim_id: str) -> str:
    """The family of claims that share members (R22): Part A's seeds ("A") or the pretraining members ("BC")."""
    return "A" if claim_id.startswith("A") else "BC"


def claims_members(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Every member's pass bit of every sub-check of every record (one row per claim, sub-check and member), with the
    sub-check's role, p0, R17 mark and verdict: what R22's prediction of a fresh ensemble needs (figures/
    claims_members.csv, read by `vgh.fresh_check`). A sub-check without per-member values has one row, member nan."""
    rows = []
    for r in sorted(records, key=lambda r: r["id"]):
        members = r.get("members") or []
        for name, c in r["checks"].items():
            base = {"id": r["id"], "family": claim_family(r["id"]), "subcheck": name,
                    "role": c.get("role", "required"), "p0": c.get("p0", 0.5),
                    "meaningful": c.get("meaningful", True) is not False, "verdict": c["verdict"]}
            passed = c.get("member_passed") or []
            informative = c.get("member_informative")  # R29: whom the count is over (none: every member)
            if not passed:
                rows.append({**base, "member": float("nan"), "passed": float("nan"), "informative": float("nan")})
            for i, bit in enumerate(passed):
                rows.append({**base, "member": members[i] if i < len(members) else i, "passed": bool(bit),
                             "informative": float("nan") if informative is None else bool(informative[i])})
    return pd.DataFrame(rows, columns=MEMBER_COLUMNS)


def checks_from_members(table: pd.DataFrame) -> dict[str, dict[str, dict[str, Any]]]:
    """The inverse of `claims_members`: claim id -> sub-check name -> {role, p0, meaningful, verdict,
    member_passed, member_informative} (bits in the table's member order; informative None unless R29's)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (cid, name), d in table.groupby(["id", "subcheck"], sort=False):
        first = d.iloc[0]
        bits = [bool(b) for b in d["passed"]] if d["member"].notna().all() else []
        paired = bits and "informative" in d and d["informative"].notna().all()  # R29's count over some members
        informative = [b in (True, "True") for b in d["informative"]] if paired else None
        out.setdefault(cid, {})[name] = {"role": first["role"], "p0": float(first["p0"]),
                                         "meaningful": bool(first["meaningful"]), "verdict": first["verdict"],
                                         "member_passed": bits, "member_informative": informative}
    return out


def _marks(r) -> str:
    """R17's mark in the "decided by" cell: the sub-checks left out of the verdict."""
    rest = getattr(r, "not_meaningful", "")
    return f"; not counted, not meaningful at this size: {rest}" if isinstance(rest, str) and rest else ""


def md_cell(text: Any) -> str:
    """Text inside a Markdown table cell: its pipes escaped, so that "|g*|" or "|g0 - r|" stays in its cell."""
    return str(text).replace("|", "\\|")


def claims_markdown(table: pd.DataFrame, title: str = "", folder: str = "figures") -> str:
    """The verdict table as Markdown (what figures/claims.md holds and the README embeds), its figure links relative
    to `folder`, where the Markdown file lies (figures/claims.md: "figures"; the README: ".")."""
    head = ("| id | claim | metric | estimate | interval (R21) | check | decided by | members passing alone | "
            "recurrence | verdict | figure |\n|---|---|---|---|---|---|---|---|---|---|---|\n")

    def recurrence(r):
        if pd.isna(r.recurrence):
            return "n/a"
        return f"{r.recurrence:.2f}" + (" (unstable)" if r.recurrence < UNSTABLE else "")

    body = "".join(
        f"| {r.id} | {md_cell(r.claim)} | {md_cell(r.metric)} | {fmt_number(r.estimate)} | "
        f"{fmt_interval([r.interval_lo, r.interval_hi]).strip()} | {md_cell(r.threshold)} | "
        f"{r.deciding} = {fmt_number(r.deciding_value)} {fmt_interval([r.deciding_lo, r.deciding_hi]).strip()} "
        f"({md_cell(r.deciding_check)}){md_cell(_marks(r))} | {r.members_passing}/{r.n_members} | "
        f"{recurrence(r)} | **{r.verdict}** | "
        f"[{r.figure.rsplit('/', 1)[-1]}]({os.path.relpath(r.figure, folder)}) |\n"
        for r in table.itertuples())
    counts = ", ".join(f"{int((table['verdict'] == v).sum())} {v}" for v in ("PASS", "INCONCLUSIVE", "FAIL"))
    return (f"{title}\n\n" if title else "") + head + body + f"\n{len(table)} claims: {counts}.\n"


def markdown_verdicts(text: str) -> dict[str, str]:
    """Claim id -> verdict of each row of a Markdown verdict table (`| A1 | ... | **PASS** | ... |`)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\| (\w\d) \|", line)
        v = re.search(r"\*\*(" + "|".join(VERDICTS) + r")\*\*", line)
        if m and v:
            out[m.group(1)] = v.group(1)
    return out


def readme_table(readme: str) -> str:
    """The README's verdict table block (between its claims-table markers), or '' when it has none."""
    if "<!-- claims-table:start -->" not in readme:
        return ""
    return readme.split("<!-- claims-table:start -->")[1].split("<!-- claims-table:end -->")[0]


def _rst(text: Any) -> str:
    """Plain text from a record inside reStructuredText: its markup characters escaped, so that a threshold such
    as "|g0 - r| >= 3 SE" reads as written instead of as a substitution reference."""
    return "".join("\\" + ch if ch in "\\*`|_[]<>:" else ch for ch in str(text))


def caption_rst(record: dict[str, Any], description: str) -> str:
    """A report caption: what is plotted (static reStructuredText) and the verdict with its numbers (from the record,
    escaped: the report renders the caption as reStructuredText)."""
    checks = "; ".join(f"{_rst(name)}: {_rst(fmt_number(c['value']) + fmt_interval(c.get('interval')))} "
                       f"({_rst(c['threshold'])}) {c['verdict']}" for name, c in record.get("checks", {}).items())
    mv = record.get("member_verdicts", [])
    members = f" Members passing alone: {sum(v == PASS for v in mv)}/{len(mv)} ({', '.join(mv)})." if mv else ""
    if record.get("recurrence") is not None:
        members += (" Recurrence (the predicted chance that a fresh ensemble repeats the verdict, R22): "
                    f"{fmt_number(record['recurrence'])}.")
    return (f"{description.strip()}\n\n**Verdict: {record['verdict']}** — {_rst(record['metric'])} = "
            f"{_rst(fmt_number(record['value']) + fmt_interval(record.get('interval')))} (check "
            f"{_rst(record['threshold'])}).{members}\n\n" + (f"Sub-checks: {checks}.\n" if checks else ""))
