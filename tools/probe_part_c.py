"""Part C exploration probe (issue 30): where does the real RL gain peak along the pretraining trajectory, and do
S, H and G_pred follow it, as the RL budget, the pretraining pace and the corruption rate change?

`measure`: for every member and checkpoint of a finished pretraining workdir (the workflow's
results/pretrain/member_<k>/step_<s> folders and results/data/member_<k>/{rl,eval}.parquet prompt splits),
  - the exact float64 metrics of `vgh.trajectory.metrics.checkpoint_metrics` on the member's eval split (pass@1,
    pass@8, H = pass@8 - pass@1, S = `signal`, S_alg of the configured algorithm), loaded as
    `vgh.trajectory.checkpoint.measure_trajectory_points` loads them;
  - critic-free RL (the config's `trajectory.rl`: GRPO, SGD) from the float32 checkpoint as one stack over members x
    RL seeds x RL learning rates, each run on its member's own RL prompts with the generator of
    `run_seed(member, seed)` (the same generator seed at every lr: paired draws). The runs are chained over budget
    segments (`rl_train_runs(start=...)`, the same generator objects, so the draws continue; SGD has no optimizer
    state, so a chained run is the run of the full length): after each budget (default 10, 40, 160, 640 RL steps)
    the exact eval pass@1 of every run is read out (`vgh.lm.stacked.exact_pass1`, as `run_group` does), and the
    gain = eval pass@1 after - before.
Writes <out>/<condition>_gains.parquet (condition, member, checkpoint, rl_lr, seed, budget, eval_pass1_before,
eval_pass1_after, gain), <out>/<condition>_metrics.parquet and <out>/<condition>_timing.parquet (wall seconds of
each piece), with csv copies.

`analyse`: for every condition x RL lr x budget in <out>: the ensemble-mean real gain per checkpoint and its peak,
each member's peak (RL-seed-mean gain), S's, H's and G_pred's peaks (G_pred = H (1 - exp(-kappa S / H)), kappa
fitted leave-one-checkpoint-out per member on that cell's own seed-mean gains, `loo_predictions`), pass@1 at the
peaks, the Spearman of G_pred, S and H with the real gain per member, and the negative gains. Writes
<out>/analysis_*.csv and prints the tables as markdown.

    PYTHONPATH=src OMP_NUM_THREADS=1 python tools/probe_part_c.py measure --workdir runs/probe_default \
        --condition default [--configfile config/probe_default.yaml] [--lrs 0.003 0.001] [--budgets 10 40 160 640] \
        [--members 100 101] [--seeds 0 1] [--checkpoints 0 700]
    PYTHONPATH=src python tools/probe_part_c.py analyse [--out runs/probe_results]
    PYTHONPATH=src python tools/probe_part_c.py plateaus --pairs d1b:0.003 s1:0.001 [--budget 40]
    PYTHONPATH=src python tools/probe_part_c.py response --conditions d1 d2 [--lr 0.003] [--short 40] [--longs 160 640]

`plateaus` (issue 30, step 2): per member and condition, R12's real-gain plateau and the distance to it of G_pred,
S, H, p(1 - p), the step and each constant guess (<out>/plateaus.csv). `response`: whether the gain's growth with the
RL budget, across checkpoints, is ranked by G_pred's saturation or as well by a single factor (<out>/response.csv).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from vgh.config import load_config  # noqa: E402
from vgh.io import read_table  # noqa: E402
from vgh.lm import stacked  # noqa: E402
from vgh.lm.model import load_checkpoint, load_model  # noqa: E402
from vgh.lm.stack import Stack  # noqa: E402
from vgh.lm.task import encode_split  # noqa: E402
from vgh.stats import spearman  # noqa: E402
from vgh.trajectory.checkpoint import run_seed  # noqa: E402
from vgh.trajectory.checks import peak_distance, plateau  # noqa: E402
from vgh.trajectory.metrics import checkpoint_metrics  # noqa: E402
from vgh.trajectory.predictors import g_pred, loo_predictions  # noqa: E402
from vgh.trajectory.rl import RLSettings, rl_train_runs  # noqa: E402

METRIC_COLUMNS = ["pass_at_1", "pass_at_8", "headroom", "signal"]


def measure_checkpoint(workdir: Path, members: list[int], step: int, trajectory: dict, lrs: list[float],
                       seeds: list[int], budgets: list[int], log: logging.Logger) -> tuple[list[dict], list[dict],
                                                                                           list[dict]]:
    """Metrics rows, gain rows and timing rows of checkpoint `step` for every member (see the module docstring)."""
    base = RLSettings.from_config(trajectory["rl"])
    t0 = time.perf_counter()
    metrics, splits, models, digit_ids = [], [], [], None
    for member in members:
        path = str(workdir / f"results/pretrain/member_{member}/step_{step}")
        model, tok, digits = load_checkpoint(path, dtype=torch.float64, device="cpu")
        if digit_ids is None:
            digit_ids = digits
        elif not torch.equal(digits, digit_ids):
            raise ValueError(f"{path} tokenizes the digits differently: one tokenizer")
        frames = [read_table(workdir / f"results/data/member_{member}/{name}.parquet") for name in ("rl", "eval")]
        rl_split, eval_split = (encode_split(tok, f, "cpu") for f in frames)
        splits.append((rl_split, eval_split))
        m = checkpoint_metrics(model, *eval_split, digit_ids, trajectory["pass_k"], trajectory["headroom_k"],
                               base.algo, base.num_generations, base.scale_rewards)
        metrics.append({"member": member, "checkpoint": step, **{k: m[k] for k in METRIC_COLUMNS}})
        models.append(load_model(path, dtype=torch.float32, device="cpu"))
    t_metrics = time.perf_counter() - t0

    runs = [(i, seed, lr) for i in range(len(members)) for seed in seeds for lr in lrs]
    index = torch.tensor([i for i, _, _ in runs])
    rl_ids, rl_ans = (torch.stack([s[0][j] for s in splits])[index] for j in (0, 1))
    ev_ids, ev_ans = (torch.stack([s[1][j] for s in splits])[index] for j in (0, 1))
    starts = Stack.of_models(models)
    before = stacked.exact_pass1(starts.params(), models[0], torch.stack([s[1][0] for s in splits]),
                                 torch.stack([s[1][1] for s in splits]), digit_ids).mean(1).tolist()
    params = starts.rows(index)
    gens = [torch.Generator().manual_seed(run_seed(members[i], seed)) for i, seed, _ in runs]
    names = [f"member {members[i]} seed {seed} lr {lr:g}" for i, seed, lr in runs]
    quiet = logging.getLogger("vgh")  # rl_train_runs' per-step lines stay below WARNING
    gains, timing, done = [], [{"checkpoint": step, "piece": "metrics", "n_runs": len(members), "steps": 0,
                                "seconds": t_metrics}], 0
    for budget in budgets:
        seg = RLSettings.from_config(trajectory["rl"], steps=budget - done)
        t1 = time.perf_counter()
        _, params = rl_train_runs(models[0], rl_ids, rl_ans, digit_ids, seg, [lr for _, _, lr in runs], gens,
                                  log=quiet, progress=False, desc=f"step_{step} to {budget}", start=params, names=names)
        t2 = time.perf_counter()
        after = stacked.exact_pass1(params.params(), models[0], ev_ids, ev_ans, digit_ids).mean(1).tolist()
        t3 = time.perf_counter()
        timing += [{"checkpoint": step, "piece": "rl", "n_runs": len(runs), "steps": budget - done,
                    "seconds": t2 - t1},
                   {"checkpoint": step, "piece": "readout", "n_runs": len(runs), "steps": 0, "seconds": t3 - t2}]
        for (i, seed, lr), a in zip(runs, after):
            gains.append({"member": members[i], "checkpoint": step, "rl_lr": lr, "seed": seed, "budget": budget,
                          "eval_pass1_before": before[i], "eval_pass1_after": a, "gain": a - before[i]})
        done = budget
        log.info("checkpoint %d budget %d: %.1f s RL (%d runs), mean gain %s", step, budget, t2 - t1, len(runs),
                 ", ".join(f"lr {lr:g} {np.mean([g['gain'] for g in gains[-len(runs):] if g['rl_lr'] == lr]):+.4f}"
                           for lr in lrs))
    return metrics, gains, timing


def measure(args, log: logging.Logger):
    overrides = [args.configfile] if args.configfile else []
    config = load_config(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", overrides)
    trajectory = config["trajectory"]
    workdir = Path(args.workdir)
    members = args.members or [int(m) for m in config["pretrain"]["seeds"]]
    if any(m >= 1000 for m in members):
        raise SystemExit("exploration only: members (seeds) >= 1000 are the confirmatory ensemble")
    steps = args.checkpoints or [int(s) for s in config["pretrain"]["checkpoints"]]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    all_metrics, all_gains, all_timing = [], [], []
    for step in steps:
        m, g, t = measure_checkpoint(workdir, members, step, trajectory, args.lrs, args.seeds, args.budgets, log)
        all_metrics += m
        all_gains += g
        all_timing += t
        log.info("%s: checkpoint %d done (%.0f s)", args.condition, step, sum(r["seconds"] for r in t))
        for name, rows in (("metrics", all_metrics), ("gains", all_gains), ("timing", all_timing)):
            table = pd.DataFrame(rows)
            table.insert(0, "condition", args.condition)
            table.to_parquet(out / f"{args.condition}_{name}.parquet", index=False)
            table.to_csv(out / f"{args.condition}_{name}.csv", index=False)


def peak(steps: np.ndarray, values: np.ndarray) -> int:
    """The checkpoint of the largest value (the first on ties; -1 when none is finite)."""
    values = np.asarray(values, float)
    return int(steps[int(np.nanargmax(values))]) if np.isfinite(values).any() else -1


def analyse(args):
    out = Path(args.out)
    conditions = sorted(p.name.removesuffix("_gains.parquet") for p in out.glob("*_gains.parquet"))
    cells, members_rows, curves = [], [], []
    for cond in conditions:
        gains = pd.read_parquet(out / f"{cond}_gains.parquet")
        metrics = pd.read_parquet(out / f"{cond}_metrics.parquet").set_index(["member", "checkpoint"])
        for (lr, budget), cell in gains.groupby(["rl_lr", "budget"]):
            per = cell.groupby(["member", "checkpoint"])["gain"].mean().rename("gain").reset_index()
            ens = per.groupby("checkpoint")["gain"].mean()
            if ens.index.nunique() < 3:
                continue
            steps = ens.index.to_numpy()
            mets = metrics.groupby("checkpoint")[METRIC_COLUMNS].mean().loc[steps]
            curves.append(pd.DataFrame({"condition": cond, "rl_lr": lr, "budget": budget, "checkpoint": steps,
                                        "gain_mean": ens.to_numpy(),
                                        **{c: mets[c].to_numpy() for c in METRIC_COLUMNS}}))
            row_peaks = []
            for member, mine in per.groupby("member"):
                mine = mine.sort_values("checkpoint")
                st = mine["checkpoint"].to_numpy()
                met = metrics.loc[member].loc[st]
                S, H, g = met["signal"].to_numpy(), met["headroom"].to_numpy(), mine["gain"].to_numpy()
                pred, kappas = loo_predictions(S, H, g)
                idx = {k: list(st).index(peak(st, v)) for k, v in (("real", g), ("S", S), ("H", H), ("G", pred))}
                row = {"condition": cond, "rl_lr": lr, "budget": budget, "member": member,
                       "real_peak": int(st[idx["real"]]), "S_peak": int(st[idx["S"]]), "H_peak": int(st[idx["H"]]),
                       "G_pred_peak": int(st[idx["G"]]),
                       "dist_S": abs(idx["S"] - idx["real"]), "dist_H": abs(idx["H"] - idx["real"]),
                       "dist_G": abs(idx["G"] - idx["real"]),
                       "pass1_at_real_peak": float(met["pass_at_1"].iloc[idx["real"]]),
                       "max_gain": float(g.max()), "kappa_median": float(np.median(kappas)),
                       "rho_G": spearman(pred, g), "rho_S": spearman(S, g), "rho_H": spearman(H, g),
                       "n_negative": int((g < 0).sum()), "min_gain": float(g.min()),
                       "negative_at": " ".join(str(int(s)) for s in st[g < 0])}
                by_seed = cell[cell["member"] == member].pivot_table(index="checkpoint", columns="seed", values="gain")
                row["seed_real_peaks"] = " ".join(str(peak(by_seed.index.to_numpy(), by_seed[c].to_numpy()))
                                                  for c in by_seed.columns)
                members_rows.append(row)
                row_peaks.append(row)
            rp = pd.DataFrame(row_peaks)
            ens_S = mets["signal"].to_numpy()
            cells.append({"condition": cond, "rl_lr": lr, "budget": budget,
                          "ens_real_peak": peak(steps, ens.to_numpy()), "ens_S_peak": peak(steps, ens_S),
                          "ens_H_peak": peak(steps, mets["headroom"].to_numpy()),
                          "member_real_peaks": " ".join(map(str, rp["real_peak"])),
                          "member_S_peaks": " ".join(map(str, rp["S_peak"])),
                          "member_H_peaks": " ".join(map(str, rp["H_peak"])),
                          "member_G_pred_peaks": " ".join(map(str, rp["G_pred_peak"])),
                          "mean_dist_G": rp["dist_G"].mean(), "mean_dist_S": rp["dist_S"].mean(),
                          "mean_dist_H": rp["dist_H"].mean(),
                          "pass1_at_ens_peak": float(mets["pass_at_1"].loc[peak(steps, ens.to_numpy())]),
                          "ens_max_gain": float(ens.max()),
                          "rho_G": rp["rho_G"].mean(), "rho_S": rp["rho_S"].mean(), "rho_H": rp["rho_H"].mean(),
                          "delta_rho": (rp["rho_G"] - rp[["rho_S", "rho_H"]].max(axis=1)).mean(),
                          "n_negative_ens": int((ens < 0).sum()), "min_ens_gain": float(ens.min())})
    tables = {"cells": pd.DataFrame(cells), "members": pd.DataFrame(members_rows),
              "curves": pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()}
    for name, table in tables.items():
        table.to_csv(out / f"analysis_{name}.csv", index=False)
    timing = [pd.read_parquet(p) for p in out.glob("*_timing.parquet")]
    if timing:
        t = pd.concat(timing, ignore_index=True)
        rl = t[t["piece"] == "rl"]
        summary = t.groupby(["condition", "piece"])["seconds"].sum().unstack()
        per = (rl.groupby("condition").apply(lambda d: 100 * d["seconds"].sum() / (d["steps"] * d["n_runs"]).sum(),
                                             include_groups=False).rename("rl_s_per_100_steps_per_run"))
        tables["timing"] = summary.join(per).reset_index()
        tables["timing"].to_csv(out / "analysis_timing.csv", index=False)
    pd.set_option("display.width", 250)
    for name, table in tables.items():
        if name == "curves":
            wide = table.pivot_table(index=["condition", "rl_lr", "budget"], columns="checkpoint", values="gain_mean")
            print(f"\n## ensemble-mean real gain per checkpoint\n\n{wide.round(3).to_markdown()}")
            met = table.drop_duplicates(["condition", "checkpoint"]).set_index(["condition", "checkpoint"])
            for c in METRIC_COLUMNS:
                print(f"\n## ensemble-mean {c}\n\n{met[c].unstack().to_markdown(floatfmt='.3g')}")
        else:
            print(f"\n## {name}\n\n{table.to_markdown(index=False, floatfmt='.3g')}")


def plateau_table(out: Path, pairs: list[tuple[str, float]], budget: int) -> pd.DataFrame:
    """Per member and (condition, RL lr) of `pairs` at `budget` RL steps: R12's real-gain plateau (every checkpoint
    within the largest RL-seed-mean gain's Student-t interval, `vgh.trajectory.checks.plateau`) and the distance to it
    (`peak_distance`, checkpoint positions) of G_pred (LOO), S, H, p(1 - p) of pass@1, the step and a constant guess
    at each checkpoint, with each predictor's Spearman against the seed-mean gain."""
    rows = []
    for cond, lr in pairs:
        gains = pd.read_parquet(out / f"{cond}_gains.parquet")
        metrics = pd.read_parquet(out / f"{cond}_metrics.parquet")
        cell = gains[np.isclose(gains["rl_lr"], lr) & (gains["budget"] == budget)]
        for member, mine in cell.groupby("member"):
            met = metrics[metrics["member"] == member].set_index("checkpoint").sort_index()
            steps = met.index.to_numpy()
            wide = mine.pivot_table(index="checkpoint", columns="seed", values="gain").loc[steps]
            g, n = wide.mean(axis=1).to_numpy(), wide.shape[1]
            on = plateau(g, (wide.std(axis=1, ddof=1) / np.sqrt(n)).to_numpy(), n, 0.95)
            S, H, p1 = (met[c].to_numpy() for c in ("signal", "headroom", "pass_at_1"))
            loo, _ = loo_predictions(S, H, g)
            values = {"G_pred": loo, "S": S, "H": H, "p(1-p)": p1 * (1 - p1), "step": steps.astype(float)}
            row = {"condition": cond, "rl_lr": lr, "budget": budget, "member": int(member), "n_seeds": n,
                   "real_peak": int(steps[int(np.argmax(g))]), "plateau": " ".join(str(s) for s in steps[on])}
            row.update({f"d_{k}": peak_distance(v, on) for k, v in values.items()})
            row.update({f"d_const_{s}": peak_distance(np.arange(len(steps)) == i, on) for i, s in enumerate(steps)})
            row.update({f"rho_{k}": spearman(g, v) for k, v in values.items() if k != "step"})
            rows.append(row)
    return pd.DataFrame(rows)


