"""Would stacking Part B's members pay on this machine? Times one B3 batch (the update directions of REINFORCE,
RLOO and GRPO plus RLOO's permuted-reward null, float64, as `vgh.costates.alignment` computes them) for K members
one after another through the model, against the K members as one stacked model (`vgh.lm.stacked`, the design of
pretraining and Part C), single-threaded, and prints a table.

    python tools/bench_part_b_stack.py [--configfile config/smoke.yaml] [--members 5] [--batches 4]

Timing does not depend on the weights: the members are freshly initialised models of the config's architecture.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from vgh.config import load_config  # noqa: E402
from vgh.costates.alignment import objective_gradient, update_directions  # noqa: E402
from vgh.costates.enumeration import rewards_all  # noqa: E402
from vgh.lm import stacked  # noqa: E402
from vgh.lm.model import build_model  # noqa: E402
from vgh.lm.policy import all_completions  # noqa: E402
from vgh.lm.stack import Stack  # noqa: E402
from vgh.lm.task import answer_length, build_tokenizer, digit_token_ids, encode_split, make_splits  # noqa: E402
from vgh.lm.updates import advantages  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default=None, help="a config over config/config.yaml (default: none)")
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--batches", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                      [args.configfile] if args.configfile else [])
    d, m, c, a = cfg["data"], cfg["model"], cfg["costates"], cfg["alignment"]
    tok = build_tokenizer()
    digit_ids = digit_token_ids(tok)
    splits = make_splits(d["digits"], 16, d["n_rl"], d["n_eval"], 0.0, np.random.default_rng(0))
    ids, answers = encode_split(tok, splits["eval"].to_pandas(), "cpu", c["n_prompts"])
    L, q, k = answer_length(d["digits"]), len(ids), args.members
    models = [build_model(len(tok), 64, m["n_layer"], m["n_head"], m["n_embd"], seed=s).double() for s in range(k)]
    _, _, py = objective_gradient(models[0], ids, answers, digit_ids, a["temperature"])
    comps = all_completions(L)
    r_all = rewards_all(comps, answers, c["reward"])
    stack = Stack.of_models(models)
    params = stack.params()
    rows = []
    for g in a["num_generations"]:
        gen = torch.Generator().manual_seed(g)
        draws = [torch.stack([torch.multinomial(py, g, replacement=True, generator=gen) for _ in range(k)])
                 for _ in range(args.batches)]
        t0 = time.perf_counter()
        for idx in draws:
            for j, model in enumerate(models):
                rw = r_all.gather(1, idx[j])
                update_directions(model, ids, comps[idx[j]], rw, digit_ids, a["temperature"],
                                  null_rewards=rw.flip(-1), null_algos=("rloo",))
        alone = (time.perf_counter() - t0) / args.batches
        t0 = time.perf_counter()
        for idx in draws:
            rw = torch.stack([r_all.gather(1, i) for i in idx])
            comp = comps[idx]  # [K, Q, G, L]
            lp = stacked.group_logprobs(params, models[0], ids.expand(k, -1, -1), comp, digit_ids, a["temperature"])
            lp = lp.gather(-1, comp.unsqueeze(-1)).squeeze(-1).sum(-1)  # [K, Q, G]
            jobs = [advantages(rw, n) for n in ("reinforce", "rloo", "grpo")] + [advantages(rw.flip(-1), "rloo")]
            for i, adv in enumerate(jobs):
                torch.autograd.grad((adv * lp).sum() / (q * g), stack.flat, retain_graph=i < len(jobs) - 1)
        together = (time.perf_counter() - t0) / args.batches
        rows.append({"G": g, "sequences_per_member": q * g, f"{k}_members_one_by_one_ms": 1e3 * alone,
                     f"{k}_members_stacked_ms": 1e3 * together, "stacked_speedup": alone / together})
    print(f"One B3 batch ({q} prompts, float64, 1 thread), {k} members:\n")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=("g", "g", ".1f", ".1f", ".2f")))


if __name__ == "__main__":
    main()
