"""Part C: exact per-checkpoint metrics, critic-free RL, and the signal x headroom predictors."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT
from oracles import run_from_checkpoint

from vgh.config import load_schema, validate_config
from vgh.lm.model import build_model
from vgh.lm.policy import exact_match, exact_pass1, sample_completions
from vgh.lm.task import answer_indices, build_tokenizer, digit_token_ids, encode_prompts, prompt_text, true_answer
from vgh.trajectory import checks, metrics, predictors
from vgh.trajectory.lr_rule import lr_rule
from vgh.trajectory.rl import RLSettings, clipped_surrogate, rl_train


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def tiny_model(tok, seed=0, scale=1.0, dtype=torch.float64):
    """1-layer GPT-2 with 8-dim embeddings; `scale` multiplies the (tied) embeddings so the random policy is
    far from uniform."""
    m = build_model(len(tok), 16, 1, 2, 8, seed).to(dtype)
    with torch.no_grad():
        m.transformer.wte.weight.mul_(scale)
    return m


def split(tok, pairs, digits=1):
    prompts = [prompt_text(a, b, digits) for a, b in pairs]
    answers = [true_answer(a, b, digits) for a, b in pairs]
    return encode_prompts(tok, prompts), answer_indices(answers)


def test_exact_pass_at_k_matches_sampling(tok):
    model = tiny_model(tok, seed=1, scale=10.0)
    prompt_ids, _ = split(tok, [(a, b) for a in range(3) for b in range(4)])
    digit_ids = digit_token_ids(tok)
    # "answers" drawn from the model itself, so that pass@k is far from 0 and 1
    answers = sample_completions(model, prompt_ids, digit_ids, 2, 1.0, 1, torch.Generator().manual_seed(9))[:, 0]
    k, groups = 4, 400
    with torch.no_grad():
        p = exact_pass1(model, prompt_ids, answers, digit_ids)
    exact = metrics.pass_at_k(p, k)
    assert 0.05 < float(exact.mean()) < 0.95, "test needs a policy with non-trivial pass@k"
    gen = torch.Generator().manual_seed(0)
    comps = sample_completions(model, prompt_ids, digit_ids, answers.shape[1], 1.0, k * groups, gen)
    hit = exact_match(comps, answers[:, None]).view(len(p), groups, k).amax(-1)  # [N, groups]
    est, var = hit.mean(1), hit.var(1) / groups
    se = float(var.mean().sqrt() / np.sqrt(len(p)))  # SE of the mean over prompts
    assert abs(float(est.mean() - exact.mean())) < 4 * se
    # pass@1 alone, per prompt, too
    hit1 = exact_match(comps, answers[:, None]).mean(1)
    se1 = (p * (1 - p) / (k * groups)).sqrt()
    assert torch.all((hit1 - p).abs() <= 5 * se1 + 1e-12)


def test_signal_equals_finite_difference_gradient(tok):
    """S over the trainable parameters (the tied embedding and the last layer norm, others frozen to keep the
    number of finite differences small) equals |central-difference gradient|^2; the full gradient agrees with
    finite differences along random directions."""
    model = build_model(len(tok), 8, 1, 1, 4, 2).double()
    with torch.no_grad():
        model.transformer.wte.weight.mul_(10.0)
    prompt_ids, answers = split(tok, [(1, 2), (3, 4), (5, 9), (8, 8), (0, 7)])
    digit_ids = digit_token_ids(tok)

    def J():
        with torch.no_grad():
            return float(exact_pass1(model, prompt_ids, answers, digit_ids).mean())

    def fd_grad(params, h=1e-6):
        flat = torch.nn.utils.parameters_to_vector(params).detach().clone()
        out = np.empty(len(flat))
        for i in range(len(flat)):
            for sign in (1, -1):
                v = flat.clone()
                v[i] += sign * h
                torch.nn.utils.vector_to_parameters(v, params)
                out[i] = J() if sign == 1 else (out[i] - J()) / (2 * h)
        torch.nn.utils.vector_to_parameters(flat, params)
        return out

    trainable = [model.transformer.wte.weight, model.transformer.ln_f.weight, model.transformer.ln_f.bias]
    for p in model.parameters():
        p.requires_grad_(any(p is q for q in trainable))
    S = metrics.signal(model, prompt_ids, answers, digit_ids, chunk=2)  # chunks accumulate
    S_fd = float((fd_grad(trainable) ** 2).sum())
    assert S > 0
    assert abs(S - S_fd) <= 1e-6 * S_fd

    for p in model.parameters():
        p.requires_grad_(True)
    params = list(model.parameters())
    p_q = exact_pass1(model, prompt_ids, answers, digit_ids, grad=True)
    grad = torch.nn.utils.parameters_to_vector(torch.autograd.grad(p_q.mean(), params))
    assert abs(metrics.signal(model, prompt_ids, answers, digit_ids) - float(grad @ grad)) <= 1e-12 * float(grad @ grad)
    flat = torch.nn.utils.parameters_to_vector(params).detach().clone()
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        v = torch.randn(len(flat), generator=gen, dtype=flat.dtype)
        vals = []
        for sign in (1, -1):
            torch.nn.utils.vector_to_parameters(flat + sign * 1e-6 * v, params)
            vals.append(J())
        torch.nn.utils.vector_to_parameters(flat, params)
        assert abs((vals[0] - vals[1]) / 2e-6 - float(grad @ v)) <= 1e-5 * float(grad.norm() * v.norm())


def test_value_gradient_matches_finite_difference(tok):
    model = tiny_model(tok, seed=3, scale=10.0)
    prompt_ids, answers = split(tok, [(1, 2), (6, 7)])
    digit_ids = digit_token_ids(tok)
    g = metrics.value_gradients(model, prompt_ids, answers, digit_ids)
    P, L = prompt_ids.shape[1], answers.shape[1]
    from vgh.lm.policy import answer_logits, teacher_forced_embeds

    with torch.no_grad():
        base = teacher_forced_embeds(model, prompt_ids, answers, digit_ids)

        def V(emb):
            lp = torch.log_softmax(answer_logits(model, emb, P, L, digit_ids), -1)
            return lp.gather(-1, answers.unsqueeze(-1)).sum((-1, -2)).exp()

        for j in range(base.shape[-1]):
            e = torch.zeros_like(base)
            e[:, P - 1, j] = 1e-6
            fd = (V(base + e) - V(base - e)) / 2e-6
            torch.testing.assert_close(g[:, j], fd, rtol=1e-5, atol=1e-10)


def learnable_task(tok):
    """Four prompts with the same 1-digit 'answer' (L = 1: 10 completions): trivially learnable."""
    prompt_ids, _ = split(tok, [(1, 2), (3, 4), (5, 1), (2, 2)])
    answers = torch.tensor([[7], [7], [7], [7]])
    return prompt_ids, answers


RL_DEFAULTS = validate_config({}, load_schema(ROOT / "workflow/schemas/config.schema.yaml"))["trajectory"]["rl"]


def rl_settings(**overrides) -> RLSettings:
    """RL settings as the schema's defaults (the only place they live), with `overrides`."""
    return RLSettings.from_config(RL_DEFAULTS, **overrides)


