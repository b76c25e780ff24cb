"""Part C: exact per-checkpoint metrics, critic-free RL, and the signal x headroom predictors."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT
from vgh.config import load_schema, validate_config
from vgh.lm.model import build_model
from vgh.lm.policy import exact_match, exact_pass1, sample_completions
from vgh.lm.task import answer_indices, build_tokenizer, digit_token_ids, encode_prompts, prompt_text, true_answer
from vgh.trajectory import checks, metrics, predictors
from vgh.trajectory.lr_rule import lr_rule
from vgh.trajectory.rl import RLSettings, clipped_surrogate, rl_train, run_from_checkpoint


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
@pytest.mark.parametrize("algo", ["grpo", "rloo", "ppo_clip"])
def test_rl_raises_pass1(tok, algo, optimizer, lr):
    model = tiny_model(tok, seed=4, dtype=torch.float32)
    prompt_ids, answers = learnable_task(tok)
    digit_ids = digit_token_ids(tok)
    before = metrics.mean_pass1(model, prompt_ids, answers, digit_ids)
    s = rl_settings(algo=algo, optimizer=optimizer, lr=lr, steps=15, num_generations=8, prompts_per_step=4,
                    num_iterations=2, scale_rewards="group")
    curve, model = rl_train(model, prompt_ids, answers, digit_ids, s, torch.Generator().manual_seed(0),
                            progress=False)
    after = metrics.mean_pass1(model, prompt_ids, answers, digit_ids)
    assert after > before + 0.2, (algo, before, after)
    assert list(curve["step"]) == list(range(15))
    for col in ("reward", "reward_std", "frac_reward_zero_std", "entropy", "clip_ratio", "grad_norm"):
        assert curve[col].notna().all()
    assert curve["reward"].iloc[-5:].mean() > curve["reward"].iloc[:3].mean()


def test_ppo_clip_engages_only_after_the_first_iteration(tok):
    prompt_ids, answers = learnable_task(tok)
    digit_ids = digit_token_ids(tok)
    base = tiny_model(tok, seed=5, dtype=torch.float32)
    one = rl_settings(algo="ppo_clip", optimizer="adam", lr=0.05, steps=5, num_generations=8, prompts_per_step=4,
                      num_iterations=1, epsilon=0.1)
    curve1, _ = rl_train(copy.deepcopy(base), prompt_ids, answers, digit_ids, one,
                         torch.Generator().manual_seed(0), progress=False)
    assert (curve1["clip_ratio"] == 0).all()  # ratio = 1 at the first iteration: nothing clipped
    many = RLSettings(**{**one.__dict__, "num_iterations": 4})
    curve4, _ = rl_train(copy.deepcopy(base), prompt_ids, answers, digit_ids, many,
                         torch.Generator().manual_seed(0), progress=False)
    assert curve4["clip_ratio"].max() > 0
    # the surrogate itself: rho = 1 gives zero clip fraction and the plain policy-gradient value
    logp = torch.randn(6, 3)
    adv = torch.randn(6, 1)
    loss, st = clipped_surrogate(logp, logp.detach(), adv, 0.2)
    assert st["region"] == 0 and torch.isclose(loss, -(adv * torch.ones_like(logp)).mean())
    loss, st = clipped_surrogate(logp + 1.0, logp, adv.abs(), 0.2)  # rho = e > 1.2 with A > 0: all clipped
    assert st["region"] == 1 and st["high"] == 1


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
    s = rl_settings(algo="ppo_clip", optimizer="sgd", lr=0.5, steps=6, num_generations=4, prompts_per_step=4)
    runs = [run_from_checkpoint(copy.deepcopy(base), (prompt_ids, answers), (prompt_ids[:8], answers[:8]),
                                digit_ids, s, seed=3, progress=False) for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    other = run_from_checkpoint(copy.deepcopy(base), (prompt_ids, answers), (prompt_ids[:8], answers[:8]),
                                digit_ids, s, seed=4, progress=False)
    assert runs[0]["reward"].gt(0).any()
    assert not other["reward"].equals(runs[0]["reward"])  # the seed matters (so the test can fail)


def test_one_process_per_checkpoint_gives_the_numbers_of_separate_runs(tok, tmp_path):
    """measure_checkpoint: every seed's curve equals a separate run from a fresh load, and the sweep's run at the
    configured lr is the first seed's RL run, not a different one."""
    import logging

    from vgh.lm.model import load_model
    from vgh.lm.task import encode_split
    from vgh.trajectory.checkpoint import measure_checkpoint

    tiny_model(tok, seed=8, dtype=torch.float32).save_pretrained(tmp_path / "step_5")
    tok.save_pretrained(tmp_path / "step_5")
    pairs = [(a, b) for a in range(4) for b in range(4)]
    frame = pd.DataFrame({"prompt": [prompt_text(a, b, 1) for a, b in pairs],
                          "answer": [true_answer(a, b, 1) for a, b in pairs]})
    rl_cfg = {**RL_DEFAULTS, "lr": 0.5, "steps": 4, "num_generations": 4, "prompts_per_step": 4, "seeds": [3, 4]}
    traj = {"pass_k": [1, 4], "headroom_k": 4, "rl": rl_cfg, "lr_sweep": [0.5, 2.0]}
    tables = measure_checkpoint(str(tmp_path / "step_5"), 5, frame, frame, traj, "cpu", logging.getLogger("test"))
    settings = RLSettings.from_config(rl_cfg)
    for seed in (3, 4):
        alone = run_from_checkpoint(load_model(str(tmp_path / "step_5")), encode_split(tok, frame),
                                    encode_split(tok, frame), digit_token_ids(tok), settings, seed, progress=False)
        got = tables["rl"].query("seed == @seed").drop(columns="checkpoint").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, alone, check_exact=True)
    sweep = tables["sweep"]
    assert sorted(sweep["lr"].unique()) == [0.5, 2.0] and set(sweep["checkpoint"]) == {5}
    at_configured = sweep.query("lr == 0.5").drop(columns=["checkpoint", "lr"]).reset_index(drop=True)
    first_seed = tables["rl"].query("seed == 3").drop(columns="checkpoint").reset_index(drop=True)
    pd.testing.assert_frame_equal(at_configured, first_seed, check_exact=True)
    assert (sweep.query("lr == 2.0")["learning_rate"] == 2.0).all()  # its own run, not a copy
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


