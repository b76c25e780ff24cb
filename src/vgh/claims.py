"""The claim record: one JSON per claim with its ensemble estimate, interval (R21), threshold, each member's verdict
and the three-valued verdict PASS / FAIL / INCONCLUSIVE (rule R0, `vgh.ensemble`); the claim and figure rules of
each claim from the claim table (workflow/claims.yaml: `claim_job`, `figure_job`, `run_check`); the verdict
table over the records."""
from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ConfigError, value_at
from .ensemble import FAIL, INCONCLUSIVE, PASS, SubCheck, claim_verdict, member_verdicts, not_meaningful
from .io import write_json

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Claim:
    """A claim's check result.

    `statement` and `metric` come from the claim table (workflow/claims.yaml; `metric` may name a key of
    `details` in braces, e.g. "error at N={n_rollouts_max}"). `value` is the headline number (the ensemble estimate
    of the first sub-check unless stated), `threshold` a human-readable statement of the check (e.g. "<= 0.05"),
    `checks` its sub-checks (name -> `vgh.ensemble.SubCheck`). The verdict follows `vgh.ensemble.claim_verdict`.
    `details` holds further numbers worth reporting (findings, not the verdict).
    """

    id: str
    statement: str
    metric: str
    value: float
    threshold: str
    checks: dict[str, SubCheck]
    details: dict[str, Any] = field(default_factory=dict)
    recurrence: float | None = None  # R22: the predicted chance that a fresh ensemble gives this verdict again
    members: list | None = None  # the ensemble's member (or Part A seed) ids, in the order of every per-member list

    def __post_init__(self) -> None:
        if not self.checks:
            raise ValueError(f"claim {self.id} has no sub-check: its verdict would be empty")
        self.metric = self.metric.format(**self.details)

    @property
    def verdict(self) -> str:
        return claim_verdict(self.checks)

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    @property
    def interval(self) -> list[float] | None:
        """The interval of the headline sub-check (the first one), when it has one."""
        return next(iter(self.checks.values())).interval

    @property
    def member_verdicts(self) -> list[str]:
        return member_verdicts(self.checks)

    @property
    def deciding(self) -> str:
        """The sub-check that decided the verdict (R21): for a FAIL the first required sub-check that FAILs, for an
        INCONCLUSIVE the first that does not PASS, for a PASS the headline (the first); among the sub-checks that
        count (R17), unless every one is marked not meaningful at this size."""
        names = [n for n, c in self.checks.items() if c.meaningful] or list(self.checks)  # R17
        if self.verdict == FAIL:
            return next(n for n in names if self.checks[n].role == "required" and self.checks[n].verdict == FAIL)
        if self.verdict == INCONCLUSIVE:
            return next(n for n in names if self.checks[n].verdict != PASS)
        return names[0]

    def record(self, config: dict[str, Any]) -> dict[str, Any]:
        rec = {"id": self.id, "statement": self.statement, "metric": self.metric, "value": self.value,
               "threshold": self.threshold, "checks": {k: c.as_dict() for k, c in self.checks.items()},
               "details": self.details}
        rec["passed"] = self.passed
        rec["verdict"] = self.verdict
        rec["interval"] = self.interval
        rec["deciding"] = self.deciding
        rec["recurrence"] = self.recurrence
        rec["members"] = self.members
        rec["member_verdicts"] = self.member_verdicts
        rec["members_passing"] = sum(v == PASS for v in self.member_verdicts)  # alone: on their own point values
        rec["config"] = config
        return rec

    def write(self, path: str, config: dict[str, Any]) -> None:
        write_json(self.record(config), path)

    def summary(self) -> str:
        """The caption and the checks line (`record_summary`)."""
        return record_summary(self.record({}))


def record_summary(record: dict[str, Any]) -> str:
    """Two lines from a claim record: the caption (id, verdict, metric = value [interval], check, members passing)
    and every sub-check (name = value [interval] (threshold) verdict). What the claim rule logs and a figure
    notebook prints under its figure."""
    mv = record.get("member_verdicts", [])
    members = f"; members passing alone {sum(v == PASS for v in mv)}/{len(mv)}" if mv else ""
    rec = record.get("recurrence")
    recurs = f"; recurrence {_fmt(rec)}" if rec is not None else ""
    caption = (f"{record['id']} {record['verdict']}: {record['metric']} = {_fmt(record['value'])}"
               f"{_fmt_interval(record.get('interval'))} (check {record['threshold']}){members}{recurs}")
    checks = "; ".join(f"{k} = {_fmt(v['value'])}{_fmt_interval(v.get('interval'))} ({v['threshold']}) "
                       f"{v['verdict']}" for k, v in record["checks"].items())
    return caption + "\n" + checks


