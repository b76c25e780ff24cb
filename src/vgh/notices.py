"""What a Snakemake run tells its user from its main process (workflow/rules/common.smk; `python -m vgh.config` too):
before any job, when a config is far larger than the default, its cost (`cost_estimate`); where the report goes
(`report_path`); which other workdirs a lock holds (`unlock_elsewhere`); at the end, where the verdict table, the
figures and the report are (`end_summary`)."""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

# Σ job seconds of each stage of the default config (8 members), measured on a 2-core CPU (docs/benchmarks.md,
# docs/benchmarks_default.md, 2026-12-06, AMD EPYC: 1,485 s of job time, 763 s of wall time on 2 cores), and what
# each scales with. A coarse model: it says when a config is far larger than the default, not how long it takes.
DEFAULT_JOB_SECONDS = {"pretraining": 385.0, "Part B costates": 132.0, "Part B alignment (B3)": 231.0,
                       "Part C": 348.0, "the rest (Part A, claims, calibration, figures)": 389.0}
DEFAULT_WALL_SECONDS = 763.0


def _stage_sizes(c: dict[str, Any]) -> dict[str, float]:
    """Each stage's work in the units its time scales with (see `cost_estimate`)."""
    m, pre, d = len(c["pretrain"]["seeds"]), c["pretrain"], c["data"]
    width = c["model"]["n_layer"] * c["model"]["n_embd"] ** 2  # a step's FLOPs grow with layers x width^2
    ext = bool(c.get("external", {}).get("checkpoints"))
    co, al, tr = c["costates"], c["alignment"], c["trajectory"]
    rl = tr["rl"]
    completions = 10.0 ** (d["digits"] + 1)  # Part B enumerates every answer of a prompt
    return {"pretraining": 0.0 if ext else m * pre["steps"] * pre["batch_size"] * width,
            "Part B costates": m * len(co["checkpoints"]) * len(co["temperatures"]) * co["n_prompts"] * completions,
            "Part B alignment (B3)": m * al["n_batches"] * sum(al["num_generations"]) * co["n_prompts"] * completions,
            "Part C": m * len(pre["checkpoints"]) * (len(rl["seeds"]) + len(tr["lr_sweep"]) - 1) * rl["steps"]
            * rl["prompts_per_step"] * rl["num_generations"] * rl["num_iterations"] * width,
            "the rest (Part A, claims, calibration, figures)": 1.0}


def cost_estimate(config: dict[str, Any], default: dict[str, Any], factor: float = 10.0) -> str | None:
    """A warning when a validated `config` would take more than `factor` times the `default` config's job time,
    scaling each stage's measured seconds (`DEFAULT_JOB_SECONDS`) by its work relative to the default's: members x
    steps x batch x layers x width^2 (pretraining), members x checkpoints x temperatures x prompts x completions (Part
    B), members x checkpoints x runs x RL steps x prompts x G x iterations x layers x width^2 (Part C); None below
    (and for `device: cuda`)."""
    if config.get("device") == "cuda":  # CPU figures say nothing of a GPU's time (docs/gpu_cost.md does)
        return None
    mine, base = _stage_sizes(config), _stage_sizes(default)
    stages = {k: DEFAULT_JOB_SECONDS[k] * (mine[k] / base[k] if base[k] else 1.0) for k in DEFAULT_JOB_SECONDS}
    total = sum(stages.values())
    ratio = total / sum(DEFAULT_JOB_SECONDS.values())
    if ratio < factor:
        return None
    wall = DEFAULT_WALL_SECONDS * ratio
    big = ", ".join(f"{k} x{v / DEFAULT_JOB_SECONDS[k]:.3g}" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])
                    if v > 2 * DEFAULT_JOB_SECONDS[k])
    return (f"This config is about {ratio:.3g} times the default's work ({big}): on the 2-core CPU of "
            f"docs/benchmarks.md about {_duration(wall)} instead of {_duration(DEFAULT_WALL_SECONDS)}, a coarse "
            f"estimate from its measured stages. Check the sizes (pretrain.steps, members, ...) or see docs/scaling.md "
            f"for a GPU or a cluster.")


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s"


def _shown(path: str | os.PathLike, cwd: str | os.PathLike) -> str:
    """A path as the user may type it in `cwd` (where Snakemake was started): relative when inside it, else
    absolute."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path(cwd).resolve())) or "."
    except ValueError:
        return str(path)


def report_path(argv: list[str]) -> str | None:
    """The file that `snakemake --report [FILE]` in `argv` writes (relative to the config's workdir, as every
    output), or None when `argv` does not ask for a report."""
    for i, arg in enumerate(argv):
        if arg.startswith("--report="):
            return arg.split("=", 1)[1]
        if arg == "--report":
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            return nxt if nxt and not nxt.startswith("-") else "report.html"
    return None


def unlock_elsewhere(root: str | os.PathLike, workdir: str | os.PathLike) -> list[str]:
    """The workdirs under `root` (itself and runs/*/) that a Snakemake lock holds, besides `workdir`: `snakemake
    --unlock` unlocks only its config's workdir."""
    found = [Path(root), *sorted(Path(root).glob("runs/*"))]
    return [os.path.abspath(d) for d in found if list((d / ".snakemake/locks").glob("*.lock"))
            and os.path.abspath(d) != os.path.abspath(workdir)]


def configfile_args(configfiles, default: str | os.PathLike, cwd: str | os.PathLike) -> str:
    """The ` --configfile ...` part of a command that repeats this run's config (none for the default config)."""
    files = [_shown(f, cwd) for f in configfiles if Path(f).resolve() != Path(default).resolve()]
    return f" --configfile {' '.join(map(shlex.quote, files))}" if files else ""


def end_summary(workdir: str | os.PathLike, configfiles, default: str | os.PathLike, cwd: str | os.PathLike) -> str:
    """What a finished run prints last: where its verdict table and figures are, and the report command (with the
    run's --configfile, and where the report lands: under the config's workdir); paths as typed in `cwd`."""
    workdir = Path(workdir)
    table = workdir / "figures/claims.md"
    lines = []
    if table.exists():
        counts = next((ln for ln in reversed(table.read_text().splitlines()) if " claims: " in ln), "")
        lines.append(f"Verdict table: {_shown(table, cwd)}" + (f" ({counts.rstrip('.')})" if counts else ""))
        lines.append(f"Figures: {_shown(workdir / 'figures', cwd)}/")
    else:
        lines.append(f"Outputs under {_shown(workdir, cwd)}/ (no verdict table yet: run without targets to build it)")
    lines.append(f"HTML report: snakemake --report report.html{configfile_args(configfiles, default, cwd)}  (writes "
                 f"{_shown(workdir / 'report.html', cwd)})")
    return "\n".join(lines)
