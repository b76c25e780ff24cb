"""Config validation: JSON schema (defaults filled in, unknown keys rejected) plus cross-field rules
(`vgh.config_rules`).

`validate_config` raises `ConfigError` whose message names the offending key (dotted path) and the rule
it breaks, before Snakemake builds the DAG, so no job starts on a bad config. Before the schema: a key that was
renamed or removed (`RENAMED`, `REMOVED`, `RETIRED_VALUES`) is rejected with its new name, and every number must be
finite (NaN and infinity pass JSON Schema's range checks, since every comparison with NaN is false).
"""
from __future__ import annotations

import copy
import functools
import math
import os
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """An invalid config: the message names the key and the rule it breaks."""


def _with_defaults(validator_class):
    import jsonschema

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _is_strict_integer(checker, instance) -> bool:
    """JSON Schema counts 300.0 as an integer; a config key that is a count must hold a Python int."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _validator_class():
    """The schema validator (defaults filled in, strict integers). jsonschema is imported here, not with the module:
    reading and merging YAML (`read_yaml`, `deep_update`) works where it is not installed."""
    import jsonschema

    return jsonschema.validators.extend(
        _with_defaults(jsonschema.Draft202012Validator),
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer))


def load_schema(path: str | Path) -> dict[str, Any]:
    """The config schema (workflow/schemas/config.schema.yaml) with what the claim table (workflow/claims.yaml, beside
    the schemas folder) says of each claim: its thresholds block `claims.<ID>` (the entry's `thresholds:`, each key's
    schema) and its id among those `not_meaningful_at_this_size` may name. A claim's thresholds live with the claim."""
    with open(path) as fh:
        schema = yaml.safe_load(fh)
    with open(Path(path).parent.parent / "claims.yaml") as fh:
        table = yaml.safe_load(fh)
    props = schema["properties"]
    props["claims"]["properties"] = {
        cid: {"type": "object", "default": {}, "additionalProperties": False,
              "description": f"{cid} thresholds (docs/SCIENCE.md)", "properties": entry.get("thresholds", {})}
        for cid, entry in table.items()}
    props["not_meaningful_at_this_size"]["propertyNames"] = {"enum": list(table)}
    return schema


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


# Old dotted key -> its new name. An old key is reported only where the schema no longer defines it.
RENAMED = {
    "trajectory.n_bootstrap": "bootstrap.n_resamples",
    "trajectory.bootstrap_seed": "bootstrap.seed",
    "costates.group_sizes": "alignment.num_generations",
    "costates.n_batches": "alignment.n_batches",
    "costates.alignment_checkpoint": "alignment.checkpoint",
    "costates.alignment_temperature": "alignment.temperature",
}
# Old dotted key -> why it is gone.
REMOVED = {
    "claims.B3.min_margin_over_null": "R27 decides B3 on the exact expected update alone; the batch mean's margin "
                                      "over the permuted-reward null is reported",
    "claims.A1.min_fraction_slope_in_range": "R26 decides A1 on N r^2 / v at the largest N "
                                             "(`claims.A1.max_error_over_noise`); the slope count is reported",
    "claims.B1.max_error_ratio": "R25 judges B1's trend within checkpoint x temperature cells, partial on |g*| (R10's "
                                 "quarter ratio is reported); its threshold is `claims.B1.min_within_cell_correlation`",
    "claims.B2.max_error_ratio": "R25 judges B2's trend within checkpoint x temperature cells, partial on |g*| (R10's "
                                 "quarter ratio is reported); its threshold is `claims.B2.min_within_cell_correlation`",
    "trajectory.rl.beta": "the KL penalty to a reference model is not implemented (TRL's default beta = 0 is what "
                          "runs); delete the key",
    "claims.B3.min_rloo_cosine": "R14 decides B3 on the exact expected update of the algorithm Part C runs; its "
                                 "threshold is `claims.B3.min_exact_cosine`",
    "claims.B3.min_fraction_increasing": "R14 reports RLOO's \"increasing in G\" and does not decide on it; delete "
                                         "the key",
    "data.seed": "each member draws its own data from its own stream (R20: members are independent replicates); "
                 "delete the key (the member seeds are `pretrain.seeds`)",
    "costates.seed": "each member samples Part B from its own stream (R20); delete the key",
    "control.lq.system_seed": "each seed of `control.seeds` draws its own LQ system from the class (R20); delete the "
                              "key",
    "control.pendulum.policy_seed": "each seed of `control.seeds` draws its own pendulum policy (R20); delete the key",
}
# (dotted key, old value) -> what to write instead.
RETIRED_VALUES = {
    ("trajectory.rl.algo", "ppo_clip"): "use `algo: grpo` with `num_iterations` > 1 (TRL's GRPO: num_iterations "
                                        "optimizer steps on each generated batch, ratio clipped to 1 +- epsilon)",
}


