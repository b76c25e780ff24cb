"""Part B library: exact enumeration, costates, update directions and the B1-B3 checks (tiny models, float64).

Statistical tests compare a sample mean with an exact expectation using the sample's own standard error
(|z| <= 4.5 for every coordinate), with fixed seeds.
"""
import numpy as np
import oracles as O
import pandas as pd
import pytest
import torch
from conftest import ROOT

from vgh.claims import load_claim_table
from vgh.costates import alignment as AL
from vgh.costates import enumeration as E
from vgh.costates import estimators as C
from vgh.costates import expected_advantages as EA
from vgh.costates import measure as M
from vgh.costates.checks import b3_per_member, check_b1, check_b2, check_b3
from vgh.costates.envelope import envelope_check, prompt_halves
from vgh.costates.findings import lowest_entropy_limit
from vgh.ensemble import FAIL, INCONCLUSIVE, PASS
from vgh.lm.model import build_model
from vgh.lm.policy import all_completions, sample_completions, sequence_logprob
from vgh.lm.task import (
    answer_indices,
    build_tokenizer,
    digit_token_ids,
    encode_prompts,
    has_carry,
    prompt_text,
    true_answer,
)
from vgh.lm.updates import advantages, grpo_advantages, rloo_advantages
from vgh.stats import partial_spearman, through_origin_fit

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
    _, g = O.value_and_gradient(random_model, ids, ans, digits, tau)
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
    _, g = O.value_and_gradient(random_model, ids, ans, digits, tau, reward="exact")
    comps = all_completions(3)
    k = len(comps)
    scores = O.score_costates(random_model, ids.repeat_interleave(k, 0), comps.repeat(len(ids), 1), digits,
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
    _, g = O.value_and_gradient(random_model, ids, ans, digits, tau)
    est = O.sf_costates(random_model, ids, ans, digits, tau, "partial", n_samples=8,
                        generator=torch.Generator().manual_seed(1), n_repeats=400)
    _assert_within_se(est, g, "mean lambda_SF vs g*")
    # and the spread is real: a single estimate at N = 8 is far from g*
    assert float((est[0] - g).norm() / g.norm()) > 0.05


@pytest.mark.parametrize("reward", ["partial", "exact"])
@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_exact_pd_expectation_matches_sum_over_completions(random_model, two_digit, digits, reward):
    """The prefix-tree straight-through backward equals the probability-weighted per-completion costates."""
    ids, ans = two_digit
    tau = 0.8
    exact = C.expected_pd_costate(random_model, ids, ans, digits, tau, reward)
    comps = all_completions(3)
    k = len(comps)
    lam = O.pd_costates(random_model, ids.repeat_interleave(k, 0), comps.repeat(len(ids), 1),
                        ans.repeat_interleave(k, 0), digits, tau, reward).view(len(ids), k, -1)
    py = E.enumerate_policy(random_model, E.prompt_embeddings(random_model, ids), digits, 3, tau).logP.exp()
    assert torch.allclose((py.detach()[..., None] * lam).sum(1), exact, atol=1e-13, rtol=1e-9)


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_exact_pd_expectation_matches_sample_mean(trained, digits):
    model, ids, ans, _ = trained
    ids, ans = ids[[3, 38, 77]], ans[[3, 38, 77]]
    tau, m = 2.0, 1000  # a flatter policy: every prompt samples several completions
    exact = C.expected_pd_costate(model, ids, ans, digits, tau)
    ys = sample_completions(model, ids, digits, 2, tau, m, torch.Generator().manual_seed(2))  # [Q, M, L]
    lam = O.pd_costates(model, ids.repeat_interleave(m, 0), ys.reshape(-1, 2), ans.repeat_interleave(m, 0),
                        digits, tau).view(len(ids), m, -1)
    _assert_within_se(lam.transpose(0, 1), exact, "sample mean of lambda_PD vs exact E[lambda_PD]")
    # the straight-through costate is biased at this temperature: E[lambda_PD] != g*
    _, g = O.value_and_gradient(model, ids, ans, digits, tau)
    assert float((exact - g).norm()) > 1e-3 * float(g.norm())


def test_pd_bias_vanishes_for_a_confident_policy_without_carries(trained, digits):
    """At low tau, E[lambda_PD] -> g* on prompts without a carry where the policy is confident and single-digit
    flips do not move the later greedy digits (the condition under which straight-through sees everything);
    across all prompts the error follows the fraction of flip probability that does move later digits."""
    from scipy.stats import spearmanr

    model, ids, ans, carry = trained
    rel = {}
    for tau in (1.0, 0.25):
        _, g = O.value_and_gradient(model, ids, ans, digits, tau)
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
    _, g = O.value_and_gradient(random_model, ids, ans, digits, 1.0)
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
                           torch.Generator().manual_seed(5), n_bootstrap=50)
    b = t[t["estimate"] == "batch"]
    assert len(b) == 2 * 3 * (3 + 1) and set(b["algo"]) == {"reinforce", "rloo", "grpo"}
    # the permuted-reward null (by default GRPO's, the algorithm Part C runs and B3 decides on): same G and batches
    assert b["reward_permuted"].sum() == 2 * 3 and set(b.loc[b["reward_permuted"], "algo"]) == {"grpo"}
    assert b["cosine"].between(-1, 1).all()
    # RLOO against itself: 1, except for a batch whose rewards are all equal (G = 2 often): its update is the zero
    # vector, whose cosine with anything (grad J included) is reported as 0
    rloo = b[b["algo"] == "rloo"]
    zero = np.isclose(rloo["cosine_to_rloo"], 0.0)
    assert np.allclose(rloo.loc[~zero, "cosine_to_rloo"], 1.0) and (~zero).sum() >= len(rloo) // 2
    assert np.allclose(rloo.loc[zero, "cosine"], 0.0)
    # R14's rows: the exact expectation of every algorithm at every G (real only), and 50 bootstrap resamples of
    # the batch mean per algorithm and null at the largest G
    ex = t[t["estimate"] == "exact_expectation"]
    assert len(ex) == 2 * 3 and not ex["reward_permuted"].any()
    boot = t[t["estimate"] == "bootstrap_of_mean"]
    assert len(boot) == (3 + 1) * 50 and boot["cosine"].between(-1, 1).all() and set(boot["group_size"]) == {8}
    # the bootstrap's cosines bracket the batch mean's own (the resamples are centred on it)
    mean = t[(t["estimate"] == "mean_over_batches") & (t["algo"] == "rloo") & ~t["reward_permuted"]]
    br = boot[(boot["algo"] == "rloo") & ~boot["reward_permuted"]]
    c = float(mean.loc[mean["group_size"] == 8, "cosine"].iloc[0])
    assert br["cosine"].min() <= c + 1e-12 and br["cosine"].max() >= c - 1e-12
    # the real rows are the numbers of a run without the null (the null draws from its own generator) ...
    t0 = AL.update_alignment(model, ids[::10], ans[::10], digits, 1.0, "partial", [2, 8], 3,
                            torch.Generator().manual_seed(5), null=False, n_bootstrap=50)
    real = t[~t["reward_permuted"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(real.drop(columns="reward_permuted"), t0.drop(columns="reward_permuted"))
    # ... the null is seeded (same seed, same numbers) and, here, far less aligned than the real update
    t2 = AL.update_alignment(model, ids[::10], ans[::10], digits, 1.0, "partial", [2, 8], 3,
                            torch.Generator().manual_seed(5), n_bootstrap=50)
    pd.testing.assert_frame_equal(t, t2)
    t3 = AL.update_alignment(model, ids[::10], ans[::10], digits, 1.0, "partial", [8], 3,
                            torch.Generator().manual_seed(5), null_generator_=torch.Generator().manual_seed(9),
                            n_bootstrap=50)

    def nb(d):
        return d[(d["estimate"] == "batch") & d["reward_permuted"] & (d["group_size"] == 8)]["cosine"].to_numpy()

    assert not np.allclose(nb(t), nb(t3))  # another null generator, other permutations
    # the null of every algorithm: GRPO's null rows are the same numbers (one permutation per group and batch)
    t4 = AL.update_alignment(model, ids[::10], ans[::10], digits, 1.0, "partial", [2, 8], 3,
                            torch.Generator().manual_seed(5), null_algos=("reinforce", "rloo", "grpo"),
                            n_bootstrap=50)
    assert t4["reward_permuted"].sum() == 3 * t["reward_permuted"].sum()
    same = t4[~t4["reward_permuted"] | (t4["algo"] == "grpo")].reset_index(drop=True)
    # (cosine_to_rloo of a null row is to the null RLOO direction, which exists only in t4)
    pd.testing.assert_frame_equal(same.drop(columns="cosine_to_rloo"), t.drop(columns="cosine_to_rloo"))
    m = b[(b["algo"] == "grpo") & (b["group_size"] == 8)].groupby("reward_permuted")["cosine"].mean()
    assert m[False] > m[True] + 0.2


def test_compositions():
    c = EA.compositions(3, 3)
    assert len(c) == 10 and (c.sum(1) == 3).all() and len({tuple(r) for r in c}) == 10
    assert EA.compositions(0, 4).tolist() == [[0, 0, 0, 0]]
    assert len(EA.compositions(31, 4)) == 5984  # binom(34, 3)


@pytest.mark.parametrize("algo", ["reinforce", "rloo", "grpo"])
@pytest.mark.parametrize("scale", ["group", "none"])
def test_expected_advantages_match_a_sum_over_every_group(algo, scale):
    """a[q, j] by compositions equals the brute-force mean over every ordered group of G - 1 mates (m^(G-1))."""
    import itertools

    values = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    pi = torch.tensor([[0.2, 0.3, 0.5], [0.0, 0.9, 0.1]], dtype=torch.float64)
    g = 4
    got = EA.expected_advantages(pi, values, g, algo, scale, max_elements=7)  # several chunks
    want = torch.zeros_like(pi)
    for mates in itertools.product(range(3), repeat=g - 1):
        w = pi[:, list(mates)].prod(-1)  # [Q]
        for j in range(3):
            group = torch.cat([values[j:j + 1], values[list(mates)]])
            want[:, j] += w * advantages(group, algo, scale)[0]
    assert torch.allclose(got, want, atol=1e-12)
    mu = (pi * values).sum(-1, keepdim=True)
    if algo == "rloo":  # E over the mates of r - mean(mates) = r - mu
        assert torch.allclose(got, values - mu, atol=1e-12)


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_exact_expected_update(trained, digits):
    """R14: REINFORCE's and RLOO's exact expected updates are grad J (an identity), GRPO's with scale_rewards none is
    (1 - 1/G) grad J, GRPO's with the std is not grad J; and the exact expectation is what a long run of sampled
    batches averages to (each projection within its standard error)."""
    model, ids, ans, _ = trained
    q_ids, q_ans = ids[::10], ans[::10]
    _, grad_j, py = AL.objective_gradient(model, q_ids, q_ans, digits, 1.0, "partial")
    ex = AL.expected_updates(model, q_ids, q_ans, digits, 1.0, "partial", [2, 4], max_rows=30)  # chunked prompts
    for g in (2, 4):
        for a in ("reinforce", "rloo"):
            assert torch.allclose(ex[a, g], grad_j, rtol=1e-9, atol=1e-12 * float(grad_j.norm()))
        assert AL._cos(ex["grpo", g], grad_j) < 1 - 1e-6
    none = AL.expected_updates(model, q_ids, q_ans, digits, 1.0, "partial", [4], ("grpo",), "none")
    assert torch.allclose(none["grpo", 4], 0.75 * grad_j, rtol=1e-9, atol=1e-12 * float(grad_j.norm()))
    comps = all_completions(q_ans.shape[1])
    r_all = E.rewards_all(comps, q_ans, "partial")
    gen = torch.Generator().manual_seed(3)
    dirs = []
    for _ in range(300):
        idx = torch.multinomial(py, 4, replacement=True, generator=gen)
        dirs.append(AL.update_directions(model, q_ids, comps[idx], r_all.gather(1, idx), digits, 1.0,
                                         algos=("grpo",))["grpo"])
    dirs = torch.stack(dirs)
    basis = torch.cat([grad_j[None] / grad_j.norm(),
                       torch.randn(3, grad_j.numel(), generator=torch.Generator().manual_seed(4),
                                   dtype=torch.float64)])
    _assert_within_se(dirs @ basis.T, basis @ ex["grpo", 4], "GRPO sampled directions vs its exact expectation")


def test_bootstrap_mean_cosines_is_the_cosine_of_the_resampled_mean():
    gen = torch.Generator().manual_seed(0)
    d = torch.randn(6, 40, generator=gen, dtype=torch.float64)
    gj = torch.randn(40, generator=gen, dtype=torch.float64)
    counts = np.random.default_rng(1).multinomial(6, np.full(6, 1 / 6), size=5)
    got = AL.bootstrap_mean_cosines(d, gj, torch.as_tensor(counts / 6))
    want = [AL._cos(torch.as_tensor(c / 6) @ d, gj) for c in counts]
    assert np.allclose(got, want, atol=1e-12)


def test_permutation_is_within_groups_and_seeded():
    r = torch.arange(40, dtype=torch.float64).view(5, 8)
    p1 = AL.permute_within_groups(r, torch.Generator().manual_seed(0))
    p2 = AL.permute_within_groups(r, torch.Generator().manual_seed(0))
    p3 = AL.permute_within_groups(r, torch.Generator().manual_seed(1))
    assert torch.equal(p1, p2) and not torch.equal(p1, p3)
    assert torch.equal(p1.sort(-1).values, r)  # each group keeps its own rewards
    assert (p1 != r).any(-1).all()  # and (here) every group is shuffled
    # the null generator derives from the seed of the sampling generator, not from its stream
    g = AL.null_generator(torch.Generator().manual_seed(3))
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=AL.null_generator(
        torch.Generator().manual_seed(3))))


