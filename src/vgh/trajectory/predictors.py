"""Predicting the real RL gain along the trajectory from signal S and headroom H.

Value impact (our formula): G_pred = H * (1 - exp(-kappa * S / H)), a saturating product: for small S the
first-order gain rate ~ kappa * S, capped by the headroom H. kappa is one scalar fitted by least squares on the
real gains (the seed mean per checkpoint). Leave-one-checkpoint-out (LOO): the prediction for checkpoint i uses
kappa fitted on the other checkpoints only, so the fit cannot flatter itself. S*H, S alone and H alone are
compared as predictors (rank correlations are unchanged by any positive scale, so they need no fit).
Ensemble (docs/SCIENCE.md, R0 and R9): every statistic is computed per pretraining member from that member's RL
seeds; the ensemble estimate is the mean over members, with the nested percentile bootstrap of
`vgh.stats.nested_interval` (members, then RL seeds within each drawn member: the seed-mean gains, the LOO
G_pred with kappa refitted, and every rho recomputed). A seed is a unit across checkpoints (seed s is run at
every checkpoint), so a resample draws seed indices once per member. The statistic of a member depends only on
the multiset of drawn seeds, so `MemberFit` caches it by that multiset: with 3 seeds there are 10 of them, and the
LOO refits (the cost) run at most 10 times per member whatever `bootstrap.n_resamples` is. Every statistic uses the same
integer seed, hence the same resamples: Delta = rho(G_pred) - max(rho(S), rho(H)) is paired.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize

from vgh.ensemble import with_member
from vgh.stats import nested_interval, pearson, spearman

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


class MemberFit:
    """One member's checkpoints (sorted), S, H and its gain matrix [checkpoint, seed]; statistics of a seed
    resample (an index array with repeats, or None for all seeds), cached by the multiset of drawn seeds."""

    def __init__(self, metrics: pd.DataFrame, gains: pd.DataFrame):
        wide = gains.pivot_table(index="checkpoint", columns="seed", values="gain", aggfunc="mean",
                                   dropna=False).sort_index()
        self.steps = wide.index.to_numpy()
        self.seeds = wide.columns.to_numpy()
        self.gain = wide.to_numpy(float)  # [C, n_seeds]; a missing (checkpoint, seed) is nan and averaged out
        pc = metrics.drop_duplicates("checkpoint").set_index("checkpoint").loc[self.steps]
        self.S, self.H = pc["signal"].to_numpy(float), pc["headroom"].to_numpy(float)
        self._cache: dict[tuple, dict] = {}

    @property
    def n_seeds(self) -> int:
        return self.gain.shape[1]

    def stats(self, idx: np.ndarray | None = None) -> dict:
        """Seed-mean gain, LOO G_pred and kappas, every predictor's Spearman / Pearson with the gain, the real and
        predicted peak indices, and Delta = rho(G_pred) - max(rho(S), rho(H)), for the seeds `idx`."""
        key = tuple(sorted(int(i) for i in idx)) if idx is not None else tuple(range(self.n_seeds))
        if key not in self._cache:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = np.nanmean(self.gain[:, list(key)], axis=1)
            if np.isfinite(g).all() and np.isfinite(self.S).all() and np.isfinite(self.H).all():
                loo, kappas = loo_predictions(self.S, self.H, g)
            else:  # nothing to fit: the LOO predictions are unmeasured
                loo, kappas = np.full(len(g), np.nan), np.full(len(g), np.nan)
            vals = {"G_pred": loo, "S*H": self.S * self.H, "S": self.S, "H": self.H}
            rho = {n: spearman(g, v) for n, v in vals.items()}
            singles = [rho[n] for n in ("S", "H") if np.isfinite(rho[n])]
            # a single factor that is constant ranks nothing: the best single factor is the other one
            best = max(singles) if singles else float("nan")
            self._cache[key] = {
                "gain_mean": g, "g_pred_loo": loo, "kappa_loo": kappas, "spearman": rho,
                "pearson": {n: pearson(g, v) for n, v in vals.items()},
                "delta": rho["G_pred"] - best if singles else float("nan"),
                "real_peak": int(np.nanargmax(g)) if np.isfinite(g).any() else -1,
                "pred_peak": int(np.nanargmax(loo)) if np.isfinite(loo).any() else -1,
            }
        return self._cache[key]


def member_fits(metrics: pd.DataFrame, gains: pd.DataFrame) -> dict[int, MemberFit]:
    """{member: MemberFit} from the metrics (member, checkpoint, signal, headroom) and the gains (member,
    checkpoint, seed, gain); a missing member column reads as member 0."""
    metrics, gains = with_member(metrics), with_member(gains)
    return {int(m): MemberFit(metrics[metrics["member"] == m], g) for m, g in gains.groupby("member", sort=True)}


ENSEMBLE_STATISTICS = (*PREDICTORS, "delta")
"""Rows of the ensemble table: each predictor's Spearman with the real gain, and R9's Delta."""


def ensemble_table(fits: dict[int, MemberFit], n_resamples: int, seed: int) -> pd.DataFrame:
    """One row per statistic (each predictor's Spearman with the real gain, and `delta`): its estimate (mean over
    members of the member's value from all its seeds), the nested 95% interval (members, then RL seeds), the
    number of members and n_boot (= n_resamples). Every row uses the same resamples (same integer seed): paired."""
    members = sorted(fits)
    n_units = [fits[m].n_seeds for m in members]

    def getter(name):
        def per_member(k: int, idx):
            st = fits[members[k]].stats(idx)
            return st["delta"] if name == "delta" else st["spearman"][name]
        return per_member

    rows = []
    for name in ENSEMBLE_STATISTICS:
        f = getter(name)
        point = np.array([f(k, None) for k in range(len(members))])
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lo, hi = nested_interval(f, len(members), n_units, n_resamples, int(seed)) if np.isfinite(point).all() \
                    else (float("nan"), float("nan"))
        rows.append({"statistic": name, "estimate": float(point.mean()) if len(point) else float("nan"),
                     "lo": lo, "hi": hi, "n_members": len(members), "n_boot": int(n_resamples)})
    return pd.DataFrame(rows)


def member_predictor_table(fits: dict[int, MemberFit]) -> pd.DataFrame:
    """One row per (member, predictor): Spearman and Pearson with the member's seed-mean real gain."""
    rows = []
    for m, fit in fits.items():
        st = fit.stats()
        for name in PREDICTORS:
            rows.append({"member": m, "predictor": name, "spearman": st["spearman"][name],
                         "pearson": st["pearson"][name]})
    return pd.DataFrame(rows)


def checkpoint_table(per_ckpt: pd.DataFrame, gains: pd.DataFrame,
                     fits: dict[int, MemberFit] | None = None) -> pd.DataFrame:
    """Per (member, checkpoint): the metrics, the real gain (mean, std, SE, min, max over seeds), G_pred LOO and
    in-sample (with the member's full-fit kappa), the LOO kappa, S*H. A missing member column reads as member 0."""
    per_ckpt, gains = with_member(per_ckpt), with_member(gains)
    fits = fits if fits is not None else member_fits(per_ckpt, gains)
    out = []
    for m, fit in fits.items():
        t = per_ckpt[per_ckpt["member"] == m].drop_duplicates("checkpoint").set_index("checkpoint") \
            .loc[fit.steps].reset_index()
        t["member"] = m
        G = fit.gain
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                n = np.isfinite(G).sum(1)
                t["gain_mean"] = np.nanmean(G, 1)
                t["gain_std"] = np.where(n > 1, np.nanstd(G, 1, ddof=1), np.nan)
                t["gain_se"] = t["gain_std"] / np.sqrt(n)
                t["gain_min"], t["gain_max"] = np.nanmin(G, 1), np.nanmax(G, 1)
        t["n_seeds"] = n
        st = fit.stats()
        kappa = fit_kappa(fit.S, fit.H, st["gain_mean"]) if np.isfinite(st["kappa_loo"]).all() else float("nan")
        t["g_pred_loo"], t["kappa_loo"] = st["g_pred_loo"], st["kappa_loo"]
        t["g_pred_fit"], t["kappa_fit"] = g_pred(fit.S, fit.H, kappa), kappa
        t["signal_x_headroom"] = fit.S * fit.H
        t["pass_variance"] = t["pass_at_1"] * (1 - t["pass_at_1"])  # p(1 - p): R29's baseline and confounder
        out.append(t)
    cols = ["member", "checkpoint"]
    table = pd.concat(out, ignore_index=True)
    return table[cols + [c for c in table.columns if c not in cols]]


def peak_table(fits: dict[int, MemberFit], n_resamples: int, seed: int) -> pd.DataFrame:
    """Per member (R7; reported beside C1, which R12 judges on the plateau): the real peak (largest seed-mean gain)
    and the predicted peak (largest LOO G_pred), their distance in checkpoints, whether it is <= 1, whether the real
    peak is interior, and the fraction of seed resamples (n_resamples, seeded) whose peak is interior (a reported
    finding)."""
    rng = np.random.default_rng(seed)
    rows = []
    for m, fit in fits.items():
        st = fit.stats()
        i, j, C = st["real_peak"], st["pred_peak"], len(fit.steps)
        draws = rng.integers(0, fit.n_seeds, (n_resamples, fit.n_seeds))
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = np.nanmean(fit.gain[:, draws], axis=-1)  # [C, n_resamples]
        finite = np.isfinite(g).any(0)
        peaks = np.where(finite, np.argmax(np.where(np.isfinite(g), g, -np.inf), axis=0), -1)
        rows.append({"member": m, "n_checkpoints": C, "n_seeds": fit.n_seeds,
                     "real_peak_index": i, "real_peak_checkpoint": int(fit.steps[i]) if i >= 0 else -1,
                     "predicted_peak_index": j, "predicted_peak_checkpoint": int(fit.steps[j]) if j >= 0 else -1,
                     "peak_distance": abs(i - j) if i >= 0 and j >= 0 else -1,
                     "within_one": bool(i >= 0 and j >= 0 and abs(i - j) <= 1),
                     "real_peak_interior": bool(0 < i < C - 1),
                     "frac_peak_interior_seed_bootstrap": float(np.mean((peaks > 0) & (peaks < C - 1)))})
    return pd.DataFrame(rows)
