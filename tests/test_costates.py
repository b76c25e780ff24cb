"""Part B library: exact enumeration, costates, update directions and the B1-B3 checks (tiny models, float64).

Statistical tests compare a sample mean with an exact expectation using the sample's own standard error
(|z| <= 4.5 for every coordinate), with fixed seeds.
"""
import numpy as np
import pandas as pd
import pytest
import torch

from vgh.lm import alignment as AL
from vgh.lm import costates as C
from vgh.lm import enumeration as E
from vgh.lm import measure as M
from vgh.lm.checks import check_b1, check_b2, check_b3, through_origin_fit
from vgh.lm.model import build_model
from vgh.lm.policy import all_completions, sample_completions, sequence_logprob
from vgh.lm.task import (answer_indices, build_tokenizer, digit_token_ids, encode_prompts, has_carry,
                         prompt_text, true_answer)
from vgh.lm.updates import advantages, grpo_advantages, rloo_advantages

Z_MAX = 4.5


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one torch thread is faster (and avoids spinning against parallel jobs on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def digits(tok):
    return digit_token_ids(tok)


def _prompts(tok, pairs, d):
    ids = encode_prompts(tok, [prompt_text(a, b, d) for a, b in pairs])
    ans = answer_indices([true_answer(a, b, d) for a, b in pairs])
    return ids, ans


@pytest.fixture(scope="module")
def random_model(tok):
    """Random tiny GPT-2 (n_embd 16) in float64; 2-digit operands, L = 3."""
    return build_model(len(tok), 10, 2, 2, 16, seed=0).double()


@pytest.fixture(scope="module")
def two_digit(tok):
    return _prompts(tok, [(7, 45), (12, 33), (99, 99), (50, 50)], 2)


@pytest.fixture(scope="module")
def trained(tok):
    """A tiny GPT-2 (n_embd 32) trained briefly on 1-digit addition (L = 2), so the policy is confident and
    non-uniform. Returns (float64 model, prompt ids, answers, carry flags) over all 100 prompts."""
    pairs = [(a, b) for a in range(10) for b in range(10)]
    data = encode_prompts(tok, [prompt_text(a, b, 1) + true_answer(a, b, 1) for a, b in pairs])
    model = build_model(len(tok), data.shape[1], 2, 2, 32, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(400):  # float32 on one thread (fixture one_thread): the same model everywhere
        batch = data[torch.randint(0, len(data), (64,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    ids, ans = _prompts(tok, pairs, 1)
    carry = torch.tensor([has_carry(a, b, 1) for a, b in pairs])
    return model.eval().double(), ids, ans, carry


def _assert_within_se(samples: torch.Tensor, exact: torch.Tensor, what: str):
    """samples [M, ...] i.i.d. with mean `exact`: every coordinate within Z_MAX standard errors."""
    m = samples.shape[0]
    se = samples.std(0) / m ** 0.5
    z = (samples.mean(0) - exact).abs() / se.clamp_min(1e-300)
    assert (se > 0).all(), f"{what}: zero spread in the samples"
    assert float(z.max()) <= Z_MAX, f"{what}: max |z| = {float(z.max()):.2f} over {z.numel()} coordinates"


# ----------------------------------------------------------------------------------- enumeration


@pytest.mark.parametrize("tau", [0.25, 1.0, 2.0])
def test_enumeration_sums_to_one_and_matches_teacher_forcing(random_model, two_digit, digits, tau):
    ids, ans = two_digit
    enum = E.enumerate_policy(random_model, E.prompt_embeddings(random_model, ids), digits, 3, tau)
    total = enum.logP.exp().sum(-1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-12, rtol=0)
    comps = all_completions(3)
    direct = sequence_logprob(random_model, ids.repeat_interleave(len(comps), 0), comps.repeat(len(ids), 1),
                              digits, tau).view(len(ids), -1)
    assert torch.allclose(enum.logP, direct, atol=1e-12, rtol=0)
    # the KV-cached group log-probabilities agree too
    lp = AL.group_logprob(random_model, ids, comps[:7][None].expand(len(ids), -1, -1), digits, tau)
    assert torch.allclose(lp, direct[:, :7], atol=1e-12, rtol=0)


def test_value_gradient_matches_central_finite_differences(random_model, two_digit, digits):
    ids, ans = two_digit
    tau = 0.7
    _, g = C.value_and_gradient(random_model, ids, ans, digits, tau)
    x0 = E.state_leaf(random_model, ids).detach()
    emb = E.prompt_embeddings(random_model, ids).detach()

    def value(x):
        e = E.enumerate_policy(random_model, E.with_state(emb, x), digits, 3, tau)
        return (e.logP.exp() * E.rewards_all(e.completions, ans, "partial")).sum(-1)

    h = 1e-5
    fd = torch.zeros_like(g)
    with torch.no_grad():
        for i in range(g.shape[1]):
            d = torch.zeros_like(x0)
            d[:, i] = h
            fd[:, i] = (value(x0 + d) - value(x0 - d)) / (2 * h)
    assert float((fd - g).norm() / g.norm()) < 1e-7


def test_value_gradient_equals_score_function_identity(random_model, two_digit, digits):
    """g* = sum_y P(y) R(y) grad_x log P(y), with the per-completion scores from separate forwards."""
    ids, ans = two_digit
    tau = 1.0
    _, g = C.value_and_gradient(random_model, ids, ans, digits, tau, reward="exact")
    comps = all_completions(3)
    k = len(comps)
    scores = C.score_costates(random_model, ids.repeat_interleave(k, 0), comps.repeat(len(ids), 1), digits,
                              tau).view(len(ids), k, -1)
    enum = E.enumerate_policy(random_model, E.prompt_embeddings(random_model, ids), digits, 3, tau)
    w = (enum.logP.exp() * E.rewards_all(comps, ans, "exact")).detach()
    assert torch.allclose((w[..., None] * scores).sum(1), g, atol=1e-12, rtol=1e-9)


# ----------------------------------------------------------------------------------- costates


def test_sf_costate_is_unbiased(random_model, tok, digits):
    """Mean of many lambda_SF estimates (N = 8, leave-one-out baseline) -> g*. A random model's policy is
    close to uniform, so the score-function terms are light-tailed and the sample standard error is honest
    (on a confident policy, rare completions with huge scores make a few hundred repeats unreliable)."""
    ids, ans = _prompts(tok, [(3, 4), (9, 9), (5, 0)], 1)
    tau = 1.0
    _, g = C.value_and_gradient(random_model, ids, ans, digits, tau)
    est = C.sf_costates(random_model, ids, ans, digits, tau, "partial", n_samples=8,
                        generator=torch.Generator().manual_seed(1), n_repeats=400)
    _assert_within_se(est, g, "mean lambda_SF vs g*")
    # and the spread is real: a single estimate at N = 8 is far from g*
    assert float((est[0] - g).norm() / g.norm()) > 0.05


@pytest.mark.parametrize("reward", ["partial", "exact"])
def test_exact_pd_expectation_matches_sum_over_completions(random_model, two_digit, digits, reward):
    """The prefix-tree straight-through backward equals the probability-weighted per-completion costates."""
    ids, ans = two_digit
    tau = 0.8
    exact = C.expected_pd_costate(random_model, ids, ans, digits, tau, reward)
    comps = all_completions(3)
    k = len(comps)
    lam = C.pd_costates(random_model, ids.repeat_interleave(k, 0), comps.repeat(len(ids), 1),
                        ans.repeat_interleave(k, 0), digits, tau, reward).view(len(ids), k, -1)
    py = E.enumerate_policy(random_model, E.prompt_embeddings(random_model, ids), digits, 3, tau).logP.exp()
    assert torch.allclose((py.detach()[..., None] * lam).sum(1), exact, atol=1e-13, rtol=1e-9)


def test_exact_pd_expectation_matches_sample_mean(trained, digits):
    model, ids, ans, _ = trained
    ids, ans = ids[[3, 38, 77]], ans[[3, 38, 77]]
    tau, m = 2.0, 1000  # a flatter policy: every prompt samples several completions
    exact = C.expected_pd_costate(model, ids, ans, digits, tau)
    ys = sample_completions(model, ids, digits, 2, tau, m, torch.Generator().manual_seed(2))  # [Q, M, L]
    lam = C.pd_costates(model, ids.repeat_interleave(m, 0), ys.reshape(-1, 2), ans.repeat_interleave(m, 0),
                        digits, tau).view(len(ids), m, -1)
    _assert_within_se(lam.transpose(0, 1), exact, "sample mean of lambda_PD vs exact E[lambda_PD]")
    # the straight-through costate is biased at this temperature: E[lambda_PD] != g*
    _, g = C.value_and_gradient(model, ids, ans, digits, tau)
    assert float((exact - g).norm()) > 1e-3 * float(g.norm())


def test_pd_bias_vanishes_for_a_confident_policy_without_carries(trained, digits):
    """At low tau, E[lambda_PD] -> g* on prompts without a carry where the policy is confident and single-digit
    flips do not move the later greedy digits (the condition under which straight-through sees everything);
    across all prompts the error follows the fraction of flip probability that does move later digits."""
    from scipy.stats import spearmanr

    model, ids, ans, carry = trained
    rel = {}
    for tau in (1.0, 0.25):
        _, g = C.value_and_gradient(model, ids, ans, digits, tau)
        pd_ = C.expected_pd_costate(model, ids, ans, digits, tau)
        rel[tau] = (pd_ - g).norm(dim=-1) / g.norm(dim=-1)
    enum = E.enumerate_policy(model, E.prompt_embeddings(model, ids), digits, 2, 0.25)
    p_ans = enum.logP.detach().exp().gather(1, E.completion_index(ans)[:, None]).squeeze(1)
    _, moving = M.flip_analysis(enum.probs.detach())
    sel = (~carry) & (p_ans > 0.9) & (moving < 1e-3)
    assert int(sel.sum()) >= 10, "the briefly trained model should be confident on no-carry prompts"
    assert float(rel[0.25][sel].max()) < 0.01
    # the bias is larger at a higher temperature on the same prompts
    assert float(rel[1.0][sel].median()) > 10 * float(rel[0.25][sel].median())
    assert spearmanr(moving.numpy(), rel[0.25].numpy()).statistic > 0.5


def test_flip_analysis_on_a_hand_made_table():
    """L = 2, greedy y = (3, 5). Second prompt: after y_1 = 7 the greedy y_2 becomes 1 (a moving flip)."""
    probs = torch.full((2, 100, 2, 10), 0.01, dtype=torch.float64)
    probs[:, :, 0, 3] = 0.85  # p_1 peaks at 3 for every row; flips: 7 (0.07) and eight digits at 0.01
    probs[:, :, 0, 7] = 0.07
    probs[:, :, 1, 5] = 0.91  # p_2 peaks at 5 after any y_1 ...
    probs[1, 70:80, 1, 5] = 0.01
    probs[1, 70:80, 1, 1] = 0.91  # ... except after y_1 = 7 for the second prompt
    greedy, moving = M.flip_analysis(probs)
    assert greedy.tolist() == [[3, 5], [3, 5]]
    flips = 0.15 + 0.09  # all flip probability along y*: position 1 and position 2
    assert moving.tolist() == pytest.approx([0.0, 0.07 / flips])


def test_measure_prompts_columns_and_pooling(random_model, two_digit, digits):
    ids, ans = two_digit
    d = M.measure_prompts(random_model, ids, ans, digits, 1.0, "partial", 16, torch.Generator().manual_seed(0),
                          max_rows=200)  # two prompts per chunk
    assert len(d) == len(ids)
    _, g = C.value_and_gradient(random_model, ids, ans, digits, 1.0)
    assert np.allclose(d["g_norm"], g.norm(dim=-1).numpy(), rtol=1e-10)
    # uniform-ish random policy: entropy close to log 10, E|onehot - p|^2 = 1 - |p|^2 close to 0.9
    assert ((d["entropy"] > 2.2) & (d["entropy"] <= np.log(10) + 1e-12)).all()
    assert np.allclose(d["gap_sq"], 0.9, atol=0.01)
    d["carry"] = [False, False, True, False]
    d["temperature"] = 1.0
    s = M.summarize(d, ["temperature"]).iloc[0]
    assert s["pd_error"] == pytest.approx(d["pd_abs_error"].sum() / d["g_norm"].sum())
    assert s["n_carry"] == 1


# ----------------------------------------------------------------------------------- updates (B3)


def test_advantages_match_hand_computed_values():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]], dtype=torch.float64)
    assert torch.allclose(rloo_advantages(r)[0], torch.tensor([2, -2, -2, 2], dtype=torch.float64) / 3)
    assert torch.allclose(rloo_advantages(r)[1], torch.zeros(4, dtype=torch.float64))
    std = (1 / 3) ** 0.5  # unbiased std of (1, 0, 0, 1)
    expect = torch.tensor([0.5, -0.5, -0.5, 0.5], dtype=torch.float64) / (std + 1e-4)
    assert torch.allclose(grpo_advantages(r)[0], expect)
    assert torch.allclose(grpo_advantages(r)[1], torch.zeros(4, dtype=torch.float64))
    assert torch.allclose(grpo_advantages(r, "none")[0], torch.tensor([0.5, -0.5, -0.5, 0.5], dtype=torch.float64))
    assert torch.equal(advantages(r, "reinforce"), r) and torch.equal(advantages(r, "rloo"), rloo_advantages(r))
    assert torch.equal(advantages(r, "grpo", "none"), grpo_advantages(r, "none"))
    with pytest.raises(ValueError, match="algo must be one of"):
        advantages(r, "ppo_clip")


def test_rloo_direction_is_unbiased_for_the_exact_policy_gradient(trained, digits):
    model, ids, ans, _ = trained
    ids, ans = ids[::25], ans[::25]  # 4 prompts
    tau, g_size, n_batches = 1.0, 4, 150
    _, grad_j, py = AL.objective_gradient(model, ids, ans, digits, tau)
    comps = all_completions(2)
    r_all = E.rewards_all(comps, ans, "partial")
    gen = torch.Generator().manual_seed(3)
    dirs = []
    for _ in range(n_batches):
        idx = torch.multinomial(py, g_size, replacement=True, generator=gen)
        dirs.append(AL.update_directions(model, ids, comps[idx], r_all.gather(1, idx), digits, tau,
                                        algos=("rloo",))["rloo"])
    dirs = torch.stack(dirs)
    # project on grad J and on a few fixed random directions: each mean within its standard error
    basis = torch.cat([grad_j[None] / grad_j.norm(),
                       torch.randn(4, grad_j.numel(), generator=torch.Generator().manual_seed(4),
                                   dtype=torch.float64)])
    _assert_within_se(dirs @ basis.T, basis @ grad_j, "RLOO direction projections vs grad J")


def test_update_alignment_table(trained, digits):
    model, ids, ans, _ = trained
    t = AL.update_alignment(model, ids[::10], ans[::10], digits, 1.0, "partial", [2, 8], 3,
                           torch.Generator().manual_seed(5))
    b = t[t["estimate"] == "batch"]
    assert len(b) == 2 * 3 * 3 and set(b["algo"]) == {"reinforce", "rloo", "grpo"}
    assert b["cosine"].between(-1, 1).all()
    assert np.allclose(b.loc[b["algo"] == "rloo", "cosine_to_rloo"], 1.0)


# ----------------------------------------------------------------------------------- claim checks


def _summary(err, ent, gap, ckpt, tau):
    return pd.DataFrame({"checkpoint": ckpt, "temperature": tau, "pd_error": err, "entropy": ent, "gap": gap,
                         "gap_embed": gap, "gap_sq": np.square(gap), "sf_error": err, "pd_error_median": err})


def test_check_b1_b2_on_synthetic_tables():
    tau = [0.25, 0.5, 1.0] * 2
    ckpt = [1, 1, 1, 2, 2, 2]
    ent = np.array([0.1, 0.5, 1.5, 0.2, 0.8, 2.0])
    s = _summary(0.05 * ent, ent, np.sqrt(ent / 3), ckpt, tau)
    prompts = pd.DataFrame({"checkpoint": [1, 2], "temperature": 0.25, "pd_rel_error": [0.01, 0.5],
                            "pd_abs_error": [0.01, 0.5], "g_norm": 1.0, "carry": [False, True],
                            "prompt": ["a", "b"], "answer": ["1", "2"], "entropy": 0.1, "p_answer": 0.9,
                            "moving_flip_fraction": [0.0, 0.9]})
    c1 = check_b1(s, prompts, {"min_spearman": 0.8, "max_pd_error_lowest_temperature": 0.1})
    assert c1.passed and c1.value == pytest.approx(1.0)
    assert c1.details["n_carry_prompts_lowest_temperature_above_limit"] == 1
    s_bad = s.copy()
    s_bad.loc[3, "pd_error"] = 0.2  # checkpoint 2 at the lowest tau above the limit
    assert not check_b1(s_bad, prompts, {"min_spearman": 0.0, "max_pd_error_lowest_temperature": 0.1}).passed
    line = _summary(0.3 * np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), ent, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], ckpt, tau)
    assert check_b2(line, {"min_r2": 0.99}).passed
    assert through_origin_fit([1, 2, 3], [3, 2, 1])["r2"] < 0  # decreasing: a line through 0 fits badly
    assert not check_b2(_summary([0.6, 0.5, 0.4, 0.3, 0.2, 0.1], ent, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], ckpt, tau),
                        {"min_r2": 0.7}).passed


def test_check_b3_increasing_rule():
    rows = []
    for g, cos in ((2, 0.5), (4, 0.7), (8, 0.92)):
        for b in range(4):
            for a in ("reinforce", "rloo", "grpo"):
                rows.append({"group_size": g, "batch": b, "algo": a, "estimate": "batch",
                             "cosine": cos + 0.01 * b, "cosine_to_rloo": 1.0, "n_params": 10})
    t = pd.DataFrame(rows)
    assert check_b3(t, {"min_rloo_cosine": 0.9}).passed
    t.loc[(t["group_size"] == 4) & (t["algo"] == "rloo"), "cosine"] = 0.3  # dip: not increasing
    c = check_b3(t, {"min_rloo_cosine": 0.9})
    assert not c.passed and c.checks["rloo_cosine_largest_G"]["passed"]