def value_at(config: dict[str, Any], dotted: str) -> Any:
    """The config value at a dotted key, e.g. `trajectory.rl.lr`; ConfigError naming the key where it is absent."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"config key `{dotted}` is missing")
        node = node[part]
    return node


def lookup(config: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """(True, the value at a dotted key), or (False, None) where it is absent."""
    try:
        return True, value_at(config, dotted)
    except ConfigError:
        return False, None


def config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two (nested) configs."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        key = f"{prefix}{k}"
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += config_differences(a[k], b[k], key + ".")
        elif a.get(k) != b.get(k):
            out.append(key)
    return out


def check_retired_keys(config: dict[str, Any]) -> None:
    """Raise ConfigError on a renamed or removed key (or a retired value), naming the old key and what replaces it."""
    for old, new in RENAMED.items():
        if lookup(config, old)[0]:
            raise ConfigError(f"config key `{old}` was renamed to `{new}`")
    for old, why in REMOVED.items():
        if lookup(config, old)[0]:
            raise ConfigError(f"config key `{old}` was removed: {why}")
    for (key, value), instead in RETIRED_VALUES.items():
        found, got = lookup(config, key)
        if found and got == value:
            raise ConfigError(f"config key `{key}`: {value!r} was removed: {instead}")


def check_finite(node: Any, path: tuple = ()) -> None:
    """Raise ConfigError naming the first number anywhere in the config that is NaN or infinite."""
    if isinstance(node, dict):
        for k, v in node.items():
            check_finite(v, (*path, k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            check_finite(v, (*path, i))
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"config key `{_key(path)}` is {node}: every number in the config must be finite")


def validate_config(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Validate `config` in place (defaults filled in) and return it; raise ConfigError on the first problem."""
    check_retired_keys(config)
    check_finite(config)
    errors = sorted(_validator_class()(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        path = list(e.absolute_path)
        if e.validator == "additionalProperties":
            extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
            key = _key(path + extra[:1])
            raise ConfigError(f"config key `{key}` is not a known setting (allowed here: "
                              f"{', '.join(sorted(e.schema.get('properties', {})))})")
        raise ConfigError(f"config key `{_key(path)}`: {e.message} (schema rule `{e.validator}`)")
    from .config_rules import cross_field_rules  # they raise this module's ConfigError

    cross_field_rules(config)
    return config


def resolve_locations(config: dict[str, Any], configfiles, root: str | Path, default: str | Path) -> dict[str, Any]:
    """Resolve, in place and before `validate_config`, what depends on where the config came from; return it.

    `configfiles` are the files given with `--configfile`, in order (each merged over `default`, the workflow's
    config/config.yaml); `root` is the repository root. Only the default config writes the committed figures/: a
    config given with `--configfile` that sets no `workdir` gets `runs/<its file's name>/` (the last such file's),
    and one that sets `workdir: "."` is refused. Each `external.checkpoints[i].path` and `external.tokenizer` that
    is relative is made absolute, relative to the folder of the config file that names it (the repository root for
    `--config`), so that the check before any job and the import job inside the workdir (on a cluster node too)
    read the same folder."""
    root, default = Path(root), Path(default)
    files = [Path(f) for f in configfiles if Path(f).resolve() != default.resolve()]
    raws = [(f, read_yaml(f)) for f in files]
    if files:
        named = [f for f, raw in raws if "workdir" in raw]
        if "workdir" not in config:  # not in any file (the default's has none) nor in --config
            config["workdir"] = f"runs/{files[-1].stem}"
        elif isinstance(config["workdir"], str) and config["workdir"] and Path(config["workdir"]) == Path("."):
            where = f" in {named[-1]}" if named else ""
            raise ConfigError(f"config key `workdir`{where}: \".\" (the repository root) is the default "
                              f"config's, where the committed figures/ live; another config writes elsewhere: "
                              f"delete the key (its outputs then go to runs/{files[-1].stem}/) or name a folder "
                              f"under runs/")
    ext = config.get("external")
    if isinstance(ext, dict):
        bases = {"checkpoints": root, "tokenizer": root}
        for f, raw in raws:
            for key in bases:
                if isinstance(raw.get("external"), dict) and key in raw["external"]:
                    bases[key] = f.parent
        for e in ext.get("checkpoints") or []:
            if isinstance(e, dict) and isinstance(e.get("path"), str) and e["path"]:
                e["path"] = os.path.normpath(bases["checkpoints"] / Path(e["path"]).expanduser())
        if isinstance(ext.get("tokenizer"), str) and ext["tokenizer"]:
            ext["tokenizer"] = os.path.normpath(bases["tokenizer"] / Path(ext["tokenizer"]).expanduser())
    return config


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a dict; a syntax error names the file, line and column."""
    try:
        with open(path) as fh:
            cfg = yaml.safe_load(fh)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"config file {where}: YAML syntax error: {problem}") from None
    if cfg is not None and not isinstance(cfg, dict):
        raise ConfigError(f"config file {path}: must hold a mapping of keys, got {type(cfg).__name__}")
    return cfg or {}


def load_config(path: str | Path, schema_path: str | Path, overrides: list[str | Path] = ()) -> dict[str, Any]:
    """Load a YAML config (deep-merging `overrides` over it, as Snakemake's --configfile does) and validate; its
    locations resolved as the workflow resolves them (`resolve_locations`: `path` is the repository's
    config/config.yaml, the repository its parent's parent)."""
    cfg = read_yaml(path)
    for o in overrides:
        deep_update(cfg, read_yaml(o))
    resolve_locations(cfg, overrides, Path(path).resolve().parent.parent, path)
    return validate_config(cfg, load_schema(schema_path))


def deep_update(base: dict, new: dict) -> dict:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_update(base[k], v)
        else:
            base[k] = v
    return base


def main(argv: list[str] | None = None) -> int:
    """`python -m vgh.config FILE ...`: check config files as `snakemake --configfile FILE ...` would use them, merged
    over config/config.yaml, from the repository root: a YAML error with its file, line and column, a file that is
    empty or not a mapping, every schema and cross-field rule (the key named), where the run would write, and the
    cost estimate when it is far above the default's. Snakemake reads a --configfile itself before the workflow
    starts and names neither file nor line."""
    import argparse
    import sys

    from .notices import cost_estimate

    ap = argparse.ArgumentParser(prog="python -m vgh.config", description=main.__doc__.split("\n\n")[0])
    ap.add_argument("configfiles", nargs="+", help="the files you give snakemake with --configfile")
    args = ap.parse_args(argv)
    root = Path.cwd()
    schema = root / "workflow/schemas/config.schema.yaml"
    try:
        for f in args.configfiles:
            if not Path(f).is_file():
                raise ConfigError(f"config file {f}: not found")
            if not read_yaml(f):
                raise ConfigError(f"config file {f}: is empty (Snakemake needs a mapping of keys)")
        config = load_config(root / "config/config.yaml", schema, args.configfiles)
    except ConfigError as err:
        print(f"Invalid config: {err}", file=sys.stderr)
        return 1
    print(f"valid: writes under {config['workdir']}/")
    if warning := cost_estimate(config, load_config(root / "config/config.yaml", schema)):
        print(warning)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