@pytest.mark.parametrize("optimizer,lr", [("sgd", 1.0), ("adam", 0.05)])
@pytest.mark.parametrize("algo,num_iterations", [("grpo", 1), ("rloo", 1), ("grpo", 2)])
def test_rl_raises_pass1(tok, algo, num_iterations, optimizer, lr):
    model = tiny_model(tok, seed=4, dtype=torch.float32)
    prompt_ids, answers = learnable_task(tok)
    digit_ids = digit_token_ids(tok)
    before = metrics.mean_pass1(model, prompt_ids, answers, digit_ids)
    s = rl_settings(algo=algo, optimizer=optimizer, lr=lr, steps=15, num_generations=8, prompts_per_step=4,
                    num_iterations=num_iterations, scale_rewards="group")
    curve, model = rl_train(model, prompt_ids, answers, digit_ids, s, torch.Generator().manual_seed(0),
                            progress=False)
    after = metrics.mean_pass1(model, prompt_ids, answers, digit_ids)
    assert after > before + 0.2, (algo, before, after)
    assert list(curve["step"]) == list(range(15))
    for col in ("reward", "reward_std", "frac_reward_zero_std", "entropy", "clip_ratio", "grad_norm"):
        assert curve[col].notna().all()
    assert curve["reward"].iloc[-5:].mean() > curve["reward"].iloc[:3].mean()


def test_clipping_engages_only_after_the_first_iteration(tok):
    prompt_ids, answers = learnable_task(tok)
    digit_ids = digit_token_ids(tok)
    base = tiny_model(tok, seed=5, dtype=torch.float32)
    one = rl_settings(algo="grpo", optimizer="adam", lr=0.05, steps=5, num_generations=8, prompts_per_step=4,
                      num_iterations=1, epsilon=0.1)
    curve1, _ = rl_train(copy.deepcopy(base), prompt_ids, answers, digit_ids, one,
                         torch.Generator().manual_seed(0), progress=False)
    assert (curve1["clip_ratio"] == 0).all()  # ratio = 1 at the first iteration: nothing clipped
    many = RLSettings(**{**one.__dict__, "num_iterations": 4})
    curve4, _ = rl_train(copy.deepcopy(base), prompt_ids, answers, digit_ids, many,
                         torch.Generator().manual_seed(0), progress=False)
    assert curve4["clip_ratio"].max() > 0
    # the surrogate itself: rho = 1 gives zero clip fraction and the plain policy-gradient value
    logp = torch.randn(2, 6, 3)  # [runs, completions, tokens]
    adv = torch.randn(2, 6, 1)
    loss, st = clipped_surrogate(logp, logp.detach(), adv, 0.2)
    assert loss.shape == (2,) and (st["region"] == 0).all()
    assert torch.allclose(loss, -(adv * torch.ones_like(logp)).flatten(1).mean(1))
    loss, st = clipped_surrogate(logp + 1.0, logp, adv.abs(), 0.2)  # rho = e > 1.2 with A > 0: all clipped
    assert (st["region"] == 1).all() and (st["high"] == 1).all()


