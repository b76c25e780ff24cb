"""The stacked model of `vgh.lm.stacked` (K GPT-2s as one) against the Hugging Face model, and Part C's RL runs in a
stack against the same runs alone."""
import copy

import pandas as pd
import pytest
import torch

from vgh.lm import policy, stacked
from vgh.lm.model import build_model
from vgh.lm.stack import Stack, StackedOptimizer
from vgh.lm.task import build_tokenizer, digit_token_ids
from vgh.trajectory.rl import RLSettings, rl_train_runs


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def models(tok, seeds, dtype=torch.float64):
    """2-layer, 2-head, 16-wide GPT-2s, one per seed, embeddings scaled so the policies are far from uniform."""
    out = []
    for seed in seeds:
        m = build_model(len(tok), 24, 2, 2, 16, seed).to(dtype)
        with torch.no_grad():
            m.transformer.wte.weight.mul_(4.0)
        out.append(m)
    return out


def stack_of(ms):
    """The stacked parameters of several different models, by name, as leaves (gradients per parameter)."""
    return {n: p.detach().clone().requires_grad_(True) for n, p in Stack.of_models(ms).params().items()}


def batch(tok, n=6, p=7, L=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, len(tok), (n, p), generator=g), torch.randint(0, 10, (n, L), generator=g)