# ----------------------------------------------------------------------------------- claim checks


B12 = {"min_coverage": 0.95, "envelope_quantile": 0.99, "min_within_cell_correlation": 0.0,
       "max_pd_error_lowest_entropy": 0.1}


def _prompts_table(k: int, floor=0.0, low_error=0.01, n_prompts=120, seed=0) -> pd.DataFrame:
    """Synthetic per-prompt rows for members 0..k-1, 2 checkpoints x 3 temperatures x n_prompts (enough for each
    member's own fit of C on half its prompts, R20: with 40 a member's held-out coverage of a 99% envelope falls
    below 0.95 by chance in about 1 member of 10). gap in (0, 1],
    entropy = 2 gap, e = gap * U(0.3, 1) + floor[m] (floor: an error that does not vanish as gap -> 0, per member
    or one for all). At each member's lowest-entropy point (checkpoint 2, tau 0.25) g_norm is set so that the
    pooled relative error is low_error[m]."""
    rng = np.random.default_rng(seed)
    floor = np.broadcast_to(np.asarray(floor, float), (k,))
    low_error = np.broadcast_to(np.asarray(low_error, float), (k,))
    frames = []
    for m in range(k):
        for ck, shift in ((1, 0.3), (2, 0.0)):
            for tau in (0.25, 1.0, 2.0):
                gap = np.clip(rng.uniform(0.0, 1.0, n_prompts) * tau / 2 + shift * tau, 1e-3, None)
                e = gap * rng.uniform(0.3, 1.0, n_prompts) + floor[m]
                d = pd.DataFrame({"member": m, "checkpoint": ck, "temperature": tau, "prompt_index": range(n_prompts),
                                  "gap": gap, "entropy": 2 * gap, "pd_abs_error": e, "g_norm": 1.0,
                                  "carry": np.arange(n_prompts) % 4 == 0, "prompt": "1+2=", "answer": "03",
                                  "moving_flip_fraction": 0.0})
                if ck == 2 and tau == 0.25:
                    d["g_norm"] = e.sum() / low_error[m] / n_prompts
                d["pd_rel_error"] = d["pd_abs_error"] / d["g_norm"]
                frames.append(d)
    return pd.concat(frames, ignore_index=True)