@pytest.mark.parametrize("algo", ["grpo", "rloo"])
def test_num_iterations_takes_that_many_clipped_steps_per_batch(tok, monkeypatch, algo):
    """TRL's num_iterations for every algo (grpo and rloo alike): num_iterations optimizer steps on the clipped
    surrogate per generated batch, so 2 iterations train other parameters than 1 from the same samples."""
    import vgh.trajectory.rl as rl

    prompt_ids, answers = learnable_task(tok)
    digit_ids = digit_token_ids(tok)
    base = tiny_model(tok, seed=5, dtype=torch.float32)
    calls = []

    def counted(*args):
        calls.append(args[3])  # epsilon
        return clipped_surrogate(*args)

    monkeypatch.setattr(rl, "clipped_surrogate", counted)
    trained = {}
    for n in (1, 2):
        calls.clear()
        s = rl_settings(algo=algo, optimizer="sgd", lr=0.5, steps=3, num_generations=4, prompts_per_step=4,
                        num_iterations=n, epsilon=0.1)
        curve, trained[n] = rl_train(copy.deepcopy(base), prompt_ids, answers, digit_ids, s,
                                     torch.Generator().manual_seed(0), progress=False)
        assert calls == [0.1] * (3 * n)  # n clipped steps on each of the 3 batches
        assert len(curve) == 3  # one row per generated batch
    w1, w2 = (trained[n].transformer.wte.weight for n in (1, 2))
    assert not torch.allclose(w1, w2)


def test_rl_nan_loss_raises(tok, monkeypatch):
    import vgh.trajectory.rl as rl

    prompt_ids, answers = learnable_task(tok)
    digit_ids = digit_token_ids(tok)
    s = rl_settings(algo="grpo", lr=0.1, steps=2, num_generations=4, prompts_per_step=2)
    monkeypatch.setattr(rl, "advantages", lambda r, *_: torch.full_like(r, float("nan")))
    with pytest.raises(FloatingPointError, match="RL loss is nan"):
        rl_train(tiny_model(tok, seed=6, dtype=torch.float32), prompt_ids, answers, digit_ids, s,
                 torch.Generator().manual_seed(0), progress=False)
    monkeypatch.setattr(rl, "advantages", lambda r, *_: torch.full_like(r, float("inf")))
    with pytest.raises(FloatingPointError):
        rl_train(tiny_model(tok, seed=6, dtype=torch.float32), prompt_ids, answers, digit_ids, s,
                 torch.Generator().manual_seed(0), progress=False)


