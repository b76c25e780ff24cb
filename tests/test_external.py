"""External checkpoint trajectories: Parts B and C run unchanged on user-supplied Hugging Face folders.

Two tiny Llama-style models (another architecture than the GPT-2 the workflow pretrains) are saved into a
temporary folder, named in `external.checkpoints`, and the B and C claim rules run on them. Every unusable folder
is rejected before any job with a message naming the config key and the file; overwritten weights rerun the import.
"""
import json
import os

import pytest
import torch
import yaml
from conftest import ROOT, SMOKE_OUT, snakemake
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BartConfig,
    BertConfig,
    BertForMaskedLM,
    BertLMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    ViTConfig,
)

from vgh.config import ConfigError, load_schema, validate_config
from vgh.lm.external import check_external_checkpoint, check_external_checkpoints
from vgh.lm.task import build_tokenizer

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def check(path, tokenizer=None):
    """check_external_checkpoint with the smoke config's task (1-digit operands, the default template)."""
    return check_external_checkpoint(str(path), tokenizer, "{a}+{b}=", 1)


def save_llama(folder, seed, context=32):
    tok = build_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=context,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llama_revisions(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    return [str(save_llama(root / f"rev_{i}", seed=i)) for i in range(2)]


def external_config(paths, steps=(10, 20)):
    return {
        "external": {"checkpoints": [{"step": s, "path": p} for s, p in zip(steps, paths)]},
        "costates": {"checkpoints": list(steps)},
        "alignment": {"checkpoint": steps[-1]},
    }


def validate(override):
    from vgh.config import deep_update

    with open(ROOT / "config/config.yaml") as fh:
        cfg = yaml.safe_load(fh)
    with open(ROOT / "config/smoke.yaml") as fh:
        deep_update(cfg, yaml.safe_load(fh))
    return validate_config(deep_update(cfg, override), load_schema(SCHEMA))


def validate_and_check(override):
    """What the workflow does before any job: validate the config, then check the folders (pretrain.smk)."""
    cfg = validate(override)
    return cfg, check_external_checkpoints(cfg)


def test_external_steps_become_the_trajectory(llama_revisions):
    cfg = validate(external_config(llama_revisions))
    assert cfg["pretrain"]["checkpoints"] == [10, 20]


def test_missing_folder_is_a_clear_error(llama_revisions, tmp_path):
    with pytest.raises(ConfigError, match=r"`external.checkpoints\[1\].path`: folder .* does not exist"):
        validate_and_check(external_config([llama_revisions[0], str(tmp_path / "nope")]))


def test_not_a_causal_lm_is_a_clear_error(tmp_path):
    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path / "vit")
    build_tokenizer().save_pretrained(tmp_path / "vit")
    assert "not a causal LM" in check(tmp_path / "vit")
    (tmp_path / "empty").mkdir()
    assert "not a Hugging Face model folder" in check(tmp_path / "empty")


