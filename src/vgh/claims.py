"""The claim record: one JSON per claim with its measured value, threshold and PASS/FAIL verdict."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .io import write_json


@dataclass
class Claim:
    """A claim's check result.

    `value` is the headline number, `threshold` a human-readable statement of the check (e.g. "<= 0.05"),
    `checks` its sub-checks (name -> {value, threshold, passed}); the claim passes when all of them do.
    `details` holds further numbers worth reporting (findings that are not part of the verdict).
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

    @property
    def passed(self) -> bool:
        return all(c["passed"] for c in self.checks.values())

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def record(self, config: dict[str, Any]) -> dict[str, Any]:
        rec = asdict(self)
        rec["passed"] = self.passed
        rec["verdict"] = self.verdict
        rec["config"] = config
        return rec

    def write(self, path: str, config: dict[str, Any]) -> None:
        write_json(self.record(config), path)

    def caption(self) -> str:
        """One line for a figure or report caption."""
        return f"{self.id} {self.verdict}: {self.metric} = {_fmt(self.value)} (check {self.threshold})"

    def checks_line(self) -> str:
        """One line listing every sub-check: name = value (threshold) ok/FAIL."""
        return "; ".join(f"{k} = {v['value']:.4g} ({v['threshold']}) {'ok' if v['passed'] else 'FAIL'}"
                         for k, v in self.checks.items())

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
    named by `entry["expand"]["step"]`; a param is the config section at a dotted key."""
    def at(key: str) -> Any:
        node = config
        for part in key.split("."):
            node = node[part]
        return node

    def paths(path: str):
        if "{" not in path:
            return path
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


def claims_table(records: list[dict[str, Any]], figures: dict[str, str]) -> "pd.DataFrame":
    """One row per claim record: id, claim, metric, value, threshold, verdict, figure."""
    import pandas as pd

    rows = [{
        "id": r["id"],
        "claim": r["statement"],
        "metric": r["metric"],
        "value": r["value"],
        "threshold": r["threshold"],
        "verdict": r["verdict"],
        "figure": f"figures/{figures[r['id']]}.pdf",
    } for r in sorted(records, key=lambda r: r["id"])]
    return pd.DataFrame(rows, columns=["id", "claim", "metric", "value", "threshold", "verdict", "figure"])


def claims_markdown(table: "pd.DataFrame") -> str:
    """The verdict table as Markdown (what figures/claims.md holds and the README embeds)."""
    head = "| id | claim | metric | value | check | verdict | figure |\n|---|---|---|---|---|---|---|\n"
    body = "".join(
        f"| {r.id} | {r.claim} | {r.metric} | {_fmt(r.value)} | {r.threshold} | **{r.verdict}** | "
        f"[{r.figure.rsplit('/', 1)[-1]}]({r.figure}) |\n" for r in table.itertuples())
    n_pass = int((table["verdict"] == "PASS").sum())
    return head + body + f"\n{n_pass} of {len(table)} claims PASS.\n"


def caption_rst(record: dict[str, Any], description: str) -> str:
    """A report caption: what is plotted (static text) and the verdict with its numbers (from the record)."""
    checks = "; ".join(f"{name}: {_fmt(c['value'])} ({c['threshold']}) {'pass' if c['passed'] else 'FAIL'}"
                       for name, c in record.get("checks", {}).items())
    return (f"{description.strip()}\n\n**Verdict: {record['verdict']}** — {record['metric']} = "
            f"{_fmt(record['value'])} (check {record['threshold']}).\n\n"
            + (f"Sub-checks: {checks}.\n" if checks else ""))
