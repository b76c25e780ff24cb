"""Rank and linear correlations with the guards every claim check uses: nan, never a warning, where undefined."""
from __future__ import annotations

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
