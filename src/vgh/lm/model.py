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


CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx", "seq_length", "max_sequence_length")


def check_external_checkpoint(path: str, tokenizer_path: str | None, prompt_template: str,
                              digits: int) -> str | None:
    """Why a user-supplied checkpoint folder cannot be analysed, or None when it can.

    It must be a decoder-only causal LM: a causal-LM model type and architecture, not an encoder-decoder, and
    logits that do not depend on later tokens (an encoder such as BERT in an LM-head class fails this). Every
    weight the architecture needs must load from the folder (no missing, unexpected or mis-shaped keys: a
    missing LM head would otherwise be initialised at random). Its context must hold the longest prompt of
    `prompt_template` with `digits`-digit operands plus the L = digits + 1 answer digits, and its tokenizer
    (its own or `tokenizer_path`) must have each of the ten digits as a single token.
    """
    from pathlib import Path

    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from .task import answer_length, digit_token_ids, prompt_text

    if not Path(path).is_dir():
        return f"folder {path!r} does not exist"
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
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer_path or path)
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
    try:
        model, info = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager",
                                                           output_loading_info=True)
    except (OSError, ValueError) as err:
        return f"{path!r} holds no loadable model weights ({str(err).splitlines()[0]})"
    wrong = {kind: sorted(map(str, info.get(kind) or [])) for kind in ("missing_keys", "unexpected_keys",
                                                                          "mismatched_keys")}
    wrong = {kind: keys for kind, keys in wrong.items() if keys}
    if wrong:
        listed = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(keys[:5])}" + (" ..." if len(keys) > 5 else "")
                           for kind, keys in wrong.items())
        return f"the weights in {path!r} do not match its architecture ({listed})"
    if not _is_causal(model.eval(), prompt_ids + [int(digit_ids[0])] * answer_length(digits), int(digit_ids[1])):
        return (f"{path!r} is not a causal LM: its logits at earlier positions change with a later token "
                "(an encoder, or a decoder class without `is_decoder`)")
    return None


@torch.no_grad()
def _is_causal(model, ids: list[int], other_token: int) -> bool:
    """Whether changing the last token leaves every earlier position's logits unchanged."""
    a = torch.tensor([ids])
    b = a.clone()
    b[0, -1] = other_token
    la, lb = model(input_ids=a).logits[0, :-1], model(input_ids=b).logits[0, :-1]
    return bool(torch.allclose(la, lb, rtol=1e-4, atol=1e-5 * float(la.abs().max().clamp_min(1.0))))


def import_checkpoint(src: str, dest: str, tokenizer_path: str | None = None) -> None:
    """Copy a user-supplied causal LM (and its tokenizer) into the workflow's checkpoint layout.

    The folder was checked by `check_external_checkpoint` when the config was validated, before any job.
    """
    from transformers import AutoTokenizer

    load_model(src).save_pretrained(dest)
    AutoTokenizer.from_pretrained(tokenizer_path or src).save_pretrained(dest)
