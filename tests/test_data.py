"""Data prep: deterministic given the seed, splits disjoint as unordered pairs (R1), corruption rate, tokenizer."""
import numpy as np
import pytest
from transformers import AutoTokenizer

from vgh.lm.task import (
    answer_indices,
    build_tokenizer,
    digit_token_ids,
    encode_prompts,
    has_carry,
    make_splits,
    no_carry_answer,
    true_answer,
    unordered_pairs,
)


def splits(seed, rho=0.3):
    return make_splits(2, 3000, 100, 120, rho, np.random.default_rng(seed))


def test_deterministic_given_seed():
    a, b = splits(1), splits(1)
    for name in a:
        assert a[name].to_pandas().equals(b[name].to_pandas())
    assert not a["eval"].to_pandas().equals(splits(2)["eval"].to_pandas())


def test_splits_are_disjoint_as_unordered_pairs_and_sized():
    s = splits(0)
    pairs = {k: {frozenset((a, b)) for a, b in zip(v["a"], v["b"])} for k, v in s.items()}
    assert len(pairs["eval"]) == 120 and len(pairs["rl"]) == 100
    assert not pairs["eval"] & pairs["rl"]  # no prompt's twin b+a= in the other split ...
    assert not pairs["pretrain"] & (pairs["eval"] | pairs["rl"])  # ... nor in the pretraining corpus
    assert len(s["pretrain"]) == 3000
    # the held-out prompts come in both orientations (a > b and a < b), and so does the corpus
    for name in ("eval", "pretrain"):
        a, b = np.asarray(s[name]["a"]), np.asarray(s[name]["b"])
        assert (a > b).any() and (a < b).any()


def test_split_sizes_are_checked_against_the_unordered_pairs():
    assert unordered_pairs(1) == 55 and unordered_pairs(2) == 5050
    make_splits(1, 10, 13, 14, 0.0, np.random.default_rng(0))  # 27 = half of 55 held out
    with pytest.raises(ValueError, match="at most half of the 55 unordered pairs"):
        make_splits(1, 10, 14, 14, 0.0, np.random.default_rng(0))


def test_answers_and_corruption():
    s = splits(0, rho=0.3)
    pre = s["pretrain"].to_pandas()
    for r in pre.itertuples():
        expected = no_carry_answer(r.a, r.b, 2) if r.corrupted else true_answer(r.a, r.b, 2)
        assert r.answer == expected and r.text == r.prompt + r.answer and len(r.answer) == 3
    # the corruption flag is drawn at rate rho (binomial 4-sigma band)
    n, rho = len(pre), 0.3
    assert abs(pre.corrupted.mean() - rho) < 4 * np.sqrt(rho * (1 - rho) / n)
    ev = s["eval"].to_pandas()
    assert all(int(r.answer) == r.a + r.b for r in ev.itertuples())
    assert has_carry(15, 27, 2) and not has_carry(12, 34, 2)
    assert no_carry_answer(15, 27, 2) == "032" and true_answer(15, 27, 2) == "042"


def test_tokenizer_round_trip_and_reload(tmp_path):
    tok = build_tokenizer()
    text = "07+45=052"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1
    assert tok.decode(ids, skip_special_tokens=True) == text
    tok.save_pretrained(tmp_path / "tok")
    again = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert again(text)["input_ids"] == ids
    assert again.decode(ids, skip_special_tokens=True) == text
    assert digit_token_ids(again).tolist() == digit_token_ids(tok).tolist()
    assert len(set(digit_token_ids(tok).tolist())) == 10


def test_prompt_encoding_shapes():
    tok = build_tokenizer()
    p = encode_prompts(tok, ["07+45=", "99+99="])
    assert p.shape == (2, 7)
    assert answer_indices(["052", "198"]).tolist() == [[0, 5, 2], [1, 9, 8]]
    with pytest.raises(ValueError):
        encode_prompts(tok, ["7+45=", "07+45="])