def _summary_of(prompts):
    return M.summarize(prompts.assign(sf_abs_error=prompts["pd_abs_error"], sf_rel_error=prompts["pd_rel_error"],
                                      pd_cosine=1.0, gap_sq=prompts["gap"] ** 2, gap_embed=prompts["gap"],
                                      value=0.5, p_answer=0.5), ["member", "checkpoint", "temperature"])


@pytest.mark.parametrize("k", [5, 10])
def test_envelope_passes_when_the_error_vanishes_with_the_gap(k):
    t = _prompts_table(k)
    b2 = check_b2(_summary_of(t), t, B12)
    b1 = check_b1(_summary_of(t), t, B12)
    for claim, names in ((b2, ("envelope_coverage_gap", "error_rises_with_gap_in_cells")),
                         (b1, ("envelope_coverage_entropy", "error_rises_with_entropy_in_cells"))):
        for name in names:
            c = claim.checks[name]
            assert c["verdict"] == PASS, c
            assert len(c["per_member"]) == k and all(c["member_passed"])
            assert c["interval"][0] <= c["value"] <= c["interval"][1]
    assert claim.verdict == PASS and claim.member_verdicts == [PASS] * k
    # deterministic for a seed; the prompts are split in two disjoint halves that cover them (R10)
    again = check_b2(_summary_of(t), t, B12).checks["envelope_coverage_gap"]
    assert again["interval"] == b2.checks["envelope_coverage_gap"]["interval"]
    fit, held = prompt_halves(t["prompt_index"], 0)
    assert not set(fit) & set(held) and set(fit) | set(held) == set(t["prompt_index"])
    assert list(prompt_halves(t["prompt_index"], 1)[0]) != list(fit)  # another member, another split (R20)


