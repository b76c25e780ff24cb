"""Config validation: the default and smoke configs are valid; bad configs stop before any job, naming the key."""
import copy
import re

import pytest
import yaml
from conftest import ROOT, snakemake

from vgh.config import ConfigError, load_config, load_schema, validate_config

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# (override merged over config.yaml, the key the error must name)
INVALID = [
    ({"data": {"digits": 0}}, "data.digits"),
    ({"data": {"corruption_rate": 1.5}}, "data.corruption_rate"),
    ({"model": {"n_embd": 30, "n_head": 4}}, "model.n_embd"),
    ({"model": {"n_layers": 2}}, "model.n_layers"),
    ({"device": "tpu"}, "device"),
    ({"pretrain": {"checkpoints": [0, 100, 50]}}, "pretrain.checkpoints"),
    ({"pretrain": {"steps": 10}}, "pretrain.checkpoints"),
    ({"trajectory": {"headroom_k": 16}}, "trajectory.headroom_k"),
    ({"trajectory": {"rl": {"algo": "dpo"}}}, "trajectory.rl.algo"),
    ({"costates": {"temperatures": "hot"}}, "costates.temperatures"),
    ({"control": {"lq": {"sigma": -1.0}}}, "control.lq.sigma"),
    ({"control": {"a1": {"n_rollouts": [64, 16]}}}, "control.a1.n_rollouts"),
    ({"claims": {"A1": {"max_rel_error": "small"}}}, "claims.A1.max_rel_error"),
    ({"data": {"n_rl": 6000, "n_eval": 6000}}, "data.n_rl"),
    ({"pretrain": {"steps": 3000.0}}, "pretrain.steps"),
    ({"data": {"digits": 1.0}}, "data.digits"),
    ({"control": {"seeds": [0, 1, 1]}}, "control.seeds"),
    ({"pretrain": {"seeds": [0, 2, 2]}}, "pretrain.seeds"),
    ({"pretrain": {"seeds": []}}, "pretrain.seeds"),
    ({"data": {"n_rl": 1300, "n_eval": 1300}}, "data.n_rl"),
    ({"claims": {"A1": {"slope_range": [-0.35, -0.65]}}}, "claims.A1.slope_range"),
    ({"data": {"prompt_template": "{a}+{b}={c}"}}, "data.prompt_template"),
    ({"data": {"prompt_template": "{a}+{b}+{a}="}}, "data.prompt_template"),
    ({"data": {"prompt_template": "{a:>3}+{b}="}}, "data.prompt_template"),
    # issue 21: every number finite (NaN and inf pass JSON Schema's range checks), wherever it is
    ({"claims": {"A1": {"max_rel_error": float("nan")}}}, "claims.A1.max_rel_error"),
    ({"pretrain": {"lr": float("nan")}}, "pretrain.lr"),
    ({"control": {"lq": {"sigma": float("inf")}}}, "control.lq.sigma"),
    ({"claims": {"A1": {"slope_range": [-0.65, float("-inf")]}}}, "claims.A1.slope_range.1"),
    ({"costates": {"temperatures": [0.25, float("nan")]}}, "costates.temperatures.1"),
    # lists whose repeats or order change a result
    ({"costates": {"checkpoints": [1000, 200]}}, "costates.checkpoints"),
    ({"costates": {"checkpoints": [200, 200, 1000]}}, "costates.checkpoints"),
    ({"control": {"pendulum": {"smoothing_scales": [0.05, 0.02, 0.05]}}}, "control.pendulum.smoothing_scales"),
    ({"trajectory": {"rl": {"seeds": [0, 1, 0]}}}, "trajectory.rl.seeds"),
    ({"trajectory": {"pass_k": [8, 1]}}, "trajectory.pass_k"),
    ({"pretrain": {"checkpoints": [0, 100, 100, 3000]}}, "pretrain.checkpoints"),
    ({"alignment": {"num_generations": [2, 8, 4]}}, "alignment.num_generations"),
    ({"alignment": {"checkpoint": 123}}, "alignment.checkpoint"),
    # seeds bounded to what the generators take: 0 <= seed < 2^32
    ({"pretrain": {"seeds": [0, 2 ** 40]}}, "pretrain.seeds.1"),
    ({"control": {"seeds": [-1, 3]}}, "control.seeds.0"),
    # R20: seeds that members shared are gone (each member draws its own)
    ({"data": {"seed": 0}}, "data.seed"),
    ({"costates": {"seed": 0}}, "costates.seed"),
    ({"control": {"lq": {"system_seed": 0}}}, "control.lq.system_seed"),
    ({"control": {"pendulum": {"policy_seed": 0}}}, "control.pendulum.policy_seed"),
    # renamed and removed keys name their successor
    ({"costates": {"group_sizes": [2, 4]}}, "costates.group_sizes"),
    ({"trajectory": {"rl": {"beta": 0.0}}}, "trajectory.rl.beta"),
    ({"trajectory": {"rl": {"algo": "ppo_clip"}}}, "trajectory.rl.algo"),
    ({"claims": {"B3": {"min_rloo_cosine": 0.9}}}, "claims.B3.min_rloo_cosine"),
    # R17: only a pipeline-check config may mark sub-checks not meaningful at its size
    ({"not_meaningful_at_this_size": {"A2": {"pendulum_power": "why"}}}, "not_meaningful_at_this_size"),
    ({"pipeline_check": True, "not_meaningful_at_this_size": {"Z9": {"x": "why"}}}, "not_meaningful_at_this_size"),
    # a config's outputs stay inside the repository (issue 21: the smoke config's under runs/smoke)
    ({"workdir": "/tmp/x"}, "workdir"),
    ({"workdir": "../x"}, "workdir"),
    ({"workdir": "runs/../../x"}, "workdir"),
    ({"workdir": ""}, "workdir"),
    # issue 31: warm-up and evaluation within the pretraining run; no workdir inside the default's outputs
    ({"pretrain": {"warmup": 3001}}, "pretrain.warmup"),
    ({"pretrain": {"eval_every": 3001}}, "pretrain.eval_every"),
    ({"workdir": "figures/mine"}, "workdir"),
    # R28: the headline reference's budget never below the pilot's
    ({"control": {"pendulum": {"max_smoothing_samples": 10000}}}, "control.pendulum.max_smoothing_samples"),
    ({"control": {"pendulum": {"power_target": 0}}}, "control.pendulum.power_target"),
]
# checked through Snakemake too, one of each kind (the library tests above cover every case; Snakemake runs the same
# validation): each stops the run before any job. A range (data.digits), a rule across keys (n_embd and n_head), an
# unknown key, a rule on a derived list (the checkpoints past the steps), a NaN in a claim's threshold.
WORKFLOW_INVALID = [INVALID[i] for i in (0, 2, 3, 6, 24)]


