"""The config's cross-field rules: what a JSON schema cannot state (increasing lists, steps that must be pretrained
checkpoints, sizes that must fit the task), each raising `vgh.config.ConfigError` naming the keys involved;
`vgh.config.validate_config` applies them after the schema."""
from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from .config import ConfigError, lookup

# The folders under a workdir that the default config's run writes at the repository root: no other config's
# workdir may lie inside one of them (its outputs would mix with the committed figures/ or the default's results/).
DEFAULT_OUTPUTS = ("figures", "results", "logs", "benchmarks", "resume", ".snakemake")


def cross_field_rules(c: dict[str, Any]) -> None:
    """Rules that a JSON schema cannot state. Each names the keys involved."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ConfigError(msg)

    def ascending(key: str, xs: list) -> None:
        need(all(a < b for a, b in zip(xs, xs[1:])), f"config key `{key}` must be strictly increasing, got {xs}")

    def no_repeats(key: str, xs: list, why: str) -> None:
        need(len(xs) == len(set(xs)), f"config key `{key}` has repeated values: {xs} ({why})")

    seed_lists = {"control.seeds": "a repeated seed repeats a measurement and narrows its band falsely",
                  "pretrain.seeds": "a repeated member repeats a pretraining run and narrows every interval falsely",
                  "trajectory.rl.seeds": "a repeated RL seed repeats a run and narrows the C1/C2 intervals falsely"}
    for key, why in seed_lists.items():
        found, seeds = lookup(c, key)
        if found:
            no_repeats(key, seeds, why)

    ctl = c.get("control", {})
    for key in ("a1.n_rollouts", "a2.continuations", "a3.alphas"):
        sec, name = key.split(".")
        if sec in ctl and name in ctl[sec]:
            ascending(f"control.{key}", ctl[sec][name])
    if "a3" in ctl and "alphas" in ctl["a3"]:
        need(ctl["a3"]["alphas"][0] == 0, f"config key `control.a3.alphas` must start at 0 (the additive-noise "
             f"baseline of A3), got {ctl['a3']['alphas']}")
    if "smoothing_scales" in ctl.get("pendulum", {}):  # order kept: the first is the headline
        no_repeats("control.pendulum.smoothing_scales", ctl["pendulum"]["smoothing_scales"],
                   "a repeated scale repeats a reference")
    pen = ctl.get("pendulum", {})
    if "smoothing_samples" in pen and "max_smoothing_samples" in pen:
        need(pen["max_smoothing_samples"] >= pen["smoothing_samples"],
             f"config key `control.pendulum.max_smoothing_samples` ({pen['max_smoothing_samples']}) must be >= "
             f"`control.pendulum.smoothing_samples` ({pen['smoothing_samples']}): R28's budget never goes below it")
    if "lq" in ctl:
        need(ctl["lq"]["m"] <= ctl["lq"]["n"],
             f"config key `control.lq.m` ({ctl['lq']['m']}) must be <= `control.lq.n` ({ctl['lq']['n']})")

    if isinstance(c.get("workdir"), str):
        top = Path(c["workdir"]).parts[:1]
        need(not top or top[0] not in DEFAULT_OUTPUTS, f"config key `workdir` ({c['workdir']!r}) lies inside "
             f"{top[0] if top else ''}/, where the default config's run writes (the committed figures/, its results/ "
             f"and logs): name a folder under runs/")

    marks = c.get("not_meaningful_at_this_size", {})
    need(not marks or c.get("pipeline_check", False),
         f"config key `not_meaningful_at_this_size` ({', '.join(marks)}) is allowed only with `pipeline_check: true` "
         f"(R17: a config that tests the paper counts every sub-check)")

    lo, hi = c.get("claims", {}).get("A1", {}).get("slope_range", (0, 1))
    need(lo < hi, f"config key `claims.A1.slope_range` must be [lo, hi] with lo < hi, got {[lo, hi]}")

    data = c.get("data", {})
    if "prompt_template" in data:
        _check_template(data["prompt_template"], need)
    if data:
        n = 10 ** data["digits"]
        pairs = n * (n + 1) // 2  # unordered pairs {a, b}: the unit of the splits (rule R1)
        need(data["n_rl"] + data["n_eval"] <= pairs // 2,
             f"config keys `data.n_rl` + `data.n_eval` ({data['n_rl'] + data['n_eval']}) must be at most half of "
             f"the {pairs} unordered operand pairs with `data.digits` = {data['digits']} (the rest is the "
             f"pretraining corpus's)")
    model, pre = c.get("model", {}), c.get("pretrain", {})
    ext = c.get("external", {}).get("checkpoints", [])
    if ext:
        _resolve_external(c, need)
    if model:
        need(model["n_embd"] % model["n_head"] == 0,
             f"config key `model.n_embd` ({model['n_embd']}) must be divisible by `model.n_head` ({model['n_head']})")
    if pre and not ext:
        ckpts = pre["checkpoints"]
        ascending("pretrain.checkpoints", ckpts)
        need(ckpts[0] == 0, "config key `pretrain.checkpoints` must start with step 0 (the untrained model)")
        need(ckpts[-1] <= pre["steps"], f"config key `pretrain.checkpoints` has step {ckpts[-1]} beyond "
             f"`pretrain.steps` ({pre['steps']})")
        for key in ("warmup", "eval_every"):
            need(pre[key] <= pre["steps"], f"config key `pretrain.{key}` ({pre[key]}) must be <= `pretrain.steps` "
                 f"({pre['steps']})")
    cos, ali = c.get("costates", {}), c.get("alignment", {})
    if cos and pre:
        for s in cos.get("checkpoints", []):
            need(s in pre["checkpoints"], f"config key `costates.checkpoints` names step {s}, which is not in "
                 f"`pretrain.checkpoints` {pre['checkpoints']}")
    if ali and pre:
        need(ali["checkpoint"] in pre["checkpoints"], f"config key `alignment.checkpoint` ({ali['checkpoint']}) "
             f"is not in `pretrain.checkpoints` {pre['checkpoints']}")
    if ali:
        ascending("alignment.num_generations", ali["num_generations"])
    if cos:
        ascending("costates.checkpoints", cos["checkpoints"])
        ascending("costates.temperatures", cos["temperatures"])
        if data:
            need(data["digits"] <= 3, f"Part B enumerates all 10^(d+1) completions of a prompt: config key "
                 f"`data.digits` ({data['digits']}) must be <= 3 while the `costates` rules are in the DAG")
            need(cos["n_prompts"] <= data["n_eval"], f"config key `costates.n_prompts` ({cos['n_prompts']}) must "
                 f"be <= `data.n_eval` ({data['n_eval']})")
    traj = c.get("trajectory", {})
    if traj:
        rl = traj["rl"]
        need(traj["headroom_k"] in traj["pass_k"], f"config key `trajectory.headroom_k` ({traj['headroom_k']}) "
             f"must be one of `trajectory.pass_k` {traj['pass_k']}")
        ascending("trajectory.pass_k", traj["pass_k"])
        ascending("trajectory.lr_sweep", traj["lr_sweep"])
        if data:
            need(rl["prompts_per_step"] <= data["n_rl"], f"config key `trajectory.rl.prompts_per_step` "
                 f"({rl['prompts_per_step']}) must be <= `data.n_rl` ({data['n_rl']})")


def _check_template(template: str, need) -> None:
    """The prompt template may name exactly the fields {a} and {b}, each once, with no format spec."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ConfigError(f"config key `data.prompt_template`: {template!r} is not a format string ({err})") from None
    fields = [(name, spec, conv) for _, name, spec, conv in parts if name is not None]
    names = sorted(name for name, _, _ in fields)
    need(names == ["a", "b"], f"config key `data.prompt_template`: {template!r} must name the fields {{a}} and "
         f"{{b}} once each and no other, got {['{' + n + '}' for n in names]}")
    need(all(not spec and not conv for _, spec, conv in fields), f"config key `data.prompt_template`: "
         f"{template!r} must use plain {{a}} and {{b}} (the operands are zero-padded already)")


def _resolve_external(c: dict[str, Any], need) -> None:
    """External checkpoints replace pretraining: the trajectory's steps are theirs, its one member is 0. The folders
    themselves are checked by `vgh.lm.external.check_external_checkpoints` (workflow/rules/pretrain.smk)."""
    steps = [e["step"] for e in c["external"]["checkpoints"]]
    need(all(a < b for a, b in zip(steps, steps[1:])),
         f"config key `external.checkpoints` must list strictly increasing steps, got {steps}")
    c.setdefault("pretrain", {})["checkpoints"] = steps
    c["pretrain"]["seeds"] = [0]  # one external trajectory: an ensemble of one member (no interval)
