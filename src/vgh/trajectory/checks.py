"""Claim checks of Part C (C1, C2) under rules R0, R8, R12, R13, R21 and R29 of docs/SCIENCE.md: pure functions of the
tables `vgh.trajectory.summary` builds.

- checkpoints: one row per (member, checkpoint) (`predictors.checkpoint_table`): metrics, real gain, G_pred LOO.
- peaks: one row per member (`predictors.peak_table`): real and predicted peak, within one checkpoint, interior.
- ensemble: one row per statistic (`predictors.ensemble_table`): estimate and nested interval of each
  predictor's Spearman and of Delta = rho(G_pred) - max(rho(S), rho(H)).
- member_predictors: one row per (member, predictor) (`predictors.member_predictor_table`).
- sweep_summary: one row per (member, lr) (`lr_rule.lr_rule`): stable, chosen_by_rule, configured.

Sub-checks (roles of `vgh.ensemble`): C1 requires the predicted peak within one checkpoint of the real-gain plateau
(yes/no per member) and closer to it than the best baseline predictor (R12; R29: sign test over the members where the
best baseline is off the plateau); C2 requires Spearman(real gain, G_pred LOO) >= min_spearman and Delta > min_delta
(R9, R13, R29: 0, strictly better; R21's sign test over members). Both carry the binding "configured lr is the lr
rule's choice" (R8, yes/no per member): when it does not PASS the claim is at best INCONCLUSIVE.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from vgh.claims import Finding
from vgh.ensemble import SubCheck, paired_subcheck, subcheck, with_member, yes_no_subcheck

from .predictors import PREDICTORS

# R12's baseline predictors of the real-gain peak besides a constant guess at each checkpoint: checkpoints columns
# (also C1's and C2's single-factor nulls, `vgh.trajectory.nulls`)
C1_BASELINES = {"S alone": "signal", "H alone": "headroom", "pass@1": "pass_at_1",
                "p(1 - p) of pass@1": "pass_variance", "the pretraining step": "checkpoint"}
INFORMATIVE_MIN = 5  # R29: the fewest informative members whose count can PASS (R21 at p0 = 1/2: 2^-5 <= 0.05)


def lr_is_rule_choice(sweep_summary: pd.DataFrame, configured_lr: float,
                      members: list[int] | None = None) -> dict[int, bool]:
    """{member: the configured lr is the lr rule's choice for that member} (False when the rule picks none, or the
    configured lr is not in the sweep). `members` adds members absent from the sweep (False)."""
    s = with_member(sweep_summary)
    out = {}
    for m, g in s.groupby("member"):
        chosen = g.loc[g["chosen_by_rule"].astype(bool), "lr"]
        out[int(m)] = bool(len(chosen) and np.isclose(float(chosen.iloc[0]), float(configured_lr)))
    for m in members or []:
        out.setdefault(int(m), False)
    return dict(sorted(out.items()))


def lr_subcheck(sweep_summary: pd.DataFrame, configured_lr: float, members: list[int],
                min_fraction: float) -> SubCheck:
    """R8's binding yes/no sub-check over the members (R21's binomial count against `min_fraction`)."""
    ok = lr_is_rule_choice(sweep_summary, configured_lr, members)
    return yes_no_subcheck([ok[m] for m in members], min_fraction, role="binding",
                           note=f"configured trajectory.rl.lr = {configured_lr:g} is the lr rule's choice (R8)")


def plateau(gain_mean: np.ndarray, gain_se: np.ndarray, n_seeds: int, level: float) -> np.ndarray:
    """R12: [C] bool, the checkpoints whose RL-seed-mean gain lies within the max's two-sided Student-t interval
    at `level` (n_seeds - 1 degrees of freedom); only the max itself when its standard error is not finite."""
    g = np.asarray(gain_mean, float)
    if not np.isfinite(g).any():
        return np.zeros(len(g), bool)
    top = int(np.nanargmax(g))
    se = float(np.asarray(gain_se, float)[top])
    half = float(stats.t.ppf(0.5 + level / 2, n_seeds - 1)) * se if n_seeds > 1 and np.isfinite(se) else 0.0
    out = g >= g[top] - half
    out[top] = True
    return out


def peak_distance(values: np.ndarray, on_plateau: np.ndarray) -> float:
    """Checkpoint-list positions from a predictor's peak (its largest value, the first on a tie) to the nearest
    plateau checkpoint (R12); nan when the predictor or the plateau is empty."""
    v = np.asarray(values, float)
    where = np.flatnonzero(on_plateau)
    if not np.isfinite(v).any() or not len(where):
        return float("nan")
    return float(np.abs(where - int(np.nanargmax(v))).min())


def c1_distances(checkpoints: pd.DataFrame, plateau_level: float) -> tuple[pd.DataFrame, dict[int, list[int]]]:
    """R12 per member: the distance to the real-gain plateau of G_pred (LOO) and of every baseline (a constant
    guess at each checkpoint, then `C1_BASELINES`), one column each (index: member), and each member's plateau
    (its checkpoints)."""
    c = with_member(checkpoints).sort_values(["member", "checkpoint"])
    rows, plateaus = [], {}
    for m, d in c.groupby("member", sort=True):
        steps = d["checkpoint"].to_numpy(int)
        on = plateau(d["gain_mean"].to_numpy(float), d["gain_se"].to_numpy(float), int(d["n_seeds"].min()),
                     plateau_level)
        plateaus[int(m)] = [int(x) for x in steps[on]]
        row = {"member": int(m), "G_pred": peak_distance(d["g_pred_loo"].to_numpy(float), on)}
        for i, step in enumerate(steps):
            row[f"constant guess {step}"] = peak_distance(np.arange(len(steps)) == i, on)
        for name, column in C1_BASELINES.items():
            row[name] = peak_distance(d[column].to_numpy(float), on)
        rows.append(row)
    return pd.DataFrame(rows).set_index("member"), plateaus


def permutation_p(checkpoints: pd.DataFrame, plateaus: dict[int, list[int]], observed: float, n: int,
                  seed: int) -> float:
    """R12's checkpoint-label permutation null: the fraction of `n` permutations of G_pred's values among each
    member's checkpoints (from `seed`) whose mean distance to the plateau is at most G_pred's `observed` one."""
    c = with_member(checkpoints).sort_values(["member", "checkpoint"])
    rng = np.random.default_rng([int(seed), 0x43312])
    members = sorted(plateaus)
    values = [c.loc[c["member"] == m, "g_pred_loo"].to_numpy(float) for m in members]
    if not members or not np.isfinite(observed) or len({len(v) for v in values}) != 1:
        return float("nan")
    v = np.stack(values)  # [M, C]
    steps = c.loc[c["member"] == members[0], "checkpoint"].to_numpy(int)
    on = np.stack([np.isin(steps, plateaus[m]) for m in members])
    perm = rng.permuted(np.broadcast_to(v, (n, *v.shape)), axis=2)  # [n, M, C]
    peak = np.nanargmax(np.where(np.isfinite(perm), perm, -np.inf), axis=2)  # [n, M]
    pos = np.arange(v.shape[1])
    dist = np.where(on[None, :, :], np.abs(pos[None, None, :] - peak[..., None]), np.inf).min(axis=2)
    return float((dist.mean(axis=1) <= observed + 1e-12).mean())


def members_to_resolve(fraction: float, power: float = 0.8, most: int = 1000) -> int | None:
    """R29: the smallest ensemble in which at least INFORMATIVE_MIN members are informative with probability `power`,
    when each is with probability `fraction` (None when none up to `most` is, e.g. fraction 0)."""
    if not np.isfinite(fraction) or fraction <= 0:
        return None
    k = np.arange(INFORMATIVE_MIN, most + 1)
    ok = k[stats.binom.sf(INFORMATIVE_MIN - 1, k, min(float(fraction), 1.0)) >= power]
    return int(ok[0]) if ok.size else None


def check_c1(checkpoints: pd.DataFrame, peaks: pd.DataFrame, sweep_summary: pd.DataFrame, thresholds: dict,
             configured_lr: float, corruption_rate: float | None = None, *,
             n_resamples: int = 1000, seed: int = 0) -> Finding:
    """C1 (R12): per member, the real-gain peak is a plateau (every checkpoint within the max's Student-t interval
    over RL seeds, level thresholds["plateau_level"]); G_pred's (LOO) peak must be within one checkpoint of it
    (required, yes/no per member, R21's count against min_fraction_within_one) and closer to it than the best
    baseline (a constant guess at each checkpoint, S, H, pass@1, the step; the smallest mean distance over members):
    m = d(best) - d(G_pred) per member, above min_margin_over_baseline (required, R21's sign test). The
    configured lr is the rule's choice (binding, R8). Reported: every baseline's mean distance, the plateaus, the
    checkpoint-label permutation null (`n_resamples` permutations from `seed`) and whether the real peak is
    interior (`peaks`)."""
    p = peaks.sort_values("member").reset_index(drop=True)
    dist, plateaus = c1_distances(checkpoints, float(thresholds["plateau_level"]))
    members = [int(m) for m in dist.index]
    baselines = dist.drop(columns="G_pred")
    means = baselines.mean(axis=0, skipna=False)
    best = str(means.idxmin()) if means.notna().any() else None
    margin = (dist[best] - dist["G_pred"]) if best else pd.Series(np.nan, index=dist.index)
    within = yes_no_subcheck((dist["G_pred"] <= 1).tolist(), thresholds["min_fraction_within_one"],
                             note="G_pred's (LOO) peak at most one checkpoint from the real-gain plateau (R12)")
    # R29: a member whose best baseline is already on the plateau cannot show a predictor closer than it
    informative = (dist[best] > 0).to_numpy(bool) if best else np.zeros(len(dist), bool)
    beats = paired_subcheck(margin.to_numpy(float), ">", float(thresholds["min_margin_over_baseline"]), informative,
                            note=f"d(best baseline: {best}) - d(G_pred) per member, checkpoint positions, over the "
                                 "members where the best baseline is off the plateau (R29)")
    fraction = float(informative.mean()) if len(informative) else float("nan")
    lr = lr_subcheck(sweep_summary, configured_lr, members, thresholds["min_fraction_lr_rule"])
    ens = checkpoints.groupby("checkpoint")["gain_mean"].mean()
    observed = float(dist["G_pred"].mean())
    details = {
        "per_member": p.to_dict(orient="records"),
        "plateau_by_member": {str(m): v for m, v in plateaus.items()},
        "distance_to_plateau_by_member": {str(m): {k: float(v) for k, v in r.items()} for m, r in dist.iterrows()},
        "mean_distance_to_plateau": {"G_pred": observed, **{k: float(v) for k, v in means.items()}},
        "best_baseline": best,
        "margin_over_best_baseline_by_member": {str(m): float(v) for m, v in margin.items()},
        "informative_members": [m for m, ok in zip(members, informative) if ok],
        "informative_fraction": fraction,
        "members_to_resolve": members_to_resolve(fraction),
        "permutation_p_mean_distance": permutation_p(checkpoints, plateaus, observed, int(n_resamples), int(seed)),
        "fraction_real_peak_interior": float(p["real_peak_interior"].mean()) if len(p) else float("nan"),
        "ensemble_mean_gain_by_checkpoint": {int(s): float(g) for s, g in ens.items()},
        "ensemble_mean_gain_peak_checkpoint": int(ens.idxmax()) if np.isfinite(ens.to_numpy()).any() else None,
        "n_members": len(members), "n_checkpoints": int(checkpoints["checkpoint"].nunique()),
        "n_seeds": int(checkpoints["n_seeds"].min()) if len(checkpoints) else 0,
        "corruption_rate": corruption_rate,
        "rule": "R12: per member, d(G_pred) <= 1 checkpoint from the real-gain plateau (yes/no over members); R29: "
                "d(best baseline) - d(G_pred) > min_margin_over_baseline counted over the members where the best "
                "baseline is off the plateau (INCONCLUSIVE below 5 of them); R8's lr binding",
    }
    return Finding(
        value=within.value,
        threshold=(f"{within.threshold}; beats the best baseline by > "
                   f"{float(thresholds['min_margin_over_baseline']):g} checkpoints"),
        checks={"peak_within_one_checkpoint_of_plateau": within, "beats_best_baseline": beats,
                "lr_is_rule_choice": lr},
        details=details,
    )


def check_c2(ensemble: pd.DataFrame, member_predictors: pd.DataFrame, checkpoints: pd.DataFrame,
             sweep_summary: pd.DataFrame, thresholds: dict, configured_lr: float) -> Finding:
    """C2 (R9, R13, R21): (a) Spearman(real gain, G_pred LOO) >= thresholds["min_spearman"]; (b) Delta =
    rho(G_pred) - max(rho(S), rho(H)) > thresholds["min_delta"] (a tie is not an improvement), per member; both
    required, each by R21's sign test over members (a member's rho is computed from all its RL seeds).
    R8's lr sub-check binding. rho(S*H) and the ensemble table's nested bootstrap intervals
    (`vgh.trajectory.predictors.ensemble_table`) are reported. `thresholds`: claims.C2."""
    e = ensemble.set_index("statistic")
    mp = member_predictors.sort_values("member")
    members = sorted(int(m) for m in mp["member"].unique())
    rho = mp.pivot(index="member", columns="predictor", values="spearman").reindex(members)
    rho = rho.reindex(columns=list(PREDICTORS))
    delta_m = rho["G_pred"] - rho[["S", "H"]].max(axis=1, skipna=True)

    def iv(name):
        return (float(e.loc[name, "lo"]), float(e.loc[name, "hi"])) if name in e.index else (np.nan, np.nan)

    sp = subcheck(rho["G_pred"].to_numpy(), ">=", float(thresholds["min_spearman"]),
                  note="per member from all its RL seeds; sign test over members (R21)")
    de = subcheck(delta_m.to_numpy(), ">", float(thresholds["min_delta"]),
                  note="Delta = rho(G_pred) - max(rho(S), rho(H)) per member (R9); sign test over members (R21)")
    lr = lr_subcheck(sweep_summary, configured_lr, members, thresholds["min_fraction_lr_rule"])
    details = {
        "ensemble": {name: {"estimate": float(r["estimate"]), "interval": [float(r["lo"]), float(r["hi"])]}
                     for name, r in e.iterrows()},
        "spearman_S_times_H": float(e.loc["S*H", "estimate"]) if "S*H" in e.index else float("nan"),
        "spearman_S_times_H_interval": list(iv("S*H")),
        "per_member_spearman": {int(m): {k: float(v) for k, v in r.items()} for m, r in rho.iterrows()},
        "n_members": len(members),
        "kappa_fit_by_member": {int(m): float(k) for m, k in
                                checkpoints.groupby("member")["kappa_fit"].first().items()},
        "n_checkpoints": int(checkpoints["checkpoint"].nunique()),
        "n_seeds": int(checkpoints["n_seeds"].min()) if len(checkpoints) else 0,
        "lr_rule_by_member": lr_is_rule_choice(sweep_summary, configured_lr, members),
    }
    return Finding(
        value=sp.value,
        threshold=sp.threshold,
        checks={"spearman_g_pred": sp, "delta_vs_best_single_factor": de, "lr_is_rule_choice": lr},
        details=details,
    )
