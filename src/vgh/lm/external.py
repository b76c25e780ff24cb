"""External checkpoints: user-supplied Hugging Face causal-LM folders that replace pretraining (`external` in the
config). Each is checked once before any job (`check_external_checkpoints`, run by workflow/rules/pretrain.smk), which
also returns a sha256 of each folder's content: the import rule takes it as a param, so overwritten weights rerun the
import and everything downstream. `import_checkpoint` copies one into the trajectory layout, with a manifest.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from .checkpoints import folder_sha256, weight_files, write_manifest

CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx", "seq_length", "max_sequence_length")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model", "spiece.model")


def check_external_checkpoints(config: dict[str, Any]) -> dict[int, str]:
    """Check every folder of `external.checkpoints` (and `external.tokenizer`) of a validated config; return
    {step: sha256 of the folder's files and the tokenizer folder's}. Raises ConfigError naming the entry."""
    from ..config import ConfigError

    ext = config["external"]
    tok = ext.get("tokenizer")
    if tok is not None and (problem := check_tokenizer(tok)) is not None:  # blamed on the tokenizer, not a folder
        raise ConfigError(f"config key `external.tokenizer`: {problem}")
    digests = {}
    for i, e in enumerate(ext["checkpoints"]):
        problem = check_external_checkpoint(e["path"], tok, config["data"]["prompt_template"],
                                            config["data"]["digits"])
        if problem is not None:
            raise ConfigError(f"config key `external.checkpoints[{i}].path`: {problem}")
        digests[e["step"]] = folder_sha256(e["path"], tok)
    return digests


def check_tokenizer(folder: str) -> str | None:
    """Why `folder` cannot serve as the tokenizer of external checkpoints (`external.tokenizer`), or None: it must
    exist, hold a tokenizer that loads, and have each of the ten digits as a single token."""
    from transformers import AutoTokenizer

    from .task import digit_token_ids

    if not Path(folder).is_dir():
        return f"folder {folder!r} does not exist"
    if not any((Path(folder) / name).exists() for name in TOKENIZER_FILES):
        return f"folder {folder!r} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)})"
    try:
        digit_token_ids(AutoTokenizer.from_pretrained(folder))
    except (OSError, ValueError) as err:
        return f"the tokenizer in {folder!r} does not suit the digit-restricted policy: {str(err).splitlines()[0]}"
    return None


def check_external_checkpoint(path: str, tokenizer_path: str | None, prompt_template: str,
                              digits: int) -> str | None:
    """Why a user-supplied checkpoint folder cannot be analysed, or None when it can. Each reason names the file.

    It must be a decoder-only causal LM: a causal-LM model type and architecture, not an encoder-decoder, and
    logits that do not depend on later tokens (an encoder such as BERT in an LM-head class fails this). Every
    weight the architecture needs must load from the folder (no missing, unexpected or mis-shaped keys: a
    missing LM head would otherwise be initialised at random), whole (not truncated) and finite. Its context must
    hold the longest prompt of `prompt_template` with `digits`-digit operands plus the L = digits + 1 answer digits,
    and its tokenizer (its own or `tokenizer_path`) must fit its vocabulary and have each of the ten digits as a
    single token.
    """
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from .task import answer_length, digit_token_ids, prompt_text

    if not Path(path).is_dir():
        return f"folder {path!r} does not exist"
    config_file = Path(path) / "config.json"
    try:
        cfg = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        return f"{path!r} is not a Hugging Face model folder ({str(err).splitlines()[0]})"
    if cfg.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return f"{path!r} holds a {cfg.model_type!r} model, which is not a causal LM"
    if getattr(cfg, "is_encoder_decoder", False):
        return f"{path!r} holds an encoder-decoder model; only decoder-only causal LMs can be analysed"
    archs = list(cfg.architectures or [])
    if not archs or not set(archs) <= set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()):
        return (f"{path!r} has architecture {archs or 'unknown'}, not a causal-LM head "
                f"(e.g. {MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[cfg.model_type]})")
    tok_folder = tokenizer_path or path
    if not any((Path(tok_folder) / name).exists() for name in TOKENIZER_FILES):
        where = "`external.tokenizer`" if tokenizer_path else f"{path!r}"
        return (f"{where} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)} in {tok_folder!r}); set "
                f"`external.tokenizer` to the folder of the model's tokenizer")
    try:
        tok = AutoTokenizer.from_pretrained(tok_folder)
    except (OSError, ValueError) as err:
        return f"no tokenizer for {path!r} ({str(err).splitlines()[0]}); set `external.tokenizer`"
    try:
        digit_ids = digit_token_ids(tok)
    except ValueError as err:
        return f"the tokenizer of {path!r} does not suit the digit-restricted policy: {err}"
    top = 10 ** digits - 1
    prompt_ids = tok(prompt_text(top, top, digits, prompt_template))["input_ids"]
    needed = len(prompt_ids) + answer_length(digits)
    context = next((getattr(cfg, k) for k in CONTEXT_KEYS if isinstance(getattr(cfg, k, None), int)), None)
    if context is not None and context < needed:
        return (f"{path!r} has a context of {context} tokens, shorter than prompt + answer ({len(prompt_ids)} + "
                f"{answer_length(digits)} = {needed} tokens)")
    problem, model = _load_weights(path, config_file)
    if problem:
        return problem
    rows = model.get_input_embeddings().num_embeddings
    if len(tok) > rows:
        return (f"the tokenizer in {tok_folder!r} has {len(tok)} tokens, more than the {rows} rows of the model's "
                f"vocabulary ({config_file}: vocab_size {getattr(cfg, 'vocab_size', '?')}): token ids beyond it "
                f"cannot be embedded; use the tokenizer the model was trained with (`external.tokenizer`)")
    if not _is_causal(model.eval(), prompt_ids + [int(digit_ids[0])] * answer_length(digits), int(digit_ids[1])):
        return (f"{path!r} is not a causal LM: its logits at earlier positions change with a later token "
                "(an encoder, or a decoder class without `is_decoder`)")
    return None


def _load_weights(path: str, config_file: Path):
    """(problem, None) or (None, model): the folder's weights, whole, finite and of the shapes its config.json says."""
    files = ", ".join(weight_files(path)) or f"no weight file in {path!r}"
    try:
        model, info = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager",
                                                           output_loading_info=True, ignore_mismatched_sizes=True)
    except (OSError, ValueError) as err:
        return f"{path!r} holds no loadable model weights ({str(err).splitlines()[0]})", None
    except Exception as err:  # safetensors' SafetensorError (a truncated file), torch's RuntimeError
        if not isinstance(err, RuntimeError) and type(err).__name__ != "SafetensorError":
            raise
        return (f"the weights file {files} cannot be read, it is truncated or damaged ({type(err).__name__}: "
                f"{str(err).splitlines()[0]}); download it again"), None
    wrong = {kind: sorted(map(_key_text, info.get(kind) or [])) for kind in ("missing_keys", "unexpected_keys",
                                                                            "mismatched_keys")}
    wrong = {kind: keys for kind, keys in wrong.items() if keys}
    if wrong:
        listed = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(keys[:5])}" + (" ..." if len(keys) > 5 else "")
                           for kind, keys in wrong.items())
        return f"the weights in {files} do not match the architecture of {config_file} ({listed})", None
    bad = [name for name, t in [*model.named_parameters(), *model.named_buffers()]
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        return (f"the weights in {files} are not finite (NaN or infinite values in {', '.join(bad[:5])}"
                + (" ..." if len(bad) > 5 else "") + ")"), None
    return None, model


def _key_text(key) -> str:
    """A loading-info key: a name, or (name, checkpoint shape, model shape) for a mismatch."""
    if isinstance(key, tuple) and len(key) == 3:
        return f"{key[0]} (file {tuple(key[1])}, config {tuple(key[2])})"
    return str(key)


@torch.no_grad()
def _is_causal(model, ids: list[int], other_token: int) -> bool:
    """Whether changing the last token leaves every earlier position's logits unchanged."""
    a = torch.tensor([ids])
    b = a.clone()
    b[0, -1] = other_token
    la, lb = model(input_ids=a).logits[0, :-1], model(input_ids=b).logits[0, :-1]
    return bool(torch.allclose(la, lb, rtol=1e-4, atol=1e-5 * float(la.abs().max().clamp_min(1.0))))


def import_checkpoint(src: str, dest: str, tokenizer_path: str | None = None, sha256: str | None = None) -> None:
    """Copy a user-supplied causal LM (and its tokenizer) into the workflow's checkpoint layout, with a manifest;
    `dest` appears whole by one rename. The folder was checked by `check_external_checkpoints` before any job, which
    gave its content's `sha256`: a folder that changed since raises RuntimeError."""
    from transformers import AutoTokenizer

    from .model import load_model

    if sha256 is not None and folder_sha256(src, tokenizer_path) != sha256:
        raise RuntimeError(f"external checkpoint {src!r} changed after the workflow checked it; run again")
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        load_model(src).save_pretrained(tmp)
        AutoTokenizer.from_pretrained(tokenizer_path or src).save_pretrained(tmp)
        write_manifest(tmp)
    except BaseException:  # a failed import (a full disk) leaves no partial folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
