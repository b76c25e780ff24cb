"""Predicting the real RL gain along the trajectory from signal S and headroom H.

Value impact (our formula): G_pred = H * (1 - exp(-kappa * S / H)), a saturating product: for small S the
first-order gain rate ~ kappa * S, capped by the headroom H. kappa is one scalar fitted by least squares on the
real gains (the seed mean per checkpoint). Leave-one-checkpoint-out (LOO): the prediction for checkpoint i uses
kappa fitted on the other checkpoints only, so the fit cannot flatter itself. S*H, S alone and H alone are
compared as predictors (rank correlations are unchanged by any positive scale, so they need no fit).
Intervals: bootstrap over seeds (for each checkpoint resample its seeds with replacement, average, recompute
every correlation, the LOO fit included), percentile 2.5 / 97.5.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize

from vgh.stats import pearson, spearman

PREDICTORS = ("G_pred", "S*H", "S", "H")


def g_pred(S, H, kappa: float) -> np.ndarray:
    """H (1 - exp(-kappa S / H)); 0 where H = 0 (the limit)."""
    S, H = np.asarray(S, float), np.asarray(H, float)
    out = np.zeros(np.broadcast(S, H).shape)
    pos = H > 0
    out[pos] = H[pos] * -np.expm1(-kappa * S[pos] / H[pos])
    return out


def fit_kappa(S, H, gain, n_grid: int = 241) -> float:
    """Least-squares kappa >= 0 of gain ~ g_pred(S, H, kappa): a log grid spanning every checkpoint's
    linear-to-saturated range, then a bounded 1-D refinement around the best grid point (deterministic)."""
    S, H, gain = (np.asarray(x, float) for x in (S, H, gain))
    ok = (H > 0) & (S > 0)
    if not ok.any():
        return 0.0
    ratio = S[ok] / H[ok]
    lo, hi = -np.log10(ratio.max()) - 4, -np.log10(ratio.min()) + 4
    grid = np.linspace(lo, hi, n_grid)

    def sse(logk):
        return float(((gain - g_pred(S, H, 10.0 ** logk)) ** 2).sum())

    pred = H[None, ok] * -np.expm1(-(10.0 ** grid)[:, None] * ratio[None, :])
    full = ((gain[None, ok] - pred) ** 2).sum(1) + (gain[~ok] ** 2).sum()
    i = int(np.argmin(full))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]
    res = optimize.minimize_scalar(sse, bounds=(a, b), method="bounded", options={"xatol": 1e-6})
    best = res.x if res.fun <= full[i] else grid[i]
    return float(10.0 ** best)


def loo_predictions(S, H, gain) -> tuple[np.ndarray, np.ndarray]:
    """(LOO predictions, the kappa used for each): checkpoint i's kappa is fitted without checkpoint i."""
    S, H, gain = (np.asarray(x, float) for x in (S, H, gain))
    n = len(S)
    preds, kappas = np.empty(n), np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        kappas[i] = fit_kappa(S[keep], H[keep], gain[keep])
        preds[i] = g_pred(S[i], H[i], kappas[i])
    return preds, kappas


def predictor_values(S, H, gain) -> dict[str, np.ndarray]:
    """Each predictor's value per checkpoint (G_pred = the LOO prediction)."""
    S, H = np.asarray(S, float), np.asarray(H, float)
    return {"G_pred": loo_predictions(S, H, gain)[0], "S*H": S * H, "S": S, "H": H}


def gain_matrix(gains: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """(checkpoints sorted, per-checkpoint arrays of per-seed gains) from a table with checkpoint, seed, gain."""
    steps = np.sort(gains["checkpoint"].unique())
    return steps, [gains.loc[gains["checkpoint"] == s, "gain"].to_numpy(float) for s in steps]


def predictor_table(per_ckpt: pd.DataFrame, gains: pd.DataFrame, rng: np.random.Generator,
                    n_boot: int = 1000) -> tuple[pd.DataFrame, np.ndarray]:
    """Spearman and Pearson of every predictor with the mean real gain, with seed-bootstrap intervals.

    per_ckpt: one row per checkpoint with columns checkpoint, signal, headroom. gains: checkpoint, seed, gain.
    Returns (table: predictor, spearman, spearman_lo, spearman_hi, pearson, pearson_lo, pearson_hi, n_boot,
    and the bootstrap distribution of the mean-gain peak index [n_boot]).
    """
    steps, per_seed = gain_matrix(gains)
    pc = per_ckpt.set_index("checkpoint").loc[steps]
    S, H = pc["signal"].to_numpy(float), pc["headroom"].to_numpy(float)
    mean_gain = np.array([g.mean() for g in per_seed])
    point = predictor_values(S, H, mean_gain)
    boot = {name: np.empty((n_boot, 2)) for name in PREDICTORS}
    peaks = np.empty(n_boot, dtype=int)
    for b in range(n_boot):
        g = np.array([x[rng.integers(0, len(x), len(x))].mean() for x in per_seed])
        peaks[b] = int(np.argmax(g))
        for name, v in predictor_values(S, H, g).items():
            boot[name][b] = (spearman(g, v), pearson(g, v))
    rows = []
    for name in PREDICTORS:
        sp, pe = boot[name][:, 0], boot[name][:, 1]
        rows.append({"predictor": name,
                     "spearman": spearman(mean_gain, point[name]),
                     "spearman_lo": float(np.nanpercentile(sp, 2.5)), "spearman_hi": float(np.nanpercentile(sp, 97.5)),
                     "pearson": pearson(mean_gain, point[name]),
                     "pearson_lo": float(np.nanpercentile(pe, 2.5)), "pearson_hi": float(np.nanpercentile(pe, 97.5)),
                     "n_boot": int(n_boot)})
    return pd.DataFrame(rows), peaks


def checkpoint_table(per_ckpt: pd.DataFrame, gains: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint: the metrics, the real gain (mean, std, SE, min, max over seeds), G_pred LOO and in-sample
    (with the full-fit kappa), and the LOO kappa."""
    steps, per_seed = gain_matrix(gains)
    out = per_ckpt.set_index("checkpoint").loc[steps].reset_index()
    out["gain_mean"] = [g.mean() for g in per_seed]
    out["gain_std"] = [g.std(ddof=1) if len(g) > 1 else np.nan for g in per_seed]
    out["gain_se"] = out["gain_std"] / np.sqrt([len(g) for g in per_seed])
    out["gain_min"] = [g.min() for g in per_seed]
    out["gain_max"] = [g.max() for g in per_seed]
    out["n_seeds"] = [len(g) for g in per_seed]
    S, H, G = out["signal"].to_numpy(), out["headroom"].to_numpy(), out["gain_mean"].to_numpy()
    loo, kappas = loo_predictions(S, H, G)
    kappa = fit_kappa(S, H, G)
    out["g_pred_loo"], out["kappa_loo"] = loo, kappas
    out["g_pred_fit"], out["kappa_fit"] = g_pred(S, H, kappa), kappa
    out["signal_x_headroom"] = S * H
    return out


def peak_frequencies(steps, boot_peaks: np.ndarray) -> pd.DataFrame:
    """How often each checkpoint is the peak of the seed-bootstrapped mean gain."""
    return pd.DataFrame({"checkpoint": np.asarray(steps),
                         "frequency": [float(np.mean(boot_peaks == i)) for i in range(len(steps))]})