def test_rl_same_seed_same_numbers(tok):
    prompt_ids, _ = split(tok, [(a, b) for a in range(4) for b in range(4)])
    answers = (torch.arange(16) % 3).view(16, 1)
    digit_ids = digit_token_ids(tok)
    base = tiny_model(tok, seed=7, dtype=torch.float32)
    s = rl_settings(algo="grpo", optimizer="sgd", lr=0.5, steps=6, num_generations=4, prompts_per_step=4,
                    num_iterations=2)
    runs = [run_from_checkpoint(copy.deepcopy(base), (prompt_ids, answers), (prompt_ids[:8], answers[:8]),
                                digit_ids, s, seed=3, progress=False) for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    other = run_from_checkpoint(copy.deepcopy(base), (prompt_ids, answers), (prompt_ids[:8], answers[:8]),
                                digit_ids, s, seed=4, progress=False)
    assert runs[0]["reward"].gt(0).any()
    assert not other["reward"].equals(runs[0]["reward"])  # the seed matters (so the test can fail)


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_one_process_per_checkpoint_gives_the_numbers_of_separate_runs(tok, tmp_path):
    """measure_trajectory_point: every seed's curve equals a separate run from a fresh load (up to float32 rounding: the
    runs of a checkpoint share one stacked model); the sweep's runs at the configured lr are the RL runs of every
    seed, not different ones, and another lr's run draws from its own generator (R11: `lr_seed`); each run's stream
    is its member's (R20: `run_seed`)."""
    import logging

    from vgh.lm.model import load_model
    from vgh.lm.task import encode_split
    from vgh.trajectory.checkpoint import lr_seed, measure_trajectory_point, run_seed

    tiny_model(tok, seed=8, dtype=torch.float32).save_pretrained(tmp_path / "step_5")
    tok.save_pretrained(tmp_path / "step_5")
    pairs = [(a, b) for a in range(4) for b in range(4)]
    frame = pd.DataFrame({"prompt": [prompt_text(a, b, 1) for a, b in pairs],
                          "answer": [true_answer(a, b, 1) for a, b in pairs]})
    rl_cfg = {**RL_DEFAULTS, "lr": 0.5, "steps": 4, "num_generations": 4, "prompts_per_step": 4, "seeds": [3, 4]}
    traj = {"pass_k": [1, 4], "headroom_k": 4, "rl": rl_cfg, "lr_sweep": [0.5, 2.0]}
    tables = measure_trajectory_point(str(tmp_path / "step_5"), 7, 5, frame, frame, traj, "cpu",
                                      logging.getLogger("test"))
    settings = RLSettings.from_config(rl_cfg)
    for seed in (3, 4):
        alone = run_from_checkpoint(load_model(str(tmp_path / "step_5")), encode_split(tok, frame),
                                    encode_split(tok, frame), digit_token_ids(tok), settings, run_seed(7, seed),
                                    progress=False).assign(seed=seed)
        got = tables["rl"].query("seed == @seed").drop(columns="checkpoint").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, alone, check_exact=False, rtol=1e-5)
    sweep = tables["sweep"]
    assert sorted(sweep["lr"].unique()) == [0.5, 2.0] and set(sweep["checkpoint"]) == {5}
    at_configured = sweep.query("lr == 0.5").drop(columns=["checkpoint", "lr"]).reset_index(drop=True)
    every_seed = tables["rl"].drop(columns="checkpoint").reset_index(drop=True)
    pd.testing.assert_frame_equal(at_configured, every_seed, check_exact=True)
    other = sweep.query("lr == 2.0")
    assert (other["learning_rate"] == 2.0).all()  # its own run, not a copy
    assert set(other["seed"]) == {lr_seed(7, 3, 2.0)} and lr_seed(7, 3, 2.0) not in (3, 4)
    assert len({lr_seed(7, 3, 2.0), lr_seed(7, 3, 0.5), lr_seed(8, 3, 2.0), run_seed(7, 3), run_seed(8, 3)}) == 5
    assert tables["metrics"]["checkpoint"].tolist() == [5] and 0 <= tables["metrics"]["pass_at_1"].iloc[0] <= 1


def test_loo_fit_never_sees_the_held_out_checkpoint():
    rng = np.random.default_rng(0)
    S = 10.0 ** rng.uniform(-4, -1, 8)
    H = rng.uniform(0.05, 0.5, 8)
    gain = predictors.g_pred(S, H, 30.0) * (1 + 0.1 * rng.standard_normal(8))
    pred, kappas = predictors.loo_predictions(S, H, gain)
    # a clean signal is recovered
    assert abs(np.log(predictors.fit_kappa(S, H, predictors.g_pred(S, H, 30.0)) / 30.0)) < 1e-3
    for i in range(len(S)):
        moved = gain.copy()
        moved[i] += 5.0
        pred2, _ = predictors.loo_predictions(S, H, moved)
        assert pred2[i] == pred[i]  # its own prediction ignores its own gain
        assert np.any(pred2 != pred)  # and the others do see it (so the test can fail)


def _summary(**kw):
    from synthetic import synthetic_inputs

    from vgh.trajectory.summary import trajectory_summary

    m, c, sw, traj = synthetic_inputs(**kw)
    return trajectory_summary(m, c, sw, traj, BOOT), traj


BOOT = {"n_resamples": 200, "seed": 0}
C1T = {"plateau_level": 0.95, "min_fraction_within_one": 0.5, "min_margin_over_baseline": 0.0,
       "min_fraction_lr_rule": 0.5}


def _claims(tables, traj, min_spearman=0.7):
    kw = {"configured_lr": traj["rl"]["lr"]}
    c1 = checks.check_c1(tables["checkpoints"], tables["peaks"], tables["sweep_summary"], C1T,
                         corruption_rate=0.1, **kw)
    c2 = checks.check_c2(tables["ensemble"], tables["member_predictors"], tables["checkpoints"],
                         tables["sweep_summary"],
                         {"min_spearman": min_spearman, "min_delta": 0.0, "min_fraction_lr_rule": 0.5},
                         **kw)
    return c1, c2