@pytest.mark.parametrize("k", [5, 10])
def test_envelope_fails_with_an_error_floor(k):
    """An error that stays as the gap -> 0 (what the carry chains would do) breaks the bound near gap 0."""
    t = _prompts_table(k, floor=0.3)
    c = check_b2(_summary_of(t), t, B12)
    assert c.checks["envelope_coverage_gap"]["verdict"] == FAIL and c.verdict == FAIL
    assert not any(c.checks["envelope_coverage_gap"]["member_passed"])


def test_an_error_that_does_not_rise_with_the_gap_fails_the_trend():
    """R25: the same relative error at every gap (a zero costate, e = |g*|) has no within-cell trend (nan: FAIL);
    errors unrelated to the gap (shuffled) do not PASS it, whatever the envelope's coverage."""
    t = _prompts_table(5).assign(g_norm=1.0)
    zero = t.assign(pd_abs_error=t["g_norm"], pd_rel_error=1.0)
    c = check_b2(_summary_of(zero), zero, B12)
    assert c.checks["error_rises_with_gap_in_cells"]["verdict"] == FAIL and c.verdict == FAIL
    rng = np.random.default_rng(0)
    shuffled = t.assign(pd_abs_error=rng.permutation(t["pd_abs_error"].to_numpy()))
    c = check_b2(_summary_of(shuffled), shuffled, B12)
    assert c.checks["error_rises_with_gap_in_cells"]["verdict"] != PASS and c.verdict != PASS


