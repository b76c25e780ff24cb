"""The claim record: one JSON per claim with its ensemble estimate, 95% interval, threshold, each member's verdict
and the three-valued verdict PASS / FAIL / INCONCLUSIVE (rule R0, `vgh.ensemble`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .ensemble import FAIL, PASS, claim_verdict, member_verdicts
from .io import write_json


@dataclass
class Claim:
    """A claim's check result.

    `value` is the headline number (the ensemble estimate of the first sub-check unless stated), `threshold` a
    human-readable statement of the check (e.g. "<= 0.05"), `checks` its sub-checks (name -> a dict from
    `vgh.ensemble.subcheck`: value, interval, threshold, verdict, role, per_member, member_passed; a plain
    {value, threshold, passed} from `check` counts as PASS or FAIL). The verdict follows
    `vgh.ensemble.claim_verdict`. `details` holds further numbers worth reporting (findings, not the verdict).
    """

    id: str
    statement: str
    metric: str
    value: float
    threshold: str
    checks: dict[str, dict[str, Any]]
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.checks:
            raise ValueError(f"claim {self.id} has no sub-check: its verdict would be empty")

    def _normalized(self) -> dict[str, dict[str, Any]]:
        return {k: v if "verdict" in v else {**v, "verdict": PASS if v["passed"] else FAIL}
                for k, v in self.checks.items()}

    @property
    def verdict(self) -> str:
        return claim_verdict(self._normalized())

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    @property
    def interval(self) -> list[float] | None:
        """The interval of the headline sub-check (the first one), when it has one."""
        first = next(iter(self.checks.values()))
        return first.get("interval")

    @property
    def member_verdicts(self) -> list[str]:
        return member_verdicts(self._normalized())

    def record(self, config: dict[str, Any]) -> dict[str, Any]:
        rec = asdict(self)
        rec["checks"] = self._normalized()
        rec["passed"] = self.passed
        rec["verdict"] = self.verdict
        rec["interval"] = self.interval
        rec["member_verdicts"] = self.member_verdicts
        rec["members_passing"] = sum(v == PASS for v in self.member_verdicts)
        rec["config"] = config
        return rec

    def write(self, path: str, config: dict[str, Any]) -> None:
        write_json(self.record(config), path)

    def caption(self) -> str:
        """One line for a figure or report caption."""
        mv = self.member_verdicts
        members = f"; members passing {sum(v == PASS for v in mv)}/{len(mv)}" if mv else ""
        return (f"{self.id} {self.verdict}: {self.metric} = {_fmt(self.value)}{_fmt_interval(self.interval)} "
                f"(check {self.threshold}){members}")

    def checks_line(self) -> str:
        """One line listing every sub-check: name = value [interval] (threshold) verdict."""
        return "; ".join(f"{k} = {_fmt(v['value'])}{_fmt_interval(v.get('interval'))} ({v['threshold']}) "
                         f"{v['verdict']}" for k, v in self._normalized().items())

    def summary(self) -> str:
        """The caption and the checks line: what a figure notebook logs and prints under its figure."""
        return self.caption() + "\n" + self.checks_line()


def check(value: float, *, le: float | None = None, ge: float | None = None,
          within: tuple[float, float] | None = None) -> dict[str, Any]:
    """One sub-check: value <= le, value >= ge, or lo <= value <= hi."""
    import math

    v = float(value)
    ok = math.isfinite(v)
    parts = []
    if le is not None:
        ok = ok and v <= le
        parts.append(f"<= {le:g}")
    if ge is not None:
        ok = ok and v >= ge
        parts.append(f">= {ge:g}")
    if within is not None:
        ok = ok and within[0] <= v <= within[1]
        parts.append(f"in [{within[0]:g}, {within[1]:g}]")
    return {"value": v, "threshold": " and ".join(parts), "passed": bool(ok)}


def figure_job(claim_id: str, entry: dict[str, Any], config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One claim's figure rule, {"input", "output", "params"} (each name -> value), from its entry in the claim
    table (workflow/claims.yaml) and the validated config. A path with `{step}` expands over the config list
    named by `entry["expand"]["step"]`, a path with `{member}` over the ensemble (`pretrain.seeds`); a param is the
    config section at a dotted key."""
    def at(key: str) -> Any:
        node = config
        for part in key.split("."):
            node = node[part]
        return node

    def paths(path: str):
        if "{" not in path:
            return path
        if "{member}" in path:
            return [path.format(member=m) for m in config["pretrain"]["seeds"]]
        return [path.format(step=s) for s in at(entry["expand"]["step"])]

    stem = entry["figure"]
    return {
        "input": {name: paths(path) for name, path in entry["input"].items()},
        "output": {"pdf": f"figures/{stem}.pdf", "png": f"figures/{stem}.png",
                   "claim": f"results/claims/{claim_id}.json"},
        "params": {name: at(key) for name, key in entry["params"].items()},
    }