@pytest.mark.parametrize("K,n_seeds", [(5, 1), (5, 3), (10, 2)])  # R18: yes/no needs K >= 5 to PASS
def test_ensemble_checks_pass_when_gain_follows_g_pred(K, n_seeds):
    """C2 PASSes when the gain follows G_pred. C1's G_pred finds every member's peak, but every member peaks at the
    same checkpoint here, so a constant guess there finds them too: G_pred does not beat its best baseline and C1
    does not PASS (R12)."""
    tables, traj = _summary(n_members=K, n_checkpoints=8, n_seeds=n_seeds)
    assert set(tables["checkpoints"]["member"]) == set(range(K))
    e = tables["ensemble"].set_index("statistic")
    assert (e["lo"] <= e["estimate"] + 1e-12).all() and (e["estimate"] <= e["hi"] + 1e-12).all()
    c1, c2 = _claims(tables, traj)
    assert c2.verdict == "PASS", c2.summary()
    assert c2.checks["delta_vs_best_single_factor"]["role"] == "required"
    assert c1.checks["peak_within_one_checkpoint_of_plateau"]["verdict"] == "PASS"
    assert c1.details["best_baseline"].startswith("constant guess")
    assert c1.checks["beats_best_baseline"]["verdict"] != "PASS" and c1.verdict != "PASS", c1.summary()
    assert c1.checks["lr_is_rule_choice"]["role"] == "binding"


@pytest.mark.parametrize("n_seeds", [2, 3])
@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_c1_when_members_peak_apart(n_seeds):
    """Twenty members learning at paces 0.8 to 3 peak at different checkpoints: G_pred finds each (within one
    checkpoint) and is closer to the plateau than its best baseline on average. Under R12 the baseline's ties (it
    shares the plateau in some members) counted as failures and kept C1 INCONCLUSIVE although G_pred is the truth;
    R29 counts the members where the best baseline is off the plateau only: G_pred is strictly closer in every one of
    them, at least five, so C1 PASSes. With the configured lr falling, the binding lr sub-check keeps it
    INCONCLUSIVE."""
    tables, traj = _summary(n_members=20, n_checkpoints=8, n_seeds=n_seeds, pace=(0.8, 3.0))
    c1, _ = _claims(tables, traj)
    assert c1.checks["peak_within_one_checkpoint_of_plateau"]["verdict"] == "PASS"
    assert c1.details["mean_distance_to_plateau"]["G_pred"] < min(
        v for k, v in c1.details["mean_distance_to_plateau"].items() if k != "G_pred")
    beats = c1.checks["beats_best_baseline"]
    informative = np.array(beats.member_informative)
    assert 5 <= informative.sum() < 20 and min(beats.per_member) >= 0  # never worse; tied where it is left out
    assert (np.array(beats.per_member)[informative] > 0).all() and sum(beats.member_passed) == informative.sum()
    assert c1.details["informative_members"] == [m for m, ok in zip(range(20), informative) if ok]
    assert beats.verdict == "PASS" and c1.verdict == "PASS", c1.summary()
    assert c1.details["permutation_p_mean_distance"] < 0.05
    tables, traj = _summary(n_members=20, n_checkpoints=8, n_seeds=n_seeds, pace=(0.8, 3.0), configured_lr=0.01)
    c1, _ = _claims(tables, traj)
    assert c1.checks["lr_is_rule_choice"]["verdict"] == "FAIL" and c1.verdict == "INCONCLUSIVE"


def test_members_to_resolve():
    """R29: the smallest K with at least five informative members with probability 0.8."""
    from scipy import stats

    for q in (1 / 3, 0.5, 0.9):
        k = checks.members_to_resolve(q)
        assert stats.binom.sf(4, k, q) >= 0.8 > stats.binom.sf(4, k - 1, q)
    assert checks.members_to_resolve(1 / 3) == 19 and checks.members_to_resolve(0.5) == 12
    assert checks.members_to_resolve(0.0) is None and checks.members_to_resolve(float("nan")) is None


def test_plateau_and_peak_distance():
    g = np.array([0.1, 0.5, 0.9, 0.85, 0.2])
    se = np.array([0.01, 0.01, 0.02, 0.01, 0.01])
    # t(0.975, 2) = 4.30: 0.9 - 4.30 x 0.02 = 0.814 -> checkpoints 2 and 3 are on the plateau
    assert checks.plateau(g, se, 3, 0.95).tolist() == [False, False, True, True, False]
    assert checks.plateau(g, se, 1, 0.95).tolist() == [False, False, True, False, False]  # one seed: the max only
    on = checks.plateau(g, se, 3, 0.95)
    assert checks.peak_distance(np.array([0, 0, 0, 0, 1.0]), on) == 1  # peak at 4, plateau ends at 3
    assert checks.peak_distance(np.array([1.0, 0, 0, 0, 0]), on) == 2
    assert checks.peak_distance(g, on) == 0
    assert np.isnan(checks.peak_distance(np.full(5, np.nan), on))


def test_ensemble_checks_fail():
    # gains ranked by S alone: G_pred cannot beat its best single factor (Delta <= 0, two of five members tie at
    # exactly 0) -> C2 is not PASS (R18's interval over members: INCONCLUSIVE here, [-0.030, 0.002])
    tables, traj = _summary(n_members=5, n_checkpoints=8, n_seeds=3, gain="signal", noise=0.0)
    c1, c2 = _claims(tables, traj)
    assert c2.checks["delta_vs_best_single_factor"]["verdict"] != "PASS" and c2.verdict != "PASS"
    assert c2.checks["delta_vs_best_single_factor"]["interval"][1] < 0.01
    # reversed gains: the peaks are at opposite ends and rho is negative -> both FAIL
    tables, traj = _summary(n_members=5, n_checkpoints=8, n_seeds=3, gain="reversed")
    c1, c2 = _claims(tables, traj)
    assert c1.verdict == "FAIL" and c2.checks["spearman_g_pred"]["verdict"] == "FAIL" and c2.verdict == "FAIL"