@pytest.mark.parametrize("claim", ["B1", "B2"])
def test_confounders_fail_and_the_claim_true_passes_the_within_cell_trend(claim):
    """R25 on a table where the entropy and the gap fall with the checkpoint and rise with the temperature, and
    |g*| rises with them within a cell: an error whose relative size depends only on the temperature, only on the
    checkpoint or only on |g*| FAILs the trend in every member (the checkpoint-only one PASSed R10's quarter ratio);
    a relative error that rises with x within the cells PASSes it, through the claim's own nulls (R19)."""
    from vgh.costates.nulls import b1_nulls, b2_nulls

    t = _prompts_table(8)
    rng = np.random.default_rng(1)
    t = t.assign(g_norm=(1 + t["gap"]) * rng.uniform(0.8, 1.2, len(t)))  # |g*| rises with x within a cell
    t["pd_rel_error"] = t["pd_abs_error"] / t["g_norm"]
    tables = {"summary": _summary_of(t), "prompts": t}
    nulls = (b1_nulls if claim == "B1" else b2_nulls)(tables, {})
    check = check_b1 if claim == "B1" else check_b2
    name = "error_rises_with_entropy_in_cells" if claim == "B1" else "error_rises_with_gap_in_cells"
    seen = set()
    for case, (truth, make, _) in nulls.items():
        made = make(tables, np.random.default_rng(2))
        c = check(made["summary"], made["prompts"], B12)
        trend = c.checks[name]
        if case.startswith("confounder"):
            assert trend["verdict"] == FAIL and not any(trend["member_passed"]), case
            assert c.verdict != PASS, case
            seen.add(case.split("on ")[-1])
        if case.startswith("planted: e / |g*|"):
            assert trend["verdict"] == PASS and all(trend["member_passed"]), case
            seen.add("planted")
    assert len(seen) == 4, seen


