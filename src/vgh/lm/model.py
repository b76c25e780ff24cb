"""Tiny GPT-2-style causal LMs, built from a config and saved / loaded in Hugging Face format."""
from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from ..io import rebuild_hint
from .checkpoints import CheckpointError, verify_checkpoint, weight_files


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
    """Load a Hugging Face causal-LM folder with eager attention (gradients through attention are needed).

    The folder's manifest is checked first (`verify_checkpoint`); a file that does not load raises CheckpointError
    naming the folder, its weight files and how to rebuild it."""
    verify_checkpoint(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=dtype)
    except Exception as err:
        if not isinstance(err, (OSError, ValueError, RuntimeError)) and type(err).__name__ != "SafetensorError":
            raise
        raise CheckpointError(f"cannot load checkpoint {path} (weight files: {', '.join(weight_files(path))}): "
                              f"{type(err).__name__}: {str(err).splitlines()[0]}; {rebuild_hint(path)}") from err
    return model.to(device).eval()


def load_checkpoint(path: str, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"):
    """(model, tokenizer, digit_ids) from a Hugging Face folder holding a causal LM and its tokenizer."""
    from transformers import AutoTokenizer

    from .task import digit_token_ids

    model = load_model(path, dtype=dtype, device=device)
    tok = AutoTokenizer.from_pretrained(path)
    return model, tok, digit_token_ids(tok).to(device)