def test_binding_lr_check_makes_claims_inconclusive_not_fail():
    # the configured lr (0.01) falls: the rule picks 0.003 -> binding sub-check FAILs -> INCONCLUSIVE
    tables, traj = _summary(n_members=5, n_checkpoints=6, n_seeds=3, configured_lr=0.01)
    c1, c2 = _claims(tables, traj)
    assert c1.checks["lr_is_rule_choice"]["verdict"] == "FAIL"
    assert c2.verdict == "INCONCLUSIVE"
    # every member peaks at one checkpoint, so a constant guess is on every plateau: no member can show a predictor
    # closer than it (R29: K' = 0), and C1's comparison is INCONCLUSIVE, as the claim
    beats = c1.checks["beats_best_baseline"]
    assert not any(beats.member_informative) and beats.verdict == "INCONCLUSIVE" and c1.verdict == "INCONCLUSIVE"
    # and a FAILing required sub-check still fails the claim
    tables, traj = _summary(n_members=5, n_checkpoints=6, n_seeds=3, configured_lr=0.01, gain="reversed")
    assert _claims(tables, traj)[0].verdict == "FAIL"


def test_inconclusive_when_members_disagree():
    from synthetic import synthetic_inputs

    from vgh.trajectory.summary import trajectory_summary

    a = synthetic_inputs(n_members=4, n_checkpoints=6, n_seeds=2)
    b = synthetic_inputs(n_members=4, n_checkpoints=6, n_seeds=2, gain="reversed", seed=1)
    metrics, curves, sweep = (pd.concat([x, y.assign(member=y["member"] + 4)], ignore_index=True)
                              for x, y in zip(a[:3], b[:3]))
    traj = a[3]
    c1, c2 = _claims(trajectory_summary(metrics, curves, sweep, traj, BOOT), traj)
    assert c1.verdict == "INCONCLUSIVE" and c2.checks["spearman_g_pred"]["verdict"] == "INCONCLUSIVE"
    assert c1.member_verdicts.count("PASS") == 4


def test_one_seed_and_nans_do_not_crash():
    tables, traj = _summary(n_members=2, n_checkpoints=3, n_seeds=1)
    _claims(tables, traj)
    from synthetic import synthetic_inputs

    from vgh.trajectory.summary import trajectory_summary

    m, c, sw, traj = synthetic_inputs(n_members=5, n_checkpoints=3, n_seeds=1)
    c["gain"] = np.nan
    tables = trajectory_summary(m, c, sw, traj, {"n_resamples": 50, "seed": 0})
    c1, c2 = _claims(tables, traj)
    assert c2.verdict == "FAIL"  # nothing measured: a non-finite statistic fails (R0)


def test_summary_refits_loo_once_per_seed_multiset_at_default_size(monkeypatch):
    """The bootstrap's cost: LOO refits run once per multiset of RL seeds (10 for 3 seeds), not per resample."""
    from synthetic import synthetic_inputs

    from vgh.trajectory import predictors
    from vgh.trajectory.summary import trajectory_summary

    calls = []
    loo = predictors.loo_predictions
    monkeypatch.setattr(predictors, "loo_predictions", lambda *a: calls.append(1) or loo(*a))
    m, c, sw, traj = synthetic_inputs(n_members=5, n_checkpoints=10, n_seeds=3, steps=40)
    trajectory_summary(m, c, sw, traj, {"n_resamples": 1000, "seed": 0})
    assert 5 <= len(calls) <= 5 * 10, len(calls)


@pytest.mark.parametrize("advantage,scale", [("grpo", "group"), ("grpo", "none"), ("rloo", "group"),
                                             ("reinforce", "group")])