def test_forward_and_gradients_match_the_hf_model(tok):
    ms = models(tok, [0, 1, 2])
    params = stack_of(ms)
    ids, comps = batch(tok)
    digit_ids = digit_token_ids(tok)
    got = stacked.completion_logprobs(params, ms[0], ids.expand(3, -1, -1), comps.expand(3, -1, -1),
                                      digit_ids, 0.7)
    assert got.shape == (3, 6, 3, 10)
    weights = torch.randn(3, 6, 3, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = torch.autograd.grad((got * weights).sum(), list(params.values()))
    for k, m in enumerate(ms):
        ref = policy.completion_logprobs(m, ids, comps, digit_ids, 0.7)
        torch.testing.assert_close(got[k], ref, rtol=0, atol=1e-12)
        m.zero_grad()
        (ref * weights[k]).sum().backward()
        for (name, p), g in zip(params.items(), grads):
            ref_grad = dict(m.named_parameters())[name].grad
            torch.testing.assert_close(g[k], ref_grad, rtol=1e-10, atol=1e-12, msg=name)
    assert not torch.allclose(got[0], got[1])  # the runs are different models (so the test can fail)
    torch.testing.assert_close(stacked.exact_pass1(params, ms[0], ids, comps, digit_ids)[2],
                               policy.exact_pass1(ms[2], ids, comps, digit_ids), rtol=0, atol=1e-14)


def test_sampling_draws_what_the_hf_policy_draws(tok):
    ms = models(tok, [3, 4])
    ids, _ = batch(tok, n=5)
    digit_ids = digit_token_ids(tok)
    gens = [torch.Generator().manual_seed(s) for s in (10, 11)]
    got = stacked.sample_completions(stack_of(ms), ms[0], ids.expand(2, -1, -1), digit_ids, 3, 1.0, 4, gens)
    for k, (m, seed) in enumerate(zip(ms, (10, 11))):
        ref = policy.sample_completions(m, ids, digit_ids, 3, 1.0, 4, torch.Generator().manual_seed(seed))
        assert torch.equal(got[k], ref)
    assert not torch.equal(got[0], got[1])


def test_the_kv_cache_is_the_full_recompute(tok):
    """The cached forward (each prompt's prefix once, then one position at a time attending to the cache) gives the
    full forward's hidden states (float64: to rounding); the cached sampler draws what the full recompute draws; and
    group_logprobs (the prompt's prefix once for its G completions) gives completion_logprobs on the prompts
    repeated G times, values and gradients, in float64 and float32."""
    ms = models(tok, [6, 7])
    params = stack_of(ms)
    ids, comps = batch(tok, n=5, p=7, L=3)
    digit_ids = digit_token_ids(tok)
    full = stacked.hidden_states(params, ms[0].config, torch.cat([ids, digit_ids[comps]], -1).expand(2, -1, -1))
    hidden, cache = stacked._blocks(params, ms[0].config, stacked._embed(params, ids.expand(2, -1, -1)))
    steps = [stacked._final(params, ms[0].config, hidden)]
    for t in range(3):
        hidden, cache = stacked._blocks(params, ms[0].config,
                                        stacked._embed(params, digit_ids[comps[:, t:t + 1]].expand(2, -1, -1), 7 + t),
                                        cache)
        steps.append(stacked._final(params, ms[0].config, hidden))
    torch.testing.assert_close(torch.cat(steps, dim=2), full, rtol=0, atol=1e-12)

    for n, L in ((4, 3), (3, 1)):
        gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
        cached = stacked.sample_completions(params, ms[0], ids.expand(2, -1, -1), digit_ids, L, 1.0, n, gens)
        gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
        assert torch.equal(cached, stacked._sample_recompute(params, ms[0], ids.expand(2, -1, -1), digit_ids, L, 1.0,
                                                             n, gens))

    g = 4
    drawn = torch.randint(0, 10, (2, 5, g, 3), generator=torch.Generator().manual_seed(3))
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        p = {name: x.detach().to(dtype).requires_grad_(True) for name, x in params.items()}
        grouped = stacked.group_logprobs(p, ms[0], ids.expand(2, -1, -1), drawn, digit_ids, 0.7)
        flat = stacked.completion_logprobs(p, ms[0], ids.repeat_interleave(g, 0).expand(2, -1, -1),
                                           drawn.reshape(2, 5 * g, 3), digit_ids, 0.7)
        torch.testing.assert_close(grouped.reshape(flat.shape), flat, rtol=0, atol=tol)
        weights = torch.randn(flat.shape, generator=torch.Generator().manual_seed(4), dtype=dtype)
        for a, b in zip(torch.autograd.grad((grouped.reshape(flat.shape) * weights).sum(), list(p.values())),
                        torch.autograd.grad((flat * weights).sum(), list(p.values()))):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_another_architecture_runs_through_the_model_itself(tok, tmp_path):
    """An external causal LM (a tiny Llama) takes the per-run `functional_call` path: logits, gradients, samples and
    pass@1 as the model gives them."""
    from test_external import save_llama

    from vgh.lm.model import load_model

    ms = [load_model(str(save_llama(tmp_path / f"m{i}", seed=i)), dtype=torch.float64) for i in range(2)]
    params = stack_of(ms)
    ids, comps = batch(tok, n=4, p=6, L=2)
    digit_ids = digit_token_ids(tok)
    got = stacked.completion_logprobs(params, ms[0], ids.expand(2, -1, -1), comps.expand(2, -1, -1), digit_ids, 0.7)
    grads = torch.autograd.grad(got[1].sum(), list(params.values()))
    ref = policy.completion_logprobs(ms[1], ids, comps, digit_ids, 0.7)
    torch.testing.assert_close(got[1], ref, rtol=0, atol=1e-12)
    ms[1].zero_grad()
    ref.sum().backward()
    for (name, _), g in zip(params.items(), grads):
        torch.testing.assert_close(g[1], dict(ms[1].named_parameters())[name].grad, rtol=1e-10, atol=1e-12)
        assert not g[0].any(), name  # run 0's parameters do not touch run 1's loss
    assert not torch.allclose(got[0], got[1])
    grouped = stacked.group_logprobs(params, ms[0], ids.expand(2, -1, -1), comps.view(1, 4, 1, 2).expand(2, -1, -1, -1),
                                     digit_ids, 0.7)
    torch.testing.assert_close(grouped[1, :, 0], ref, rtol=0, atol=1e-12)
    gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    drawn = stacked.sample_completions(params, ms[0], ids.expand(2, -1, -1), digit_ids, 2, 1.0, 3, gens)
    assert torch.equal(drawn[1], policy.sample_completions(ms[1], ids, digit_ids, 2, 1.0, 3,
                                                           torch.Generator().manual_seed(6)))
    float32 = load_model(str(tmp_path / "m0"))  # the template in float32: pass@1 still in float64
    torch.testing.assert_close(stacked.exact_pass1(params, float32, ids, comps, digit_ids)[1],
                               policy.exact_pass1(ms[1], ids, comps, digit_ids), rtol=0, atol=1e-14)


@pytest.mark.parametrize("optimizer,shared", [("sgd", False), ("adam", False), ("sgd", True), ("adam", True)])
def test_stacked_optimizer_is_torch_optim_per_run(optimizer, shared):
    """The one optimizer of pretraining groups and RL stacks (`vgh.lm.stack.StackedOptimizer`) on a [K, P] buffer:
    each row's update is torch.optim's Adam (= AdamW with weight decay 0; pretraining's betas 0.9 / 0.98 with a
    shared lr, Part C's 0.9 / 0.999 with an lr per row) or SGD on that row alone."""
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    lrs = [0.1] * 3 if shared else [0.1, 0.01, 0.3]
    betas = (0.9, 0.98) if shared else (0.9, 0.999)
    flat = start.clone()
    opt = StackedOptimizer(flat, optimizer, betas=betas)
    grads = [torch.randn(start.shape, generator=gen, dtype=torch.float64) for _ in range(4)]
    for g in grads:
        opt.step(g, lrs[0] if shared else torch.tensor(lrs, dtype=torch.float64).view(3, 1))
    for k, lr in enumerate(lrs):
        alone = start[k].clone().requires_grad_(True)
        ref = (torch.optim.AdamW([alone], lr=lr, betas=betas, weight_decay=0.0) if optimizer == "adam"
               else torch.optim.SGD([alone], lr=lr))
        for g in grads:
            alone.grad = g[k].clone()
            ref.step()
        torch.testing.assert_close(flat[k], alone.detach(), rtol=1e-12, atol=1e-14)
    assert not torch.equal(flat, start)


def test_a_stack_is_its_models():
    """`Stack`: rows are the models' parameters in named_parameters order, `params()` are views of the one buffer,
    `rows` copies rows into a new leaf, `unstack_into` writes a row back; another architecture is refused."""
    tok_ = build_tokenizer()
    ms = models(tok_, [0, 1], torch.float32)
    stack = Stack.of_models(ms, runs=[1, 0, 1])
    assert stack.k == 3 and stack.flat.requires_grad and stack.flat.is_leaf
    for name, p in ms[1].named_parameters():
        assert torch.equal(stack.params()[name][0], p.detach()) and torch.equal(stack.params()[name][2], p.detach())
    assert stack.params()["transformer.wte.weight"]._base is stack.flat
    picked = stack.rows([1, 1])
    assert torch.equal(picked.flat, stack.flat[[1, 1]].detach()) and picked.flat.is_leaf
    out = stack.unstack_into(copy.deepcopy(ms[1]), 1)
    assert all(torch.equal(a, b) for a, b in zip(out.state_dict().values(), ms[0].state_dict().values()))
    other = build_model(len(tok_), 24, 1, 2, 16, 0)
    with pytest.raises(ValueError, match="share an architecture"):
        Stack.of_models([ms[0], other])


@pytest.mark.parametrize("algo,optimizer,num_iterations", [("grpo", "sgd", 1), ("grpo", "adam", 2), ("rloo", "sgd", 1)])
def test_a_run_in_a_stack_is_the_run_alone(tok, algo, optimizer, num_iterations):
    """Every run of a stack (own lr, own generator) gives the curve it gives alone (same samples; batched matmuls
    of another size may round the last float32 bit differently), and the runs differ."""
    from vgh.lm.task import encode_prompts, prompt_text

    pairs = [(a, b) for a in range(4) for b in range(4)]
    prompt_ids = encode_prompts(tok, [prompt_text(a, b, 1) for a, b in pairs])
    answers = (torch.arange(16) % 3).view(16, 1)  # one-digit answers: rewards are often 1
    digit_ids = digit_token_ids(tok)
    (model,) = models(tok, [5], torch.float32)
    s = RLSettings(algo=algo, optimizer=optimizer, lr=0.5, steps=4, num_generations=4, prompts_per_step=4,
                   epsilon=0.2, num_iterations=num_iterations, scale_rewards="group")
    lrs, seeds = [0.5, 0.05, 0.5], [0, 0, 1]
    together, params = rl_train_runs(copy.deepcopy(model), prompt_ids, answers, digit_ids, s, lrs,
                                     [torch.Generator().manual_seed(x) for x in seeds], progress=False)
    for k, (lr, seed) in enumerate(zip(lrs, seeds)):
        (alone,), p1 = rl_train_runs(copy.deepcopy(model), prompt_ids, answers, digit_ids, s, [lr],
                                     [torch.Generator().manual_seed(seed)], progress=False)
        pd.testing.assert_frame_equal(together[k], alone, check_exact=False, rtol=1e-5)
        torch.testing.assert_close(params.flat[k], p1.flat[0], rtol=1e-5, atol=1e-6)
    assert together[0]["reward"].gt(0).any() and together[0]["grad_norm"].gt(0).any()
    assert not together[0]["grad_norm"].equals(together[2]["grad_norm"])  # the seed matters
    wte = params.params()["transformer.wte.weight"]
    assert not torch.allclose(wte[0], wte[1])
