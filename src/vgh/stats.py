"""Statistics shared by the claim checks: correlations, ratios, extremes and slopes that give nan, never a
warning or an error, where the numbers leave them undefined (a degenerate table still yields a claim record); the
members-then-units bootstrap interval of Part C's reported ensemble table (`nested_interval`)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import stats


def _defined(x: np.ndarray, y: np.ndarray, min_n: int) -> bool:
    return len(x) >= min_n and np.ptp(x) > 0 and np.ptp(y) > 0


def spearman(x, y, min_n: int = 2) -> float:
    """Spearman's rho of x and y; nan with fewer than `min_n` points or where either is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not _defined(x, y, min_n):
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def pearson(x, y, min_n: int = 2) -> float:
    """Pearson's r of x and y; nan with fewer than `min_n` points or where either is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not _defined(x, y, min_n):
        return float("nan")
    return float(stats.pearsonr(x, y).statistic)


def ratio(a, b) -> float:
    """a / b as a float; nan where b is 0 or either is not finite (a degenerate table gives nan, not an error)."""
    a, b = float(a), float(b)
    return a / b if b != 0 and np.isfinite(a) and np.isfinite(b) else float("nan")


def last(values) -> float:
    """The last value as a float; nan for an empty sequence."""
    values = np.asarray(values, float)
    return float(values[-1]) if values.size else float("nan")


def finite_max(values) -> float:
    """The largest finite value; nan where there is none."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else float("nan")


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x over the points where both are positive and finite; nan with
    fewer than two such points at distinct x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def strict_max(values) -> float:
    """The largest value; nan if there is none or any is nan (a check over "every" item fails on a missing one)."""
    values = np.asarray(values, float)
    return float(values.max()) if values.size else float("nan")


def strict_min(values) -> float:
    """The smallest value; nan if there is none or any is nan."""
    values = np.asarray(values, float)
    return float(values.min()) if values.size else float("nan")


def through_origin_fit(x, y) -> dict[str, float]:
    """Least-squares y ~ C x (no intercept): slope C, centred R^2 = 1 - SS_res / sum (y - mean y)^2."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    c = ratio(x @ y, x @ x)
    ss_res = float(((y - c * x) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"slope": c, "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")}


def average_ranks(a, groups=None) -> np.ndarray:
    """Ranks 1..n of the values of a 1-D array within each group (`groups`: one integer label per value; none, one
    group), ties sharing their mean rank: `scipy.stats.rankdata`'s "average" in each group (the same numbers), in one
    sort instead of a call per group, whose overhead dominated R25's trend over thousands of small cells."""
    a = np.asarray(a)
    if not a.size:
        return np.zeros(0)
    groups = np.zeros(a.size, dtype=np.intp) if groups is None else np.asarray(groups)
    order = np.lexsort((a, groups))
    s, g = a[order], groups[order]
    position = np.arange(a.size)
    new_group = np.r_[True, g[1:] != g[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, position, 0))
    new_tie = new_group | np.r_[True, s[1:] != s[:-1]]
    first = position[new_tie]
    last = np.r_[first[1:], a.size] - 1
    ranks = np.empty(a.size)
    ranks[order] = 0.5 * (first + last)[np.cumsum(new_tie) - 1] - group_start + 1
    return ranks


def partial_spearman(x, y, z) -> float:
    """Spearman of x and y controlling for z: Pearson of the ranks of x and y after a least-squares line in z's
    ranks is removed from each; nan where undefined."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    if ok.sum() < 4:
        return float("nan")
    rx, ry, rz = (average_ranks(v[ok]) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    res = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (rx, ry)]
    return pearson(res[0], res[1], min_n=4)


def _significant(v: np.ndarray, digits: int = 10) -> np.ndarray:
    """Each value rounded to `digits` significant digits (as "%.10g" prints it), each distinct value formatted once."""
    if not v.size:
        return v
    u, inverse = np.unique(v, return_inverse=True)
    return np.array([f"{a:.{digits}g}" for a in u.tolist()], dtype=float)[inverse.ravel()]


def within_cell_partial_rank_correlation(x, y, z, cells, min_cell: int = 3) -> float:
    """R25's partial rank correlation of x and y given z within cells: in each cell (rows sharing a `cells` label,
    cells with < `min_cell` finite rows skipped) x, y and z are ranked, values equal to 10 significant digits
    sharing their mean rank, and centred on the cell's mean rank; the pooled centred ranks give rho_xy, rho_xz,
    rho_yz and the result (rho_xy - rho_xz rho_yz) / sqrt((1 - rho_xz^2)(1 - rho_yz^2)). nan where x or y has no
    variation within any cell, or where x or y is a rank-function of z (|rho_xz| or |rho_yz| = 1 to 1e-12); where z
    is constant within every cell there is nothing to partial out (rho_xz = rho_yz = 0)."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    cells = np.asarray(cells)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    cell = np.unique(cells[ok], return_inverse=True)[1].ravel()
    size = np.bincount(cell) if cell.size else np.zeros(0, dtype=np.intp)
    kept = size[cell] >= min_cell
    cell = cell[kept]
    # each value's rank in its cell, centred on the cell's mean rank (n + 1) / 2: multiples of 1/2, so `cross` is
    # exact whatever the order of its sums
    r = np.stack([average_ranks(_significant(v[ok][kept]), cell) for v in (x, y, z)]) - (size[cell] + 1) / 2
    cross = r @ r.T
    d = np.sqrt(np.diag(cross))
    if not (d[:2] > 0).all():
        return float("nan")
    rxy = cross[0, 1] / (d[0] * d[1])
    # z constant within every cell: nothing to partial out
    rxz, ryz = (cross[0, 2] / (d[0] * d[2]), cross[1, 2] / (d[1] * d[2])) if d[2] > 0 else (0.0, 0.0)
    den = (1 - rxz ** 2) * (1 - ryz ** 2)
    return float((rxy - rxz * ryz) / np.sqrt(den)) if den > 1e-12 else float("nan")


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def nested_interval(per_member: Callable[[int, np.ndarray | None], float], n_members: int,
                    n_units: Sequence[int], n_resamples: int, seed) -> tuple[float, float]:
    """95% percentile interval of the mean over members of a statistic that depends on each member's units (RL
    seeds), resampled at both levels as rliable's stratified bootstrap does: draw members with replacement, then
    units within each drawn member with replacement, and recompute. Reported in Part C's ensemble table; no verdict
    is decided on it (R18, R21).

    per_member(k, idx): member k's statistic from its units idx (an index array with repeats), or from all of
    them when idx is None. The outer level is `scipy.stats.bootstrap` over member indices; the inner draws come
    from a generator seeded from `seed`, so the interval is deterministic.
    """
    if n_members == 0:
        return float("nan"), float("nan")
    inner = np.random.default_rng(_rng(seed).integers(2**63))

    def stat(members: np.ndarray) -> float:
        vals = [per_member(int(k), inner.integers(0, n_units[int(k)], n_units[int(k)])) for k in members]
        return float(np.mean(vals))

    if n_members == 1:
        draws = np.array([stat(np.array([0])) for _ in range(n_resamples)])
        if not np.isfinite(draws).all():
            return float("nan"), float("nan")
        lo, hi = np.percentile(draws, [2.5, 97.5])
        return float(lo), float(hi)
    res = stats.bootstrap((np.arange(n_members),), stat, vectorized=False, n_resamples=n_resamples,
                          method="percentile", confidence_level=0.95, rng=_rng(seed))
    ci = res.confidence_interval
    return float(ci.low), float(ci.high)