def merged(override):
    from vgh.config import deep_update

    with open(ROOT / "config/config.yaml") as fh:
        cfg = yaml.safe_load(fh)
    return deep_update(cfg, copy.deepcopy(override))


@pytest.mark.parametrize("path", ["config/config.yaml", "config/smoke.yaml"])
def test_shipped_configs_are_valid(path):
    overrides = [ROOT / path] if path != "config/config.yaml" else []
    cfg = load_config(ROOT / "config/config.yaml", SCHEMA, overrides)
    assert cfg["device"] in {"auto", "cpu", "cuda"}


MAPPINGS = {"not_meaningful_at_this_size"}  # claim id -> {sub-check: why} (R17; sub-checks checked by claim_job)


def test_every_schema_key_has_a_default_and_description():
    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            sub_path = f"{path}.{key}" if path else key
            assert "default" in sub, f"{sub_path} has no default"
            ref = schema["$defs"].get(sub.get("$ref", "#/").split("/")[-1], {})
            described = "description" in sub or "description" in ref
            assert described, f"{sub_path} has no description"
            if sub.get("type") == "object" and sub_path in MAPPINGS:  # names chosen by the user, each checked
                assert "propertyNames" in sub and isinstance(sub.get("additionalProperties"), dict), sub_path
            elif sub.get("type") == "object":
                assert sub.get("additionalProperties") is False, f"{sub_path} accepts unknown keys"
                walk(sub, sub_path)
            elif "$ref" not in sub and sub.get("type") in ("number", "integer"):
                assert {"minimum", "exclusiveMinimum", "maximum"} & set(sub), f"{sub_path} is not range-checked"

    schema = load_schema(SCHEMA)
    assert schema["additionalProperties"] is False
    walk(schema, "")