@pytest.mark.parametrize("G", [2, 3, 5])
def test_update_coefficient_matches_enumeration(advantage, scale, G):
    """c(p) against a brute-force sum over all 2^G reward vectors of (1/G) sum_i A_i E[grad log pi | r_i] / grad p,
    with the RL code's own advantages (`vgh.lm.updates.advantages`, unbiased std + 1e-4)."""
    import itertools

    from vgh.lm.updates import advantages

    for p in (0.03, 0.3, 0.5, 0.9, 0.999):
        total = 0.0
        for r in itertools.product([0.0, 1.0], repeat=G):
            k = sum(r)
            prob = p ** k * (1 - p) ** (G - k)
            if prob == 0:
                continue
            A = advantages(torch.tensor(r, dtype=torch.float64), advantage, scale).numpy()
            # grad log pi / grad p: 1/p for a success, -1/(1-p) for a failure
            total += prob * sum(a * (1 / p if ri else -1 / (1 - p)) for a, ri in zip(A, r)) / G
        got = float(metrics.update_coefficient(torch.tensor(p, dtype=torch.float64), advantage, G, scale))
        assert got == pytest.approx(total, rel=1e-10, abs=1e-12), (p, got, total)
    for end, near in ((0.0, 1e-9), (1.0, 1 - 1e-9)):  # finite at p = 0, 1: the limit of the interior values
        at, by = (float(metrics.update_coefficient(torch.tensor(x, dtype=torch.float64), advantage, G, scale))
                  for x in (end, near))
        assert np.isfinite(at) and at == pytest.approx(by, rel=1e-6, abs=1e-8)
    if advantage in ("rloo", "reinforce"):
        assert float(metrics.update_coefficient(torch.tensor(0.37), advantage, G, scale)) == pytest.approx(1.0)
    if advantage == "grpo" and scale == "none":
        assert float(metrics.update_coefficient(torch.tensor(0.37), advantage, G, scale)) == \
            pytest.approx((G - 1) / G)


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_algorithm_signal(tok):
    """S_alg with c = 1 (RLOO) is |grad J|^2; with GRPO it is |mean_q c(p_q) grad p_q|^2 (checked per prompt)."""
    model = build_model(len(tok), 8, 1, 1, 4, 2).double()
    with torch.no_grad():
        model.transformer.wte.weight.mul_(10.0)
    prompts, answers = split(tok, [(1, 2), (3, 4), (5, 9), (8, 8), (0, 7)])
    digit_ids = digit_token_ids(tok)
    r = metrics.algorithm_signal(model, prompts, answers, digit_ids, "rloo", 4)
    assert r["signal"] == pytest.approx(r["signal_grad_j"], rel=1e-10)
    assert r["signal"] == pytest.approx(metrics.signal(model, prompts, answers, digit_ids), rel=1e-10)
    g = metrics.algorithm_signal(model, prompts, answers, digit_ids, "grpo", 4, "group", chunk=4)
    params = [p for p in model.parameters() if p.requires_grad]
    p = exact_pass1(model, prompts, answers, digit_ids)
    c = metrics.update_coefficient(p, "grpo", 4, "group")
    total = [torch.zeros_like(w) for w in params]
    for q in range(len(prompts)):
        from vgh.lm.policy import sequence_logprob

        pq = sequence_logprob(model, prompts[q:q + 1], answers[q:q + 1], digit_ids, 1.0).exp().sum()
        for t, d in zip(total, torch.autograd.grad(pq, params)):
            t += c[q] * d / len(prompts)
    assert g["signal"] == pytest.approx(float(sum((t ** 2).sum() for t in total)), rel=1e-8)
    assert g["update_coef_mean"] == pytest.approx(float(c.mean()), rel=1e-10)


@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_lr_rule_exact_variance_matches_simulation():
    """null_variance against a simulation of the step-0 policy: P of N prompts without replacement, G Bernoulli
    completions each, m steps."""
    from vgh.trajectory.lr_rule import null_variance

    rng = np.random.default_rng(0)
    N, P, G, m = 20, 6, 4, 3
    p = rng.uniform(0, 1, N)
    sims = np.empty(40000)
    for i in range(len(sims)):
        steps = []
        for _ in range(m):
            q = rng.choice(N, P, replace=False)
            steps.append(rng.binomial(G, p[q]).sum() / (P * G))
        sims[i] = np.mean(steps)
    exact = null_variance(p.var(), (p * (1 - p)).mean(), N, P, G, m)
    assert sims.var() == pytest.approx(exact, rel=0.03)
    assert sims.mean() == pytest.approx(p.mean(), abs=3 * np.sqrt(exact / len(sims)) + 1e-3)