def load_claim_table(path: str = "workflow/claims.yaml") -> dict[str, dict[str, Any]]:
    """The claim table: claim id -> {figure, doc, input, params[, expand]}."""
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


def standalone_job(claim_id: str, table: str = "workflow/claims.yaml", configfile: str = "config/config.yaml",
                   schema: str = "workflow/schemas/config.schema.yaml"):
    """A stand-in for Snakemake's `snakemake` object, so that a figure notebook runs by hand from the repo root
    against an existing results/, with its rule's paths and params from the same claim table."""
    from types import SimpleNamespace

    from .config import load_config

    job = figure_job(claim_id, load_claim_table(table)[claim_id], load_config(configfile, schema))
    return SimpleNamespace(input=SimpleNamespace(**job["input"]), output=SimpleNamespace(**job["output"]),
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


TABLE_COLUMNS = ["id", "claim", "metric", "estimate", "interval_lo", "interval_hi", "threshold", "members_passing",
                 "n_members", "verdict", "figure"]


def claims_table(records: list[dict[str, Any]], figures: dict[str, str]) -> "pd.DataFrame":
    """One row per claim record: id, claim, metric, estimate, 95% interval, threshold, members passing (of
    n_members), three-valued verdict, figure."""
    import pandas as pd

    def row(r):
        iv = r.get("interval") or [float("nan"), float("nan")]
        mv = r.get("member_verdicts", [])
        return {"id": r["id"], "claim": r["statement"], "metric": r["metric"], "estimate": r["value"],
                "interval_lo": iv[0], "interval_hi": iv[1], "threshold": r["threshold"],
                "members_passing": sum(v == PASS for v in mv), "n_members": len(mv), "verdict": r["verdict"],
                "figure": f"figures/{figures[r['id']]}.pdf"}

    return pd.DataFrame([row(r) for r in sorted(records, key=lambda r: r["id"])], columns=TABLE_COLUMNS)


def claims_markdown(table: "pd.DataFrame", title: str = "") -> str:
    """The verdict table as Markdown (what figures/claims.md holds and the README embeds)."""
    head = ("| id | claim | metric | estimate | 95% interval | check | members passing | verdict | figure |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r.id} | {r.claim} | {r.metric} | {_fmt(r.estimate)} | "
        f"{_fmt_interval([r.interval_lo, r.interval_hi]).strip()} | {r.threshold} | "
        f"{r.members_passing}/{r.n_members} | **{r.verdict}** | [{r.figure.rsplit('/', 1)[-1]}]({r.figure}) |\n"
        for r in table.itertuples())
    counts = ", ".join(f"{int((table['verdict'] == v).sum())} {v}" for v in ("PASS", "INCONCLUSIVE", "FAIL"))
    return (f"{title}\n\n" if title else "") + head + body + f"\n{len(table)} claims: {counts}.\n"


def caption_rst(record: dict[str, Any], description: str) -> str:
    """A report caption: what is plotted (static text) and the verdict with its numbers (from the record)."""
    checks = "; ".join(f"{name}: {_fmt(c['value'])}{_fmt_interval(c.get('interval'))} ({c['threshold']}) "
                       f"{c['verdict']}" for name, c in record.get("checks", {}).items())
    mv = record.get("member_verdicts", [])
    members = f" Members passing: {sum(v == PASS for v in mv)}/{len(mv)} ({', '.join(mv)})." if mv else ""
    return (f"{description.strip()}\n\n**Verdict: {record['verdict']}** — {record['metric']} = "
            f"{_fmt(record['value'])}{_fmt_interval(record.get('interval'))} (check {record['threshold']})."
            f"{members}\n\n" + (f"Sub-checks: {checks}.\n" if checks else ""))
