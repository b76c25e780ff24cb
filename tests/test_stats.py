"""The shared statistics helpers (scipy's numbers where defined, nan where not) and the log-axis guard."""
import io
import warnings

import numpy as np
import pytest
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


def test_degenerate_inputs_give_nan_not_errors():
    from vgh.stats import finite_max, last, loglog_slope, ratio, strict_max, strict_min

    assert ratio(1.0, 4.0) == 0.25 and np.isnan(ratio(1.0, 0.0)) and np.isnan(ratio(np.nan, 1.0))
    assert last([1.0, 2.0]) == 2.0 and np.isnan(last([]))
    assert finite_max([1.0, np.nan, 3.0]) == 3.0 and np.isnan(finite_max([np.nan]))
    assert strict_max([1.0, 3.0]) == 3.0 and np.isnan(strict_max([1.0, np.nan])) and np.isnan(strict_max([]))
    assert strict_min([1.0, 3.0]) == 1.0 and np.isnan(strict_min([]))
    n = np.array([16.0, 64.0, 256.0])
    assert loglog_slope(n, n ** -0.5) == pytest.approx(-0.5)
    assert loglog_slope(n, np.array([0.1, 0.0, 0.025])) == pytest.approx(-0.5)  # the zero is left out
    assert np.isnan(loglog_slope(n, np.zeros(3))) and np.isnan(loglog_slope([4.0, 4.0], [1.0, 2.0]))


def test_log_scale_only_where_the_data_allow_it():
    import matplotlib.pyplot as plt

    from vgh.plotting import log_scale

    fig, (good, zero, empty) = plt.subplots(1, 3)
    good.plot([1, 10, 100], [1e-3, 1e-2, 1e-1])
    good.axhline(-1.0)  # a reference line in axes coordinates does not count as data
    zero.plot([1, 2, 3], [0.0, -1.0, 0.0])
    empty.plot([1, 2], [np.nan, np.nan])
    assert log_scale(good, "xy") and good.get_xscale() == good.get_yscale() == "log"
    assert not log_scale(zero, "y") and zero.get_yscale() == "linear"
    assert not log_scale(empty, "xy") and empty.get_xscale() == "linear"
    assert any("no finite values" in t.get_text() for t in empty.texts)
    fig.savefig(io.BytesIO(), format="png")  # renders
    plt.close(fig)
