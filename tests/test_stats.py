"""The shared correlation helpers: scipy's numbers where defined, nan (no warning) where not."""
import warnings

import numpy as np
from scipy import stats as sps

from vgh.stats import pearson, spearman


def test_spearman_and_pearson_match_scipy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=12), rng.normal(size=12)
    assert spearman(x, y) == float(sps.spearmanr(x, y).statistic)
    assert pearson(x, y) == float(sps.pearsonr(x, y).statistic)


def test_undefined_correlations_are_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(spearman([1, 2, 3], [5, 5, 5])) and np.isnan(pearson([2, 2], [1, 3]))
        assert np.isnan(spearman([1, 2], [3, 4], min_n=3)) and spearman([1, 2], [3, 4]) > 0.99