def test_within_cell_partial_rank_correlation():
    """R25's statistic: in one cell with z constant it is Spearman; cells are ranked separately (a shift between
    cells does not count); x a rank-function of z gives nan; ties at 10 significant digits tie."""
    from scipy.stats import spearmanr

    from vgh.stats import within_cell_partial_rank_correlation as rho

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=30), rng.normal(size=30)
    assert rho(x, y, np.ones(30), np.zeros(30)) == pytest.approx(spearmanr(x, y)[0])
    # y rises across cells only (a cell shift) and is random within them: the between-cell trend is not counted
    cells = np.repeat([0, 1, 2], 10)
    xs, ys = x + 10 * cells, y + 10 * cells
    assert spearmanr(xs, ys)[0] > 0.8  # across the cells they rise together
    assert rho(xs, ys, np.ones(30), cells) == pytest.approx(rho(x, y, np.ones(30), cells))  # within: x and y only
    assert abs(rho(xs, ys, np.ones(30), cells)) < 0.5
    assert np.isnan(rho(x, np.full(30, 2.0), np.ones(30), cells))  # no variation within any cell
    assert np.isnan(rho(x, y, 3 * y + 1, cells))  # y a function of z
    assert np.isnan(rho(x, 1.0 + 1e-13 * np.arange(30), np.ones(30), cells))  # equal to 10 digits: tied
    z = rng.normal(size=30)
    y2 = z + 0.1 * rng.normal(size=30)  # y follows z; x follows z too: no partial association left, near 0
    x2 = z + 0.1 * rng.normal(size=30)
    assert abs(rho(x2, y2, z, np.zeros(30))) < abs(spearmanr(x2, y2)[0])


def test_envelope_is_inconclusive_when_members_disagree_or_there_is_one():
    t = _prompts_table(5, floor=[0, 0, 0, 0, 0.3])  # one member with a floor
    c = check_b2(_summary_of(t), t, B12).checks["envelope_coverage_gap"]
    assert c["verdict"] == INCONCLUSIVE, c
    assert c["member_passed"] == [True, True, True, True, False]
    one = _prompts_table(1)
    c1 = check_b2(_summary_of(one), one, B12)
    assert c1.checks["envelope_coverage_gap"]["verdict"] == INCONCLUSIVE and c1.verdict == INCONCLUSIVE
    # no member column: one member
    c0 = check_b2(_summary_of(one), one.drop(columns="member"), B12)
    assert c0.checks["envelope_coverage_gap"]["verdict"] == INCONCLUSIVE


