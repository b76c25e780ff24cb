"""Claim checks of Part C (C1, C2) under rules R0, R7, R8, R9 and R18 of docs/SCIENCE.md: pure functions of the tables
`vgh.trajectory.summary` builds.

- checkpoints: one row per (member, checkpoint) (`predictors.checkpoint_table`): metrics, real gain, G_pred LOO.
- peaks: one row per member (`predictors.peak_table`): real and predicted peak, within one checkpoint, interior.
- ensemble: one row per statistic (`predictors.ensemble_table`): estimate and nested interval of each
  predictor's Spearman and of Delta = rho(G_pred) - max(rho(S), rho(H)).
- member_predictors: one row per (member, predictor) (`predictors.member_predictor_table`).
- sweep_summary: one row per (member, lr) (`lr_rule.lr_rule`): stable, chosen_by_rule, configured.

Sub-checks (roles of `vgh.ensemble`): C1 requires the predicted peak within one checkpoint of the real one (R7,
yes/no per member); C2 requires Spearman(real gain, G_pred LOO) >= min_spearman and Delta > min_delta (R9, R13, R18's
Student-t intervals over members). Both carry the binding "configured lr is the lr rule's choice" (R8, yes/no per
member): when it does not PASS the claim is at best INCONCLUSIVE.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from vgh.claims import Claim
from vgh.ensemble import SubCheck, subcheck, with_member, yes_no_subcheck

from .predictors import PREDICTORS


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
    """R8's binding yes/no sub-check over the members (R18's binomial count against `min_fraction`)."""
    ok = lr_is_rule_choice(sweep_summary, configured_lr, members)
    return yes_no_subcheck([ok[m] for m in members], min_fraction, role="binding",
                           note=f"configured trajectory.rl.lr = {configured_lr:g} is the lr rule's choice (R8)")


def check_c1(checkpoints: pd.DataFrame, peaks: pd.DataFrame, sweep_summary: pd.DataFrame, thresholds: dict,
             configured_lr: float, corruption_rate: float | None = None, *, statement: str, metric: str) -> Claim:
    """C1 (R7): per member, the checkpoint of the largest LOO G_pred is at most one checkpoint from that of the
    largest RL-seed-mean real gain (required, yes/no per member); the configured lr is the rule's choice (binding,
    R8). Whether the real peak is interior is a reported finding. `thresholds`: claims.C1 (min_fraction_within_one,
    min_fraction_lr_rule: the yes/no fractions' thresholds)."""
    p = peaks.sort_values("member").reset_index(drop=True)
    members = [int(m) for m in p["member"]]
    within = yes_no_subcheck(p["within_one"].astype(bool).tolist(), thresholds["min_fraction_within_one"],
                             note="predicted (LOO G_pred) peak at most one checkpoint from the real-gain peak")
    lr = lr_subcheck(sweep_summary, configured_lr, members, thresholds["min_fraction_lr_rule"])
    ens = checkpoints.groupby("checkpoint")["gain_mean"].mean()
    details = {
        "per_member": p.to_dict(orient="records"),
        "fraction_real_peak_interior": float(p["real_peak_interior"].mean()) if len(p) else float("nan"),
        "ensemble_mean_gain_by_checkpoint": {int(s): float(g) for s, g in ens.items()},
        "ensemble_mean_gain_peak_checkpoint": int(ens.idxmax()) if np.isfinite(ens.to_numpy()).any() else None,
        "n_members": len(members), "n_checkpoints": int(checkpoints["checkpoint"].nunique()),
        "n_seeds": int(checkpoints["n_seeds"].min()) if len(checkpoints) else 0,
        "corruption_rate": corruption_rate,
        "rule": "R7: per member, |argmax LOO G_pred - argmax seed-mean gain| <= 1 checkpoint; yes/no over members "
                "(R0); R8's lr sub-check binding",
    }
    return Claim(
        id="C1",
        statement=statement,
        metric=metric,
        value=within.value,
        threshold=within.threshold,
        checks={"peak_within_one_checkpoint": within, "lr_is_rule_choice": lr},
        details=details,
    )


def check_c2(ensemble: pd.DataFrame, member_predictors: pd.DataFrame, checkpoints: pd.DataFrame,
             sweep_summary: pd.DataFrame, thresholds: dict, configured_lr: float, *, statement: str,
             metric: str) -> Claim:
    """C2 (R9, R13, R18): (a) Spearman(real gain, G_pred LOO) >= thresholds["min_spearman"]; (b) Delta =
    rho(G_pred) - max(rho(S), rho(H)) > thresholds["min_delta"] (a tie is not an improvement), per member; both
    required, each with R18's Student-t interval over members (a member's rho is computed from all its RL seeds).
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
                  note="per member from all its RL seeds; Student-t over members (R18)")
    de = subcheck(delta_m.to_numpy(), ">", float(thresholds["min_delta"]),
                  note="Delta = rho(G_pred) - max(rho(S), rho(H)) per member (R9); Student-t over members (R18)")
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
    return Claim(
        id="C2",
        statement=statement,
        metric=metric,
        value=sp.value,
        threshold=sp.threshold,
        checks={"spearman_g_pred": sp, "delta_vs_best_single_factor": de, "lr_is_rule_choice": lr},
        details=details,
    )