def test_predictor_table_and_checks():
    rng = np.random.default_rng(1)
    steps = np.array([0, 10, 20, 40, 80, 160])
    S = np.array([1e-6, 1e-4, 1e-2, 5e-2, 1e-2, 1e-3])
    H = np.array([0.01, 0.1, 0.3, 0.3, 0.05, 0.01])
    per = pd.DataFrame({"checkpoint": steps, "signal": S, "headroom": H, "pass_at_1": np.linspace(0, 0.9, 6)})
    true = predictors.g_pred(S, H, 20.0)
    gains = pd.DataFrame([{"checkpoint": s, "seed": k, "gain": g + 0.002 * rng.standard_normal()}
                          for s, g in zip(steps, true) for k in range(3)])
    table = predictors.checkpoint_table(per, gains)
    preds, peaks = predictors.predictor_table(per, gains, np.random.default_rng(0), n_boot=50)
    assert set(preds["predictor"]) == set(predictors.PREDICTORS)
    row = preds.set_index("predictor").loc["G_pred"]
    assert row["spearman_lo"] <= row["spearman"] <= row["spearman_hi"]
    c2 = checks.check_c2(preds, table, {"min_spearman": 0.7})
    assert c2.passed == (c2.value >= 0.7)
    freq = predictors.peak_frequencies(steps, peaks)
    assert abs(freq["frequency"].sum() - 1) < 1e-12
    c1 = checks.check_c1(table, {}, freq)
    assert 0 <= c1.details["bootstrap_frac_peak_interior"] <= 1
    assert c1.details["peak_checkpoint"] == int(steps[np.argmax(table["gain_mean"])])
    assert c1.passed == (0 < np.argmax(table["gain_mean"]) < len(steps) - 1)
    # a monotone gain peaks at the last checkpoint: C1 fails
    mono = gains.assign(gain=gains["checkpoint"] * 1e-3)
    assert not checks.check_c1(predictors.checkpoint_table(per, mono), {}).passed


def test_lr_rule():
    rows = []
    for ckpt, start in [(0, 0.0), (100, 0.5)]:
        for lr, end in [(0.1, start + 0.05), (1.0, start + 0.1), (10.0, start - 0.4 if start else 0.0)]:
            for step in range(8):
                r = start + (end - start) * step / 7 + 0.001 * (step % 2)
                rows.append({"checkpoint": ckpt, "lr": lr, "step": step, "reward": r, "rl_pass1_before": start,
                             "gain": end - start})
    table, per_lr, chosen = lr_rule(pd.DataFrame(rows))
    assert chosen == 1.0
    assert per_lr.set_index("lr").loc[10.0, "n_fall"] == 1