def test_envelope_constant_is_fitted_on_the_fit_half_of_the_prompts_only():
    """R10 under R20: each member's C comes from its own fit half, its coverage from its own held-out half."""
    t = _prompts_table(5)
    in_held = np.zeros(len(t), bool)
    for m, d in t.groupby("member"):
        _, held = prompt_halves(d["prompt_index"], int(m))
        in_held[d.index] = d["prompt_index"].isin(held).to_numpy()
    worse = t.assign(pd_abs_error=np.where(in_held, 10 * t["pd_abs_error"], t["pd_abs_error"]))
    subs, det = envelope_check(worse, "gap", 0.99, 0.95, 1.0)
    assert max(subs["coverage"]["per_member"]) < 0.2 and subs["coverage"]["verdict"] == FAIL
    better = t.assign(pd_abs_error=np.where(~in_held, 10 * t["pd_abs_error"], t["pd_abs_error"]))
    subs, det2 = envelope_check(better, "gap", 0.99, 0.95, 1.0)
    assert min(subs["coverage"]["per_member"]) == pytest.approx(1.0)
    assert all(det2["C_by_member"][m] > 5 * det["C_by_member"][m] for m in det["C_by_member"])


@pytest.mark.parametrize("k,low,want", [(5, 0.01, PASS), (10, 0.01, PASS), (5, 0.5, FAIL), (10, 0.5, FAIL),
                                        (5, [0.05, 0.15, 0.08, 0.12, 0.1], INCONCLUSIVE)])
def test_b1_limit_at_the_lowest_entropy(k, low, want):
    t = _prompts_table(k, low_error=low)
    lim = lowest_entropy_limit(t)
    assert (lim["checkpoint"] == 2).all() and np.allclose(lim["temperature"], 0.25)
    assert np.allclose(lim["pd_error"], np.broadcast_to(low, (k,)))
    c = check_b1(_summary_of(t), t, B12)
    assert c.checks["pd_error_lowest_entropy"]["verdict"] == want
    assert c.verdict == want  # the envelope passes here
    assert {"pd_error_carry", "pd_error_median_carry", "pd_error_median"} <= set(c.details["lowest_entropy"][0])
    sep = c.details["separation"]
    assert set(sep["at_fixed_temperature"]) == {"0.25", "1", "2"}
    assert sep["partial_spearman_error_entropy_given_tau"] > 0.3
    assert c.details["relative_error_profile"]["by_gap_bin"]


def test_partial_spearman_removes_the_shared_factor():
    rng = np.random.default_rng(0)
    z = rng.normal(size=400)
    x, y = z + 0.1 * rng.normal(size=400), z + 0.1 * rng.normal(size=400)
    assert partial_spearman(x, y, z) < 0.3 < 0.9 < float(pd.Series(x).corr(pd.Series(y), method="spearman"))
    assert np.isnan(partial_spearman([1, 2], [1, 2], [1, 2]))


def _alignment(k, exact=0.95, null_shift=0.0, real_mean=0.97, seed=0):
    """Synthetic B3 rows for members 0..k-1 at G = 2, 4, 8 (R14): GRPO's exact cosine exact[m] at the largest G
    (RLOO's and REINFORCE's 1), per-batch cosines rising with G, the batch mean real_mean[m] with a bootstrap around
    it, and the permuted-reward null's batch mean and bootstrap around null_shift[m]."""
    rng = np.random.default_rng(seed)
    exact = np.broadcast_to(np.asarray(exact, float), (k,))
    null_shift = np.broadcast_to(np.asarray(null_shift, float), (k,))
    real_mean = np.broadcast_to(np.asarray(real_mean, float), (k,))
    rows = []

    def add(**r):
        rows.append({"cosine_to_rloo": 1.0, "n_params": 10, "reward_permuted": False, **r})

    for m in range(k):
        for g, base in ((2, 0.5), (4, 0.7), (8, 0.9)):
            for a in ("reinforce", "rloo", "grpo"):
                add(member=m, group_size=g, batch=-1, algo=a, estimate="exact_expectation",
                    cosine=exact[m] if a == "grpo" and g == 8 else (0.99 if a == "grpo" else 1.0))
                for b in range(8):
                    add(member=m, group_size=g, batch=b, algo=a, estimate="batch", cosine=base + 0.01 * rng.normal())
                add(member=m, group_size=g, batch=-1, algo=a, estimate="mean_over_batches", cosine=real_mean[m])
                for b in range(40):
                    add(member=m, group_size=g, batch=b, algo=a, estimate="bootstrap_of_mean",
                        cosine=real_mean[m] + 0.005 * rng.normal())
            for b in range(8):
                add(member=m, group_size=g, batch=b, algo="grpo", estimate="batch", reward_permuted=True,
                    cosine=null_shift[m] + 0.3 * rng.normal())
            add(member=m, group_size=g, batch=-1, algo="grpo", estimate="mean_over_batches", reward_permuted=True,
                cosine=null_shift[m])
            for b in range(40):
                add(member=m, group_size=g, batch=b, algo="grpo", estimate="bootstrap_of_mean", reward_permuted=True,
                    cosine=float(np.clip(null_shift[m] + 0.1 * rng.normal(), -1, 1)))
    return pd.DataFrame(rows)