def response_table(out: Path, conditions: list[str], lr: float, short: int, longs: list[int]) -> pd.DataFrame:
    """Per member of each condition: how the real gain responds to the RL budget, across the checkpoints >= 200 (where
    the gain is measurable): the Spearman of the ratio gain(long) / gain(short) with G_pred's predicted ratio
    (kappa fitted leave-one-checkpoint-out at `short` steps, scaled by long / short: the budget enters as kappa * b),
    with -S / H (the saturation variable), -S, H, -pass@1 and -step."""
    rows = []
    for cond in conditions:
        gains = pd.read_parquet(out / f"{cond}_gains.parquet")
        metrics = pd.read_parquet(out / f"{cond}_metrics.parquet")
        gains = gains[np.isclose(gains["rl_lr"], lr)]
        for member, mine in gains.groupby("member"):
            met = metrics[metrics["member"] == member].set_index("checkpoint").sort_index()
            met = met[met.index >= 200]
            wide = mine.pivot_table(index="checkpoint", columns="budget", values="gain").loc[met.index]
            S, H, p1 = (met[c].to_numpy() for c in ("signal", "headroom", "pass_at_1"))
            _, kappas = loo_predictions(S, H, wide[short].to_numpy())
            for long in longs:
                ratio = (wide[long] / wide[short]).to_numpy()
                pred = np.array([g_pred(s, h, k * long / short) / g_pred(s, h, k) for s, h, k in zip(S, H, kappas)])
                rows.append({"condition": cond, "member": int(member), "short": short, "long": long,
                             **{f"rho_{k}": spearman(ratio, v) for k, v in (
                                 ("G_pred ratio", pred), ("-S/H", -S / H), ("-S", -S), ("H", H), ("-pass@1", -p1),
                                 ("-step", -met.index.to_numpy(float)))}})
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="metrics and chained RL runs of one condition's workdir")
    m.add_argument("--workdir", required=True, help="the pretraining run's workdir, e.g. runs/probe_default")
    m.add_argument("--condition", required=True, help="the condition's name in the output tables")
    m.add_argument("--configfile", default=None, help="the config of that run (Part C settings; default: config.yaml)")
    m.add_argument("--members", type=int, nargs="*", default=None, help="default: the config's pretrain.seeds")
    m.add_argument("--checkpoints", type=int, nargs="*", default=None, help="default: the config's checkpoints")
    m.add_argument("--lrs", type=float, nargs="+", default=[0.003])
    m.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    m.add_argument("--budgets", type=int, nargs="+", default=[10, 40, 160, 640])
    m.add_argument("--out", default="runs/probe_results")
    a = sub.add_parser("analyse", help="peaks, predictors and costs over every measured condition")
    a.add_argument("--out", default="runs/probe_results")
    p = sub.add_parser("plateaus", help="R12's plateau and each predictor's distance to it, per member and condition")
    p.add_argument("--out", default="runs/probe_results")
    p.add_argument("--pairs", nargs="+", required=True, help="condition:rl_lr, e.g. d1b:0.003 s1:0.001")
    p.add_argument("--budget", type=int, default=40)
    r = sub.add_parser("response", help="how the gain responds to the RL budget, against G_pred's ratio and others")
    r.add_argument("--out", default="runs/probe_results")
    r.add_argument("--conditions", nargs="+", required=True)
    r.add_argument("--lr", type=float, default=0.003)
    r.add_argument("--short", type=int, default=40)
    r.add_argument("--longs", type=int, nargs="+", default=[160, 640])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "measure":
        if sorted(set(args.budgets)) != list(args.budgets):
            raise SystemExit("--budgets must increase")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
        log = logging.getLogger("probe")
        logging.getLogger("vgh").setLevel(logging.WARNING)
        measure(args, log)
    elif args.command == "plateaus":
        pairs = [(c, float(lr)) for c, lr in (x.split(":") for x in args.pairs)]
        table = plateau_table(Path(args.out), pairs, args.budget)
        table.to_csv(Path(args.out) / "plateaus.csv", index=False)
        print(table.to_markdown(index=False, floatfmt=".3g"))
    elif args.command == "response":
        table = response_table(Path(args.out), args.conditions, args.lr, args.short, args.longs)
        table.to_csv(Path(args.out) / "response.csv", index=False)
        print(table.to_markdown(index=False, floatfmt=".3g"))
    else:
        analyse(args)


if __name__ == "__main__":
    main()
