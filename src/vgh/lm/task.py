"""The verifiable task: "a+b=" with d-digit operands, answer = the L = d + 1 digit sum (zero-padded).

Data prep builds, from one seeded generator, three splits saved as parquet with `datasets`:
eval prompts, RL prompts and a pretraining corpus, pairwise disjoint as *unordered* pairs {a, b} (rule R1: addition
commutes, so a corpus string b+a= would teach an eval prompt a+b=). A fraction rho of
pretraining answers is corrupted to the no-carry sum (digit-wise sum mod 10), a plausible systematic error.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import datasets
    import torch
    import transformers

DIGITS = "0123456789"
SPECIAL = ["<pad>", "<bos>", "<eos>", "<unk>"]
VOCAB = SPECIAL + list(DIGITS) + ["+", "="]


def answer_length(digits: int) -> int:
    """L: the number of answer digits."""
    return digits + 1


PROMPT_TEMPLATE = "{a}+{b}="


def prompt_text(a: int, b: int, digits: int, template: str = PROMPT_TEMPLATE) -> str:
    """The prompt with zero-padded operands, e.g. "07+45=" for the default template."""
    return template.format(a=f"{a:0{digits}d}", b=f"{b:0{digits}d}")


def true_answer(a: int, b: int, digits: int) -> str:
    return f"{a + b:0{digits + 1}d}"


def no_carry_answer(a: int, b: int, digits: int) -> str:
    """Digit-wise sum mod 10 (carries dropped), zero-padded to L digits."""
    sa, sb = f"{a:0{digits}d}", f"{b:0{digits}d}"
    return "0" + "".join(str((int(x) + int(y)) % 10) for x, y in zip(sa, sb))


def has_carry(a: int, b: int, digits: int) -> bool:
    return no_carry_answer(a, b, digits) != true_answer(a, b, digits)


def unordered_pairs(digits: int) -> int:
    """The number of unordered operand pairs {a, b} (a <= b) with `digits`-digit operands."""
    n = 10**digits
    return n * (n + 1) // 2


def split_ids(digits: int, n_rl: int, n_eval: int, rng: np.random.Generator):
    """(eval ids, RL ids, pretraining id space) as prompt ids a * 10^d + b. Unordered pairs {a, b} are shuffled;
    the first n_eval are eval, the next n_rl RL (each in a random orientation); every orientation of the rest
    is the pretraining space."""
    n = 10**digits
    a, b = np.triu_indices(n)  # a <= b: every unordered pair once
    order = rng.permutation(len(a))
    a, b = a[order], b[order]
    held = n_eval + n_rl
    flip = rng.random(held) < 0.5
    ha = np.where(flip, b[:held], a[:held])
    hb = np.where(flip, a[:held], b[:held])
    ids = ha * n + hb
    ra, rb = a[held:], b[held:]
    rest = np.concatenate([ra * n + rb, (rb * n + ra)[ra != rb]])
    return ids[:n_eval], ids[n_eval:], np.sort(rest)


def make_splits(digits: int, n_pretrain: int, n_rl: int, n_eval: int, corruption_rate: float,
                rng: np.random.Generator, template: str = PROMPT_TEMPLATE) -> dict[str, "datasets.Dataset"]:
    """The three splits as `datasets.Dataset`s with columns a, b, prompt, answer (+ text, corrupted for pretrain).

    Eval and RL prompts are distinct unordered pairs {a, b}, each shown in one orientation drawn at random; the
    pretraining corpus draws (with replacement) from both orientations of the remaining pairs only, so neither a
    held-out prompt nor its twin b+a= is seen in pretraining or in the other prompt split (`split_ids`).
    """
    import datasets

    n_pairs = unordered_pairs(digits)
    if n_rl + n_eval > n_pairs // 2:
        raise ValueError(f"n_rl + n_eval = {n_rl + n_eval} must be at most half of the {n_pairs} unordered pairs")
    eval_ids, rl_ids, pre_space = split_ids(digits, n_rl, n_eval, rng)
    pre_ids = pre_space[rng.integers(0, len(pre_space), size=n_pretrain)]
    corrupted = rng.random(n_pretrain) < corruption_rate

    def prompts(ids):
        a, b = ids // 10**digits, ids % 10**digits
        return {
            "a": a.tolist(), "b": b.tolist(),
            "prompt": [prompt_text(x, y, digits, template) for x, y in zip(a, b)],
            "answer": [true_answer(x, y, digits) for x, y in zip(a, b)],
            "carry": [has_carry(x, y, digits) for x, y in zip(a, b)],
        }

    pre = prompts(pre_ids)
    pre["answer"] = [no_carry_answer(x, y, digits) if c else ans
                     for x, y, c, ans in zip(pre["a"], pre["b"], corrupted, pre["answer"])]
    pre["corrupted"] = corrupted.tolist()
    pre["text"] = [p + ans for p, ans in zip(pre["prompt"], pre["answer"])]
    return {
        "pretrain": datasets.Dataset.from_dict(pre),
        "rl": datasets.Dataset.from_dict(prompts(rl_ids)),
        "eval": datasets.Dataset.from_dict(prompts(eval_ids)),
    }


def build_tokenizer() -> "transformers.PreTrainedTokenizerFast":
    """Character-level tokenizer built with `tokenizers`: one token per character, a <bos> prepended."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")


def digit_token_ids(tokenizer) -> "torch.Tensor":
    """Token ids of '0'..'9'; each digit must be exactly one token."""
    import torch

    ids = []
    for d in DIGITS:
        enc = tokenizer(d, add_special_tokens=False)["input_ids"]
        if len(enc) != 1:
            raise ValueError(f"tokenizer splits digit {d!r} into {len(enc)} tokens; the digit-restricted "
                             "policy needs each of 0-9 as a single token")
        if enc[0] == tokenizer.unk_token_id:
            raise ValueError(f"tokenizer has no token for digit {d!r} (it maps to the unknown token)")
        ids.append(enc[0])
    if len(set(ids)) != 10:
        raise ValueError("tokenizer maps different digits to the same token")
    return torch.tensor(ids, dtype=torch.long)


def encode_prompts(tokenizer, prompts: list[str]) -> "torch.Tensor":
    """[N, P] token ids (with <bos>); every prompt of a split has the same length, so no padding."""
    import torch

    enc = [tokenizer(p)["input_ids"] for p in prompts]
    if len({len(e) for e in enc}) != 1:
        raise ValueError("prompts tokenize to different lengths; expected fixed-width operands")
    return torch.tensor(enc, dtype=torch.long)


def answer_indices(answers: list[str]) -> "torch.Tensor":
    """[N, L] digit values 0..9 of the answers (indices into the digit-restricted policy)."""
    import torch

    return torch.tensor([[int(c) for c in a] for a in answers], dtype=torch.long)


def encode_split(tokenizer, frame, device: "str | torch.device" = "cpu",
                 n_prompts: int | None = None) -> "tuple[torch.Tensor, torch.Tensor]":
    """(prompt_ids [N, P], answers [N, L] digit values) of the first `n_prompts` rows (default: all) of a
    prompt split with columns `prompt`, `answer`. Splits are stored in a seeded random order, so the first
    rows are a random subset."""
    if n_prompts is not None:
        if n_prompts > len(frame):
            raise ValueError(f"n_prompts = {n_prompts} but the split has only {len(frame)} prompts")
        frame = frame.iloc[:n_prompts]
    return (encode_prompts(tokenizer, list(frame["prompt"])).to(device),
            answer_indices(list(frame["answer"])).to(device))