def test_defaults_fill_an_empty_config():
    cfg = validate_config({}, load_schema(SCHEMA))
    assert cfg["data"]["digits"] >= 1 and cfg["claims"]["A1"]["max_rel_error"] > 0


@pytest.mark.parametrize("override,key", INVALID, ids=[k for _, k in INVALID])
def test_library_rejects_invalid_config(override, key):
    with pytest.raises(ConfigError, match=f"`{key}`"):
        validate_config(merged(override), load_schema(SCHEMA))


@pytest.mark.parametrize("override,key", WORKFLOW_INVALID, ids=[k for _, k in WORKFLOW_INVALID])
def test_workflow_stops_before_any_job(workflow_copy, override, key):
    bad = workflow_copy / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    proc = snakemake(workflow_copy, "--cores", "1", "--configfile", str(bad), check=False, timeout=120)
    assert proc.returncode != 0
    assert f"`{key}`" in proc.stdout + proc.stderr
    assert not (workflow_copy / "results").exists() and not (workflow_copy / "runs").exists()  # runs/bad: its own
    assert not (workflow_copy / "logs").exists()


def test_workflow_refuses_a_workdir_outside_the_repository(workflow_copy, tmp_path):
    """Issue 21: a config's outputs stay inside the repository; one elsewhere stops Snakemake before it writes."""
    for workdir in ("../elsewhere", str(tmp_path / "elsewhere")):
        bad = workflow_copy / "bad.yaml"
        bad.write_text(yaml.safe_dump({"workdir": workdir}))
        proc = snakemake(workflow_copy, "--cores", "1", "--configfile", str(bad), check=False, timeout=120)
        assert proc.returncode != 0 and "config key `workdir`" in proc.stdout + proc.stderr, workdir
        assert not (workflow_copy.parent / "elsewhere").exists() and not (tmp_path / "elsewhere").exists()
        assert not (workflow_copy / "results").exists()


def test_a_config_without_a_workdir_writes_under_runs_its_name(tmp_path):
    """Issue 31: only the default config writes the committed figures/: another config that sets no `workdir` gets
    runs/<its file's name>/; `workdir: "."` is refused for it, and any config's workdir inside a folder the
    default's run writes (figures/, results/, ...)."""
    mine = tmp_path / "my_model.yaml"
    mine.write_text("control: {seeds: [0, 1]}\n")
    assert load_config(ROOT / "config/config.yaml", SCHEMA)["workdir"] == "."
    assert load_config(ROOT / "config/config.yaml", SCHEMA, [mine])["workdir"] == "runs/my_model"
    assert load_config(ROOT / "config/config.yaml", SCHEMA, [ROOT / "config/config.yaml"])["workdir"] == "."
    assert load_config(ROOT / "config/config.yaml", SCHEMA, [ROOT / "config/smoke.yaml", mine])["workdir"] == \
        "runs/smoke"
    for workdir, why in ((".", "is the default config's"), ("./", "is the default config's"),
                         ("figures", "inside figures/"), ("results/x", "inside results/"),
                         ("./logs/a", "inside logs/")):
        mine.write_text(yaml.safe_dump({"workdir": workdir}))
        with pytest.raises(ConfigError, match=f"config key `workdir`.*{why}"):
            load_config(ROOT / "config/config.yaml", SCHEMA, [mine])


