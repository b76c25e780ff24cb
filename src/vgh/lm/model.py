"""Tiny GPT-2-style causal LMs, built from a config and saved / loaded in Hugging Face format."""
from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel


def build_model(vocab_size: int, n_positions: int, n_layer: int, n_head: int, n_embd: int,
                seed: int) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 (eager attention, no dropout). Init draws from `seed` only: the global
    torch generator is forked and restored, so nothing outside this call is affected."""
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                     n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation="eager",
                     activation_function="gelu_pytorch_tanh")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(cfg)
    return model.eval()


def load_model(path: str, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """Load a Hugging Face causal-LM folder with eager attention (gradients through attention are needed)."""
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=dtype)
    return model.to(device).eval()



def load_checkpoint(path: str, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"):
    """(model, tokenizer, digit_ids) from a Hugging Face folder holding a causal LM and its tokenizer."""
    from transformers import AutoTokenizer

    from .task import digit_token_ids

    tok = AutoTokenizer.from_pretrained(path)
    model = load_model(path, dtype=dtype, device=device)
    return model, tok, digit_token_ids(tok).to(device)


def check_external_checkpoint(path: str, tokenizer_path: str | None = None) -> str | None:
    """Why a user-supplied checkpoint folder cannot be analysed, or None when it can.

    It must exist, hold a causal-LM config that `AutoModelForCausalLM` knows, and come with a tokenizer (its
    own or `tokenizer_path`) that has each of the ten digits as a single token.
    """
    from pathlib import Path

    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from .task import digit_token_ids

    if not Path(path).is_dir():
        return f"folder {path!r} does not exist"
    try:
        cfg = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        return f"{path!r} is not a Hugging Face model folder ({str(err).splitlines()[0]})"
    if cfg.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return f"{path!r} holds a {cfg.model_type!r} model, which is not a causal LM"
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer_path or path)
    except (OSError, ValueError) as err:
        return f"no tokenizer for {path!r} ({str(err).splitlines()[0]}); set `external.tokenizer`"
    try:
        digit_token_ids(tok)
    except ValueError as err:
        return f"the tokenizer of {path!r} does not suit the digit-restricted policy: {err}"
    return None


def import_checkpoint(src: str, dest: str, tokenizer_path: str | None = None) -> None:
    """Copy a user-supplied causal LM (and its tokenizer) into the workflow's checkpoint layout."""
    from transformers import AutoTokenizer

    problem = check_external_checkpoint(src, tokenizer_path)
    if problem:
        raise ValueError(problem)
    load_model(src).save_pretrained(dest)
    AutoTokenizer.from_pretrained(tokenizer_path or src).save_pretrained(dest)