def save_bert(folder, cls):
    tok = build_tokenizer()
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                     num_attention_heads=2, max_position_embeddings=32, pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cls(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_bert_encoder_is_rejected(tmp_path):
    """'bert' is in transformers' causal-LM mapping; neither a masked-LM BERT nor BERT in its LM-head class
    without is_decoder (bidirectional attention) is a causal LM."""
    problem = check(save_bert(tmp_path / "mlm", BertForMaskedLM))
    assert "not a causal-LM head" in problem and "BertForMaskedLM" in problem
    problem = check(save_bert(tmp_path / "lmhead", BertLMHeadModel))
    assert "not a causal LM: its logits at earlier positions change with a later token" in problem


def test_encoder_decoder_is_rejected(tmp_path):
    BartConfig(d_model=32, encoder_layers=1, decoder_layers=1, architectures=["BartForCausalLM"]).save_pretrained(
        tmp_path / "bart")
    assert "encoder-decoder" in check(tmp_path / "bart")


def test_missing_weights_are_named(llama_revisions, tmp_path):
    folder = save_llama(tmp_path / "headless", seed=0)
    weights = load_file(folder / "model.safetensors")
    del weights["lm_head.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    problem = check(folder)
    assert "missing keys: lm_head.weight" in problem, problem
    (folder / "model.safetensors").unlink()
    assert "holds no loadable model weights" in check(folder)


def test_context_shorter_than_prompt_and_answer_is_rejected(tmp_path):
    problem = check(save_llama(tmp_path / "short", seed=0, context=5))
    assert "context of 5 tokens, shorter than prompt + answer (5 + 2 = 7 tokens)" in problem, problem


def test_the_workflows_own_gpt2_checkpoint_passes(tmp_path):
    from vgh.lm.model import build_model

    tok = build_tokenizer()
    build_model(len(tok), 16, 1, 2, 16, seed=0).save_pretrained(tmp_path / "gpt2")
    tok.save_pretrained(tmp_path / "gpt2")
    assert check(tmp_path / "gpt2") is None


def test_tokenizer_without_single_token_digits_is_a_clear_error(llama_revisions, tmp_path):
    vocab = {"<unk>": 0, "+": 1, "=": 2, "00": 3}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Split(" ", behavior="removed")
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>").save_pretrained(tmp_path / "tok")
    problem = check(llama_revisions[0], str(tmp_path / "tok"))
    assert "digit-restricted policy" in problem and "'0'" in problem
    # issue 31: a bad `external.tokenizer` is blamed on the tokenizer, not on a checkpoint's folder
    with pytest.raises(ConfigError, match=r"`external.tokenizer`: the tokenizer in .*tok' does not suit the "
                                          r"digit-restricted policy"):
        validate_and_check({**external_config(llama_revisions), "external": {
            **external_config(llama_revisions)["external"], "tokenizer": str(tmp_path / "tok")}})


def test_parts_b_and_c_run_on_external_llama_checkpoints(workflow_copy, llama_revisions):
    override = workflow_copy / "external.yaml"
    override.write_text(yaml.safe_dump(external_config(llama_revisions)))
    targets = [f"results/claims/{c}.json" for c in ("B1", "B2", "B3", "C1", "C2")]  # under the smoke workdir
    proc = snakemake(workflow_copy, *targets, "--cores", "2", "--configfile", "config/smoke.yaml", str(override))
    assert "import_checkpoint" in proc.stdout + proc.stderr
    assert "rule pretrain" not in proc.stdout + proc.stderr
    for step in (10, 20):
        cfg = json.loads((workflow_copy / SMOKE_OUT / f"results/pretrain/member_0/step_{step}/config.json").read_text())
        assert cfg["model_type"] == "llama"
    for t in targets:
        rec = json.loads((workflow_copy / SMOKE_OUT / t).read_text())
        assert rec["verdict"] in {"PASS", "FAIL", "INCONCLUSIVE"}
        assert len(rec["member_verdicts"]) in (0, 1)  # one external trajectory: an ensemble of one member


def edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, **changes}))


def test_weights_of_another_shape_than_config_json_are_named(tmp_path):
    folder = save_llama(tmp_path / "shape", seed=0)
    edit_config(folder, intermediate_size=48)
    problem = check(folder)
    assert f"do not match the architecture of {folder / 'config.json'}" in problem, problem
    assert "mismatched keys: model.layers.0.mlp.down_proj.weight (file (32, 64), config (32, 48))" in problem
    assert str(folder / "model.safetensors") in problem


def test_non_finite_weights_are_named(tmp_path):
    folder = save_llama(tmp_path / "nan", seed=0)
    weights = load_file(folder / "model.safetensors")
    weights["model.norm.weight"][0] = float("nan")
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    problem = check(folder)
    assert "not finite" in problem and "model.norm.weight" in problem and "model.safetensors" in problem, problem