B3T = {"min_exact_cosine": 0.9, "null_quantile": 0.975}


@pytest.mark.parametrize("k", [5, 10])
def test_check_b3_pass_and_fail(k):
    c = check_b3(_alignment(k), B3T, "grpo")
    assert c.verdict == PASS and c.member_verdicts == [PASS] * k, c.summary()
    metric = load_claim_table(ROOT / "workflow/claims.yaml")["B3"]["metric"].format(**c.details)  # as the record has it
    assert metric.endswith("E[grpo update], grad J) at G = 8")
    assert list(c.checks) == ["exact_cosine_largest_G"] and "25.8 degrees" in c.threshold  # R27
    assert c.details["batch_mean_margin_over_null"]["members_above_0"] == k  # reported, not decided (R27)
    # the sampled batch mean no better than the null's bootstrap: reported, the verdict is the expectation's
    c = check_b3(_alignment(k, null_shift=0.97), B3T, "grpo")
    assert c.details["batch_mean_margin_over_null"]["members_above_0"] == 0 and c.verdict == PASS
    # the algorithm's exact expectation turned away from grad J: the claim fails
    c = check_b3(_alignment(k, exact=0.6), B3T, "grpo")
    assert c.checks["exact_cosine_largest_G"]["verdict"] == FAIL and c.verdict == FAIL
    # the decision is on the algorithm named: RLOO's exact expectation (1 here) passes where GRPO's fails
    assert check_b3(_alignment(k, exact=0.6), B3T, "rloo").checks[
        "exact_cosine_largest_G"]["verdict"] == PASS


def test_check_b3_inconclusive():
    c = check_b3(_alignment(5, exact=[0.86, 0.94, 0.88, 0.93, 0.9]), B3T, "grpo")
    assert c.checks["exact_cosine_largest_G"]["verdict"] == INCONCLUSIVE and c.verdict == INCONCLUSIVE
    # a table written before R14 (no exact rows, no bootstrap): the sub-check marked, not failed
    old = _alignment(2)
    old = old[old["estimate"] == "batch"]
    c = check_b3(old, B3T, "grpo")
    assert c.checks["exact_cosine_largest_G"]["verdict"] == INCONCLUSIVE and c.verdict == INCONCLUSIVE
    assert "no exact_expectation rows" in c.checks["exact_cosine_largest_G"]["note"]
    per = b3_per_member(_alignment(2), "grpo", 0.975)
    assert per["rloo_increasing"].all() and (per["margin"] > 0.5).all() and (per["rloo_exact_cosine"] == 1).all()


def test_through_origin_fit():
    assert through_origin_fit([1, 2, 3], [3, 6, 9]) == {"slope": 3.0, "r2": 1.0}
    assert through_origin_fit([1, 2, 3], [3, 2, 1])["r2"] < 0  # decreasing: a line through 0 fits badly
    assert np.isnan(through_origin_fit([0, 0], [1, 2])["slope"])