def test_lr_rule():
    rows, stats = [], []
    for member in (0, 1):
        for ckpt, start in [(0, 0.0), (100, 0.5)]:
            stats.append({"member": member, "checkpoint": ckpt, "rl_n_prompts": 64, "rl_var_pq": 0.01,
                          "rl_mean_pq1mq": start * (1 - start)})
            for lr, end in [(0.1, start + 0.05), (1.0, start + 0.1), (10.0, start - 0.4 if start else 0.0)]:
                if member == 1 and lr == 1.0:
                    end = start - 0.3
                for step in range(8):
                    r = start + (end - start) * step / 7 + 0.001 * (step % 2)
                    rows.append({"member": member, "checkpoint": ckpt, "lr": lr, "step": step, "reward": r,
                                 "rl_pass1_before": start, "gain": end - start})
    table, per_lr, chosen = lr_rule(pd.DataFrame(rows), pd.DataFrame(stats), prompts_per_step=8, num_generations=4,
                                    alpha=0.05)
    assert chosen == {0: 1.0, 1: 0.1}
    assert per_lr.set_index(["member", "lr"]).loc[(0, 10.0), "n_fall"] == 1
    assert (per_lr["alpha"] == 0.05).all() and (per_lr["n_runs"] == 1).all()
    assert checks.lr_is_rule_choice(per_lr, 1.0) == {0: True, 1: False}
    # R11: a fall counts only when it repeats in every run at that lr: a second run of member 1 at lr 1.0 that
    # does not fall clears it (the rule then picks 1.0), a second run that falls too keeps it
    frame = pd.DataFrame(rows).assign(seed=0)
    flat = frame[(frame["member"] == 1) & (frame["lr"] == 1.0)].assign(
        seed=1, reward=lambda d: d["rl_pass1_before"] + 0.001 * (d["step"] % 2))
    _, per_lr2, chosen2 = lr_rule(pd.concat([frame, flat]), pd.DataFrame(stats), 8, 4, alpha=0.05)
    assert chosen2 == {0: 1.0, 1: 1.0}
    assert per_lr2.set_index(["member", "lr"]).loc[(1, 1.0), "n_runs"] == 2
    twice = frame[(frame["member"] == 1) & (frame["lr"] == 1.0)].assign(seed=1)
    assert lr_rule(pd.concat([frame, twice]), pd.DataFrame(stats), 8, 4, alpha=0.05)[2] == {0: 1.0, 1: 0.1}


def test_holm_step_down():
    from vgh.trajectory.lr_rule import holm

    # alpha = 0.05 over 4: the smallest needs <= 0.0125, the next <= 0.0167, then 0.025, then 0.05
    assert holm(np.array([0.01, 0.04, 0.015, 0.5]), 0.05).tolist() == [True, False, True, False]
    assert holm(np.array([0.02, 0.001, 0.9]), 0.05).tolist() == [True, True, False]
    assert not holm(np.array([0.013, 0.02, 0.03, 0.04]), 0.05).any()  # the first step fails: nothing rejected
    assert holm(np.array([np.nan, 0.9]), 0.05).tolist() == [True, False]  # an untestable checkpoint is not cleared


def test_a_member_in_a_group_gives_the_tables_it_gives_alone(tok, tmp_path):
    """measure_trajectory_points: every member's tables from a group of two (all the RL runs of both members in one
    stack, each member on its own prompts, R20) equal that member's tables measured alone, bit for bit on this CPU
    (each run's float32 forward / backward is its own slice of the batched matmuls, each run's float64 reductions
    its own), and the members differ."""
    import logging

    from vgh.trajectory.checkpoint import measure_trajectory_point, measure_trajectory_points

    paths, members = [], [tiny_model(tok, seed=seed, scale=30.0, dtype=torch.float32) for seed in (8, 9)]
    for seed, model in zip((8, 9), members):
        paths.append(str(tmp_path / f"member_{seed}" / "step_5"))
        model.save_pretrained(paths[-1])
        tok.save_pretrained(paths[-1])
    prompts = [prompt_text(a, b, 2) for a in range(10, 50, 10) for b in range(11, 55, 11)]
    # 3-digit answers the first member often draws, so the RL runs see rewards and gradients
    drawn = sample_completions(members[0].double(), encode_prompts(tok, prompts), digit_token_ids(tok), 3, 1.0, 1,
                               torch.Generator().manual_seed(0))[:, 0]
    frame = pd.DataFrame({"prompt": prompts, "answer": ["".join(map(str, row)) for row in drawn.tolist()]})
    rl_cfg = {**RL_DEFAULTS, "lr": 0.5, "steps": 3, "num_generations": 4, "prompts_per_step": 4, "seeds": [3, 4]}
    traj = {"pass_k": [1, 4], "headroom_k": 4, "rl": rl_cfg, "lr_sweep": [0.5, 2.0]}
    log = logging.getLogger("test")
    frames = [frame, frame.iloc[::-1].reset_index(drop=True)]  # each member its own split (order matters to RL)
    group = measure_trajectory_points(paths, [8, 9], 5, frames, frames, traj, "cpu", log)
    assert len(group) == 2
    for path, member, f, together in zip(paths, (8, 9), frames, group):
        alone = measure_trajectory_point(path, member, 5, f, f, traj, "cpu", log)
        assert list(together) == ["metrics", "rl", "sweep"]
        for name in together:
            pd.testing.assert_frame_equal(together[name], alone[name], check_exact=True)
    assert group[0]["rl"]["reward"].gt(0).any() and group[0]["rl"]["grad_norm"].gt(0).any()
    assert not group[0]["rl"]["grad_norm"].equals(group[1]["rl"]["grad_norm"])  # two members (the test can fail)
    assert group[0]["rl"]["eval_pass1_before"].iloc[0] != group[1]["rl"]["eval_pass1_before"].iloc[0]