@pytest.mark.parametrize("keep", [4, 0.5])
def test_a_truncated_weights_file_is_named(tmp_path, keep):
    folder = save_llama(tmp_path / "cut", seed=0)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:keep if isinstance(keep, int) else int(len(data) * keep)])
    problem = check(folder)
    assert f"the weights file {folder / 'model.safetensors'} cannot be read, it is truncated" in problem, problem


def test_a_tokenizer_larger_than_the_vocabulary_is_named(tmp_path):
    folder = save_llama(tmp_path / "small_vocab", seed=0)
    weights = load_file(folder / "model.safetensors")
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        weights[key] = weights[key][:10].clone()
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    edit_config(folder, vocab_size=10)
    problem = check(folder)
    assert "more than the 10 rows of the model's vocabulary" in problem and "config.json" in problem, problem


def test_a_folder_without_a_tokenizer_says_so(tmp_path):
    folder = save_llama(tmp_path / "no_tok", seed=0)
    for f in folder.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            f.unlink()
    problem = check(folder)
    assert "holds no tokenizer (none of tokenizer.json" in problem and "`external.tokenizer`" in problem, problem
    assert check(folder, str(tmp_path.parent / "no_such")) is not None
    assert check(folder, llama_tokenizer(tmp_path)) is None  # its tokenizer named in external.tokenizer


def llama_tokenizer(tmp_path):
    build_tokenizer().save_pretrained(tmp_path / "tok")
    return str(tmp_path / "tok")


def test_a_bad_external_model_stops_snakemake_before_any_job(workflow_copy, llama_revisions, tmp_path):
    folder = save_llama(tmp_path / "nan", seed=0)
    weights = load_file(folder / "model.safetensors")
    weights["lm_head.weight"][:] = float("inf")
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    override = workflow_copy / "external.yaml"
    override.write_text(yaml.safe_dump(external_config([llama_revisions[0], str(folder)])))
    proc = snakemake(workflow_copy, "-n", "--configfile", "config/smoke.yaml", str(override), check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Invalid config: config key `external.checkpoints[1].path`: the weights in" in out, out[-3000:]
    assert "not finite" in out and "Traceback" not in out


def test_overwritten_external_weights_rerun_the_import(workflow_copy, tmp_path):
    """External checkpoints are inputs by content: new weights in the same folder rerun the import (and, through
    its newer output, everything downstream); untouched weights do not, even when their files are touched.
    Issue 31: the paths are relative to the config file that names them (configs/external.yaml), and the import
    job, which runs inside the smoke config's workdir (runs/smoke), reads the folders the check read."""
    for i in range(2):
        save_llama(tmp_path / f"rev_{i}", seed=i)
    os.symlink(tmp_path, workflow_copy / "ext")
    (workflow_copy / "configs").mkdir()
    override = workflow_copy / "configs/external.yaml"
    override.write_text(yaml.safe_dump(external_config([f"../ext/rev_{i}" for i in range(2)])))
    target = "results/pretrain/member_0/step_20"
    args = (target, "--cores", "1", "--configfile", "config/smoke.yaml", str(override))
    snakemake(workflow_copy, *args)
    manifest = json.loads((workflow_copy / SMOKE_OUT / target / "manifest.json").read_text())
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(manifest["files"])
    assert "Nothing to be done" in snakemake(workflow_copy, "-n", *args).stdout
    os.utime(tmp_path / "rev_1/model.safetensors")  # same content, a newer mtime: still nothing to do
    assert "Nothing to be done" in snakemake(workflow_copy, "-n", *args).stdout
    save_llama(tmp_path / "rev_1", seed=7)  # new weights, same folder
    dry = snakemake(workflow_copy, "-n", *args)
    assert "import_checkpoint" in dry.stdout and "Params have changed" in dry.stdout, dry.stdout[-3000:]
    snakemake(workflow_copy, *args)
    assert json.loads((workflow_copy / SMOKE_OUT / target / "manifest.json").read_text()) != manifest