def test_relative_external_paths_are_the_config_files(tmp_path):
    """Issue 31: a relative `external.checkpoints[i].path` or `external.tokenizer` is relative to the folder of the
    config file that names it, made absolute once (the check and the import job read the same folder)."""
    from vgh.config import resolve_locations

    (tmp_path / "cfg").mkdir()
    mine = tmp_path / "cfg/mine.yaml"
    mine.write_text(yaml.safe_dump({"external": {"checkpoints": [{"step": 1, "path": "../ext/a"},
                                                                 {"step": 2, "path": "/abs/b"}], "tokenizer": "tok"}}))
    cfg = resolve_locations(yaml.safe_load(mine.read_text()), [mine], ROOT, ROOT / "config/config.yaml")
    assert [e["path"] for e in cfg["external"]["checkpoints"]] == [str(tmp_path / "ext/a"), "/abs/b"]
    assert cfg["external"]["tokenizer"] == str(tmp_path / "cfg/tok") and cfg["workdir"] == "runs/mine"
    cli = resolve_locations({"external": {"tokenizer": "tok"}}, [], ROOT, ROOT / "config/config.yaml")
    assert cli["external"]["tokenizer"] == str(ROOT / "tok")  # --config: relative to the repository root


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  digits: 2\n  seed: [1, 2\nmodel: {n_head: 4}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line \d+, column \d+: YAML syntax error"):
        load_config(ROOT / "config/config.yaml", SCHEMA, [bad])


def test_workflow_names_file_and_line_of_a_broken_config_yaml(workflow_copy):
    path = workflow_copy / "config/config.yaml"
    path.write_text(path.read_text().replace("  digits: 2 ", "  digits: [2 ", 1))
    proc = snakemake(workflow_copy, "-n", check=False, timeout=120)
    assert proc.returncode != 0
    assert re.search(r"config/config.yaml, line \d+, column \d+: YAML syntax error", proc.stdout + proc.stderr)


@pytest.mark.skipif(torch_cuda_available(), reason="this machine has CUDA: `device: cuda` is valid here")
def test_device_cuda_without_cuda_stops_before_any_job(workflow_copy):
    proc = snakemake(workflow_copy, "--cores", "1", "--config", "device=cuda", check=False, timeout=120)
    assert proc.returncode != 0
    assert "`device` is 'cuda'" in proc.stdout + proc.stderr
    assert not (workflow_copy / "results").exists() and not (workflow_copy / "logs").exists()
    # a dry run only shows the DAG (e.g. of config/gpu.yaml on a machine without a GPU): allowed
    snakemake(workflow_copy, "-n", "--config", "device=cuda", timeout=120)


# (override, error message): renamed and removed keys are rejected before the schema, naming what replaces them
RETIRED = [
    ({"trajectory": {"n_bootstrap": 50}}, "config key `trajectory.n_bootstrap` was renamed to `bootstrap.n_resamples`"),
    ({"trajectory": {"bootstrap_seed": 1}}, "config key `trajectory.bootstrap_seed` was renamed to `bootstrap.seed`"),
    ({"costates": {"group_sizes": [2, 4]}},
     "config key `costates.group_sizes` was renamed to `alignment.num_generations`"),
    ({"costates": {"n_batches": 4}}, "config key `costates.n_batches` was renamed to `alignment.n_batches`"),
    ({"costates": {"alignment_checkpoint": 300}},
     "config key `costates.alignment_checkpoint` was renamed to `alignment.checkpoint`"),
    ({"costates": {"alignment_temperature": 1.0}},
     "config key `costates.alignment_temperature` was renamed to `alignment.temperature`"),
    ({"trajectory": {"rl": {"beta": 0.0}}}, "config key `trajectory.rl.beta` was removed: the KL penalty to a "
                                            "reference model is not implemented"),
    ({"trajectory": {"rl": {"algo": "ppo_clip"}}}, "config key `trajectory.rl.algo`: 'ppo_clip' was removed: use "
                                                   "`algo: grpo` with `num_iterations` > 1"),
]


@pytest.mark.parametrize("override,message", RETIRED, ids=[m.split("`")[1] for _, m in RETIRED])
def test_renamed_and_removed_keys_name_their_successor(override, message):
    from vgh.config import check_retired_keys

    schema = load_schema(SCHEMA)
    config = merged(override)
    with pytest.raises(ConfigError) as err:
        check_retired_keys(config)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(config, schema)


def _schema_has(schema, dotted: str) -> bool:
    node = schema
    for part in dotted.split("."):
        node = node.get("properties", {}).get(part)
        if node is None:
            return False
    return True


def test_every_rename_points_at_a_key_of_the_schema():
    from vgh.config import REMOVED, RENAMED

    schema = load_schema(SCHEMA)
    for old, new in RENAMED.items():
        assert _schema_has(schema, new), new
    for old in [*RENAMED, *REMOVED]:
        assert not _schema_has(schema, old), old


def test_nan_in_a_config_file_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("claims: {A1: {max_rel_error: .nan}}\n")
    with pytest.raises(ConfigError, match=r"config key `claims.A1.max_rel_error` is nan: every number"):
        load_config(ROOT / "config/config.yaml", SCHEMA, [bad])


def test_nan_through_the_config_option_names_the_key(workflow_copy):
    """`--config` parses nested values as strings (Snakemake's YAML BaseLoader); a top-level number is a float: both
    routes stop the run before any job, naming the key."""
    proc = snakemake(workflow_copy, "-n", "--config", "pretrain={lr: .nan}", check=False, timeout=120)
    assert proc.returncode != 0 and "`pretrain.lr`" in proc.stdout + proc.stderr


def test_a_mark_must_name_a_subcheck_of_its_claim():
    """R17: `not_meaningful_at_this_size` names sub-checks of the claim table; another name stops the workflow before
    any job (claim_job runs when Snakemake builds the DAG), naming the key; the smoke config's marks are all known."""
    from vgh.claims import claim_job, load_claim_table

    table = load_claim_table(ROOT / "workflow/claims.yaml")
    smoke = load_config(ROOT / "config/config.yaml", SCHEMA, [ROOT / "config/smoke.yaml"])
    assert smoke["not_meaningful_at_this_size"]
    jobs = {cid: claim_job(cid, entry, smoke) for cid, entry in table.items()}
    assert set(jobs["A2"]["params"]["not_meaningful"]) == {"pendulum_power", "pendulum_closeness"}
    assert "not_meaningful" not in jobs["B3"]["params"]
    smoke["not_meaningful_at_this_size"] = {"A2": {"pendulum_powr": "typo"}}
    with pytest.raises(ConfigError, match="`not_meaningful_at_this_size.A2.pendulum_powr`"):
        claim_job("A2", table["A2"], smoke)
    default = load_config(ROOT / "config/config.yaml", SCHEMA)
    assert default["not_meaningful_at_this_size"] == {}  # the default config counts every sub-check


def test_a_claims_thresholds_live_in_the_claim_table():
    """A claim's thresholds are its `thresholds:` in workflow/claims.yaml: the schema file names no claim (no second,
    hand-kept copy of the ids or thresholds), the loaded schema's `claims.<ID>` blocks and the ids that
    `not_meaningful_at_this_size` may name are the claim table's, and an unknown threshold key is refused."""
    from vgh.claims import load_claim_table

    table = load_claim_table(ROOT / "workflow/claims.yaml")
    raw = yaml.safe_load(SCHEMA.read_text())
    assert "properties" not in raw["properties"]["claims"]
    assert "propertyNames" not in raw["properties"]["not_meaningful_at_this_size"]
    schema = load_schema(SCHEMA)
    blocks = schema["properties"]["claims"]["properties"]
    assert list(blocks) == list(table)
    assert all(blocks[cid]["properties"] == table[cid]["thresholds"] for cid in table)
    assert schema["properties"]["not_meaningful_at_this_size"]["propertyNames"]["enum"] == list(table)
    defaults = validate_config({}, schema)["claims"]
    assert defaults["B3"]["min_exact_cosine"] == table["B3"]["thresholds"]["min_exact_cosine"]["default"]
    with pytest.raises(ConfigError, match="claims.A1"):
        validate_config({"claims": {"A1": {"max_rel_eror": 0.1}}}, schema)


def test_workflow_stops_on_an_unknown_marked_subcheck(workflow_copy):
    bad = workflow_copy / "bad.yaml"
    bad.write_text(yaml.safe_dump({"pipeline_check": True,
                                   "not_meaningful_at_this_size": {"C1": {"no_such_check": "why"}}}))
    proc = snakemake(workflow_copy, "--cores", "1", "--configfile", str(bad), check=False, timeout=120)
    assert proc.returncode != 0 and "`not_meaningful_at_this_size.C1.no_such_check`" in proc.stdout + proc.stderr
    assert not (workflow_copy / "results").exists()


@pytest.mark.parametrize("text,why", [("data:\n  digits: 2\n  seed: [1, 2\nmodel: {n_head: 4}\n",
                                       r"my.yaml, line 4, column \d+: YAML syntax error"),
                                      ("- a\n- b\n", "my.yaml: must hold a mapping of keys, got list"),
                                      ("", "my.yaml: is empty"),
                                      ("pretrain: {warmup: 5000}\n", r"`pretrain.warmup` \(5000\) must be <= "
                                                                     r"`pretrain.steps`")])
def test_a_config_file_is_checked_with_its_file_and_line(tmp_path, monkeypatch, capsys, text, why):
    """Issue 31: Snakemake reads a --configfile itself and names neither file nor line; `python -m vgh.config`
    does, and every rule after it."""
    from vgh.config import main

    monkeypatch.chdir(ROOT)
    (tmp_path / "my.yaml").write_text(text)
    assert main([str(tmp_path / "my.yaml")]) == 1
    assert re.search(why, capsys.readouterr().err)


def test_a_run_far_larger_than_the_default_says_what_it_costs(tmp_path, monkeypatch, capsys):
    """Issue 31: 10^7 pretraining steps were accepted with no word; the estimate scales docs/benchmarks.md's
    measured stages."""
    from vgh.config import main
    from vgh.notices import DEFAULT_JOB_SECONDS, DEFAULT_WALL_SECONDS, cost_estimate

    default = load_config(ROOT / "config/config.yaml", SCHEMA)
    smoke = load_config(ROOT / "config/config.yaml", SCHEMA, [ROOT / "config/smoke.yaml"])
    assert cost_estimate(default, default) is None and cost_estimate(smoke, default) is None
    big = copy.deepcopy(default)
    big["pretrain"]["steps"] = 10 ** 7
    # the expected figures from the measured stages (pretraining scales by 10^7 / 3,000 steps; the rest is unchanged)
    job, scale = DEFAULT_JOB_SECONDS, 10 ** 7 / default["pretrain"]["steps"]
    ratio = (sum(job.values()) + job["pretraining"] * (scale - 1)) / sum(job.values())
    assert 100 < ratio < 10 ** 4  # a guard on the arithmetic above, not a measured number
    assert (f"about {ratio:.3g} times the default's work (pretraining x{scale:.3g}): on the 2-core CPU of "
            f"docs/benchmarks.md about {DEFAULT_WALL_SECONDS * ratio / 86400:.3g} days") in cost_estimate(big, default)
    more = copy.deepcopy(default)
    more["pretrain"]["seeds"] = list(range(200))
    assert f"Part C x{200 / len(default['pretrain']['seeds']):.3g}" in cost_estimate(more, default)
    monkeypatch.chdir(ROOT)
    (tmp_path / "big.yaml").write_text("pretrain: {steps: 10000000}\n")
    assert main([str(tmp_path / "big.yaml")]) == 0
    out = capsys.readouterr().out
    assert "valid: writes under runs/big/" in out and "times the default's work" in out


def test_snakemake_prints_the_cost_of_a_run_far_larger_than_the_default(workflow_copy):
    (workflow_copy / "big.yaml").write_text("pretrain: {steps: 10000000}\n")
    proc = snakemake(workflow_copy, "-n", "--configfile", "big.yaml", timeout=300)
    assert "times the default's work (pretraining x" in proc.stderr and "days" in proc.stderr
