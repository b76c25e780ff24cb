"""The claim record: one JSON per claim with its ensemble estimate, interval (R21), threshold, each member's verdict
and the three-valued verdict PASS / FAIL / INCONCLUSIVE (rule R0, `vgh.ensemble`); the claim and figure rules of
each claim from the claim table (workflow/claims.yaml: `claim_job`, `figure_job`, `run_check`). The verdict table
over the records is `vgh.claims_table`'s."""
from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, value_at
from .ensemble import FAIL, INCONCLUSIVE, PASS, SubCheck, claim_verdict, member_verdicts, not_meaningful
from .io import write_json


class _Verdict:
    """The verdict of a set of sub-checks (`checks`, name -> `vgh.ensemble.SubCheck`), by `vgh.ensemble`'s rules."""

    checks: dict[str, SubCheck]

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


@dataclass
class Finding(_Verdict):
    """What a claim's check finds on its tables, and all it returns: `value` the headline number (the ensemble
    estimate of the first sub-check unless stated), `threshold` a human-readable statement of the check (e.g.
    "<= 0.05"), `checks` its sub-checks (name -> `vgh.ensemble.SubCheck`), `details` further numbers worth reporting
    (findings, not the verdict). Which claim it is, and how the claim is stated, is the claim table's
    (workflow/claims.yaml): `run_check` makes the `Claim`."""

    value: float
    threshold: str
    checks: dict[str, SubCheck]
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.checks:
            raise ValueError("a check found no sub-check: its verdict would be empty")

    def summary(self) -> str:
        """The verdict and every sub-check (`checks_summary`)."""
        return f"{self.verdict}: " + checks_summary({k: c.as_dict() for k, c in self.checks.items()})


@dataclass
class Claim(_Verdict):
    """A claim's record in the making: its id, `statement` and `metric` from the claim table (workflow/claims.yaml;
    `metric` may name a key of `details` in braces, e.g. "error at N={n_rollouts_max}") and its check's `Finding`
    (value, threshold, checks, details). The verdict follows `vgh.ensemble.claim_verdict`."""

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

    @classmethod
    def of(cls, claim_id: str, statement: str, metric: str, finding: Finding) -> "Claim":
        return cls(claim_id, statement, metric, finding.value, finding.threshold, finding.checks, finding.details)

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
    recurs = f"; recurrence {fmt_number(rec)}" if rec is not None else ""
    caption = (f"{record['id']} {record['verdict']}: {record['metric']} = {fmt_number(record['value'])}"
               f"{fmt_interval(record.get('interval'))} (check {record['threshold']}){members}{recurs}")
    return caption + "\n" + checks_summary(record["checks"])


def checks_summary(checks: dict[str, dict[str, Any]]) -> str:
    """Every sub-check of a record, `SubCheck.as_dict()`'s: name = value [interval] (threshold) verdict."""
    return "; ".join(f"{k} = {fmt_number(v['value'])}{fmt_interval(v.get('interval'))} ({v['threshold']}) "
                     f"{v['verdict']}" for k, v in checks.items())


def _paths(inputs: dict[str, str], config: dict[str, Any]) -> dict[str, Any]:
    """Input paths; one with {member} expands over the ensemble (`pretrain.seeds`)."""
    return {name: [path.format(member=m) for m in config["pretrain"]["seeds"]] if "{member}" in path else path
            for name, path in inputs.items()}


def claim_job(claim_id: str, entry: dict[str, Any], config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One claim's claim rule, {"input", "output", "params"}, from its entry in the claim table
    (workflow/claims.yaml) and the validated config: input = the check's tables, output = the record
    results/claims/<ID>.json, params = the claim's id (`claim`), `check` and `nulls` (the functions' dotted names),
    `statement`, `metric` and each entry of `params` (name -> the config value at a dotted key: `thresholds` =
    claims.<ID>, `bootstrap`, ...), and `not_meaningful` where the config marks sub-checks of this claim (R17; each
    must be one of its `subchecks`)."""
    marks = config.get("not_meaningful_at_this_size", {}).get(claim_id, {})
    unknown = sorted(set(marks) - set(entry["subchecks"]))
    if unknown:
        raise ConfigError(f"config key `not_meaningful_at_this_size.{claim_id}.{unknown[0]}`: {claim_id} has no such "
                          f"sub-check (its sub-checks: {', '.join(entry['subchecks'])})")
    return {"input": _paths(entry["input"], config),
            "output": {"claim": f"results/claims/{claim_id}.json"},
            "params": {"claim": claim_id, "check": entry["check"],
                       **({"nulls": entry["nulls"]} if "nulls" in entry else {}),
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


def run_check(tables: dict[str, Any], params: dict[str, Any], details: bool = True) -> Claim:
    """The claim (params["claim"], stated by params["statement"] and ["metric"]) as its check (params["check"])
    finds it on its tables, given the bootstrap settings as n_resamples and seed and every other param by name
    (thresholds, ...). `details` False where only the verdict is read (R19's calibration, thousands of draws): a
    check that takes a `details` argument then skips what it only reports (its sub-checks are the same)."""
    p = dict(params)
    check = load_function(p.pop("check"))
    claim_id, statement, metric = p.pop("claim"), p.pop("statement"), p.pop("metric")
    boot = p.pop("bootstrap")
    p.pop("calibration", None)  # R19's replicate counts: the claim and calibration scripts read them
    p.pop("nulls", None)  # R19's nulls of this claim: the calibration reads them
    marks = p.pop("not_meaningful", None) or {}  # R17: sub-check -> why, from a pipeline-check config
    wants = inspect.signature(check).parameters  # a check that draws (R10's prompt split) takes the seed
    p.update({k: int(boot[k]) for k in ("n_resamples", "seed") if k in wants})
    if "details" in wants:
        p["details"] = details
    claim = Claim.of(claim_id, statement, metric, check(**tables, **p))
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


def fmt_number(x: float) -> str:
    """A record's number as text (4 significant digits), or the value as it is where it is not a number."""
    try:
        return f"{float(x):.4g}"
    except (TypeError, ValueError):
        return str(x)


def fmt_interval(iv) -> str:
    """" [lo, hi]" for an interval, "" for none."""
    if not iv:
        return ""
    return f" [{fmt_number(iv[0])}, {fmt_number(iv[1])}]"