def _paths(inputs: dict[str, str], config: dict[str, Any]) -> dict[str, Any]:
    """Input paths; one with {member} expands over the ensemble (`pretrain.seeds`)."""
    return {name: [path.format(member=m) for m in config["pretrain"]["seeds"]] if "{member}" in path else path
            for name, path in inputs.items()}


def claim_job(claim_id: str, entry: dict[str, Any], config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One claim's claim rule, {"input", "output", "params"}, from its entry in the claim table
    (workflow/claims.yaml) and the validated config: input = the check's tables, output = the record
    results/claims/<ID>.json, params = `check` and `nulls` (the functions' dotted names), `statement`, `metric` and
    each entry of `params` (name -> the config value at a dotted key: `thresholds` = claims.<ID>, `bootstrap`, ...),
    and `not_meaningful` where the config marks sub-checks of this claim (R17; each must be one of its `subchecks`)."""
    marks = config.get("not_meaningful_at_this_size", {}).get(claim_id, {})
    unknown = sorted(set(marks) - set(entry["subchecks"]))
    if unknown:
        raise ConfigError(f"config key `not_meaningful_at_this_size.{claim_id}.{unknown[0]}`: {claim_id} has no such "
                          f"sub-check (its sub-checks: {', '.join(entry['subchecks'])})")
    return {"input": _paths(entry["input"], config),
            "output": {"claim": f"results/claims/{claim_id}.json"},
            "params": {"check": entry["check"], **({"nulls": entry["nulls"]} if "nulls" in entry else {}),
                       "statement": entry["statement"], "metric": entry["metric"],
                       **{name: value_at(config, key) for name, key in entry["params"].items()},
                       **({"not_meaningful": dict(marks)} if marks else {})}}


def figure_job(claim_id: str, entry: dict[str, Any], config: dict[str, Any],
               out: str = "figures") -> dict[str, dict[str, Any]]:
    """One claim's figure rule, {"input", "output", "params"}: input = the check's tables, the tables only the
    figure reads (`figure_input`) and the claim record; output = <out>/<figure>.pdf|png; params = `figure_params`
    (name -> dotted config key). The thresholds and bootstrap settings are in the record (its `config`)."""
    stem = entry["figure"]
    return {"input": {**_paths({**entry["input"], **entry.get("figure_input", {})}, config),
                      "claim": f"results/claims/{claim_id}.json"},
            "output": {"pdf": f"{out}/{stem}.pdf", "png": f"{out}/{stem}.png"},
            "params": {name: value_at(config, key) for name, key in entry.get("figure_params", {}).items()}}


def load_function(name: str):
    """The function at a dotted name from the claim table: a claim's check (e.g. vgh.control.checks.check_a1) or its
    nulls (vgh.control.nulls.a1_nulls)."""
    from importlib import import_module

    module, _, func = name.rpartition(".")
    return getattr(import_module(module), func)


def run_check(tables: dict[str, Any], params: dict[str, Any]) -> Claim:
    """Call the claim's check (params["check"]) on its tables with its params: the statement and metric, the
    bootstrap settings as n_resamples and seed, and every other param by name (thresholds, ...)."""
    p = dict(params)
    check = load_function(p.pop("check"))
    boot = p.pop("bootstrap")
    p.pop("calibration", None)  # R19's replicate counts: the claim and calibration scripts read them
    p.pop("nulls", None)  # R19's nulls of this claim: the calibration reads them
    marks = p.pop("not_meaningful", None) or {}  # R17: sub-check -> why, from a pipeline-check config
    wants = inspect.signature(check).parameters  # a check that draws (R10's prompt split) takes the seed
    p.update({k: int(boot[k]) for k in ("n_resamples", "seed") if k in wants})
    claim = check(**tables, **p)
    for name, why in marks.items():
        if name not in claim.checks:
            raise ValueError(f"claim {claim.id} has no sub-check {name!r} to mark not meaningful "
                             f"(its sub-checks: {', '.join(claim.checks)})")
        claim.checks[name] = not_meaningful(claim.checks[name], why)
    return claim


def load_claim_table(path: str = "workflow/claims.yaml") -> dict[str, dict[str, Any]]:
    """The claim table: claim id -> {figure, check, nulls, statement, metric, doc, input, params[, figure_input,
    figure_params]}."""
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


def standalone_job(claim_id: str, argv: list[str] | None = None, root: str | os.PathLike = ".", check: bool = True):
    """A stand-in for Snakemake's `snakemake` object, so that a figure notebook runs by hand from the repository root
    (`root`), `python workflow/notebooks/<figure>.py [--configfile FILE ...]` (`argv`, default the command line's;
    other arguments, e.g. Jupyter's, are ignored): the paths and params of its figure rule under the config's
    workdir (the default config's: the root; config/smoke.yaml's: runs/smoke/), drawing to <workdir>/scratch/ (never
    figures/; a notebook never writes results/claims/). With `check`, it refuses while a Snakemake run holds the
    workdir (its tables may be half replaced) and names a missing input with the command that builds it."""
    import argparse
    from types import SimpleNamespace

    from .config import load_config

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--configfile", nargs="+", default=[])
    files = parser.parse_known_args(sys.argv[1:] if argv is None else argv)[0].configfile
    root = Path(root)
    config = load_config(root / "config/config.yaml", root / "workflow/schemas/config.schema.yaml", files)
    job = figure_job(claim_id, load_claim_table(root / "workflow/claims.yaml")[claim_id], config, out="scratch")
    workdir = Path(config["workdir"])
    again = f" --configfile {' '.join(files)}" if files else ""
    if check:
        locks = sorted((root / workdir / ".snakemake/locks").glob("*.lock"))
        if locks:
            raise RuntimeError(f"a Snakemake run holds {root / workdir} ({locks[0]}): its tables may be half "
                               f"replaced; run the notebook when it has finished (if it was killed: `snakemake "
                               f"--unlock{again}`)")
        for path in [p for paths in job["input"].values() for p in ([paths] if isinstance(paths, str) else paths)]:
            if not (root / workdir / path).exists():
                figure = figure_job(claim_id, load_claim_table(root / "workflow/claims.yaml")[claim_id],
                                    config)["output"]["pdf"]
                raise FileNotFoundError(f"{root / workdir / path} does not exist: run the figure's rule first, "
                                        f"`snakemake --cores all {figure}{again}`" + ("" if files else " (or give "
                                        "the config of the run that made it: --configfile FILE)"))

    def under(paths):
        return [str(workdir / p) for p in paths] if isinstance(paths, list) else str(workdir / paths)

    return SimpleNamespace(input=SimpleNamespace(**{k: under(v) for k, v in job["input"].items()}),
                           output=SimpleNamespace(**{k: under(v) for k, v in job["output"].items()}),
                           params=SimpleNamespace(**job["params"]), threads=1, log=[None])


def _fmt(x: float) -> str:
    try:
        return f"{float(x):.4g}"
    except (TypeError, ValueError):
        return str(x)


def _fmt_interval(iv) -> str:
    """" [lo, hi]" for an interval, "" for none."""
    if not iv:
        return ""
    return f" [{_fmt(iv[0])}, {_fmt(iv[1])}]"


TABLE_COLUMNS = ["id", "claim", "metric", "estimate", "interval_lo", "interval_hi", "threshold", "deciding",
                 "deciding_value", "deciding_lo", "deciding_hi", "deciding_check",
                 "members_passing", "n_members", "not_meaningful", "recurrence", "verdict", "figure"]
UNSTABLE = 0.9  # R22: a verdict whose predicted chance of recurring is below this is marked unstable


def claims_table(records: list[dict[str, Any]], figures: dict[str, str]) -> "pd.DataFrame":
    """One row per claim record: id, claim, metric, estimate, its interval (R21: the median's order-statistic
    interval; a yes/no count's Clopper-Pearson bounds with 5% in each tail), threshold, the sub-check that
    decided the verdict with its value and interval, members passing alone (of n_members: each member's own point
    values, not the ensemble rule), the verdict's recurrence (R22: the predicted chance that a fresh ensemble repeats
    it), verdict, figure."""
    import pandas as pd

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


MEMBER_COLUMNS = ["id", "family", "subcheck", "role", "p0", "meaningful", "verdict", "member", "passed"]


def claim_family(claim_id: str) -> str:
    """The family of claims that share members (R22): Part A's seeds ("A") or the pretraining members ("BC")."""
    return "A" if claim_id.startswith("A") else "BC"


def claims_members(records: list[dict[str, Any]]) -> "pd.DataFrame":
    """Every member's pass bit of every sub-check of every record (one row per claim, sub-check and member), with the
    sub-check's role, p0, R17 mark and verdict: what R22's prediction of a fresh ensemble needs (figures/
    claims_members.csv, read by `vgh.fresh_check`). A sub-check without per-member values has one row, member nan."""
    import pandas as pd

    rows = []
    for r in sorted(records, key=lambda r: r["id"]):
        members = r.get("members") or []
        for name, c in r["checks"].items():
            base = {"id": r["id"], "family": claim_family(r["id"]), "subcheck": name,
                    "role": c.get("role", "required"), "p0": c.get("p0", 0.5),
                    "meaningful": c.get("meaningful", True) is not False, "verdict": c["verdict"]}
            passed = c.get("member_passed") or []
            if not passed:
                rows.append({**base, "member": float("nan"), "passed": float("nan")})
            for i, bit in enumerate(passed):
                rows.append({**base, "member": members[i] if i < len(members) else i, "passed": bool(bit)})
    return pd.DataFrame(rows, columns=MEMBER_COLUMNS)


def checks_from_members(table: "pd.DataFrame") -> dict[str, dict[str, dict[str, Any]]]:
    """The inverse of `claims_members`: claim id -> sub-check name -> {role, p0, meaningful, verdict,
    member_passed} (bits in the table's member order)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (cid, name), d in table.groupby(["id", "subcheck"], sort=False):
        first = d.iloc[0]
        bits = [bool(b) for b in d["passed"]] if d["member"].notna().all() else []
        out.setdefault(cid, {})[name] = {"role": first["role"], "p0": float(first["p0"]),
                                         "meaningful": bool(first["meaningful"]), "verdict": first["verdict"],
                                         "member_passed": bits}
    return out


def _marks(r) -> str:
    """R17's mark in the "decided by" cell: the sub-checks left out of the verdict."""
    rest = getattr(r, "not_meaningful", "")
    return f"; not counted, not meaningful at this size: {rest}" if isinstance(rest, str) and rest else ""


def claims_markdown(table: "pd.DataFrame", title: str = "", folder: str = "figures") -> str:
    """The verdict table as Markdown (what figures/claims.md holds and the README embeds), its figure links relative
    to `folder`, where the Markdown file lies (figures/claims.md: "figures"; the README: ".")."""
    import pandas as pd

    head = ("| id | claim | metric | estimate | interval (R21) | check | decided by | members passing alone | "
            "recurrence | verdict | figure |\n|---|---|---|---|---|---|---|---|---|---|---|\n")

    def recurrence(r):
        if pd.isna(r.recurrence):
            return "n/a"
        return f"{r.recurrence:.2f}" + (" (unstable)" if r.recurrence < UNSTABLE else "")

    body = "".join(
        f"| {r.id} | {r.claim} | {r.metric} | {_fmt(r.estimate)} | "
        f"{_fmt_interval([r.interval_lo, r.interval_hi]).strip()} | {r.threshold} | "
        f"{r.deciding} = {_fmt(r.deciding_value)} {_fmt_interval([r.deciding_lo, r.deciding_hi]).strip()} "
        f"({r.deciding_check}){_marks(r)} | {r.members_passing}/{r.n_members} | {recurrence(r)} | **{r.verdict}** | "
        f"[{r.figure.rsplit('/', 1)[-1]}]({os.path.relpath(r.figure, folder)}) |\n"
        for r in table.itertuples())
    counts = ", ".join(f"{int((table['verdict'] == v).sum())} {v}" for v in ("PASS", "INCONCLUSIVE", "FAIL"))
    return (f"{title}\n\n" if title else "") + head + body + f"\n{len(table)} claims: {counts}.\n"


def _rst(text: Any) -> str:
    """Plain text from a record inside reStructuredText: its markup characters escaped, so that a threshold such
    as "|g0 - r| >= 3 SE" reads as written instead of as a substitution reference."""
    return "".join("\\" + ch if ch in "\\*`|_[]<>:" else ch for ch in str(text))


def caption_rst(record: dict[str, Any], description: str) -> str:
    """A report caption: what is plotted (static reStructuredText) and the verdict with its numbers (from the record,
    escaped: the report renders the caption as reStructuredText)."""
    checks = "; ".join(f"{_rst(name)}: {_rst(_fmt(c['value']) + _fmt_interval(c.get('interval')))} "
                       f"({_rst(c['threshold'])}) {c['verdict']}" for name, c in record.get("checks", {}).items())
    mv = record.get("member_verdicts", [])
    members = f" Members passing alone: {sum(v == PASS for v in mv)}/{len(mv)} ({', '.join(mv)})." if mv else ""
    if record.get("recurrence") is not None:
        members += (" Recurrence (the predicted chance that a fresh ensemble repeats the verdict, R22): "
                    f"{_fmt(record['recurrence'])}.")
    return (f"{description.strip()}\n\n**Verdict: {record['verdict']}** — {_rst(record['metric'])} = "
            f"{_rst(_fmt(record['value']) + _fmt_interval(record.get('interval')))} (check "
            f"{_rst(record['threshold'])}).{members}\n\n" + (f"Sub-checks: {checks}.\n" if checks else ""))
