"""The shared statistics helpers (scipy's numbers where defined, nan where not) and the log-axis guard."""
import io
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from vgh.stats import nested_interval, pearson, spearman


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


def overlapping_tick_labels(fig, ax, axis: str) -> list[tuple[str, str]]:
    """Pairs of neighbouring, non-empty tick labels (major and minor) of `axis` whose drawn boxes overlap."""
    fig.canvas.draw()
    a = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = sorted(a.get_view_interval())
    boxes = sorted(((t.get_window_extent(), t.get_text()) for tick in [*a.get_major_ticks(), *a.get_minor_ticks()]
                    for t in [tick.label1] if t.get_visible() and t.get_text() and lo <= tick.get_loc() <= hi),
                   key=lambda b: b[0].x0 if axis == "x" else b[0].y0)
    return [(b1[1], b2[1]) for b1, b2 in zip(boxes, boxes[1:]) if b1[0].overlaps(b2[0])]


@pytest.mark.parametrize("span", [(0.03, 0.8), (0.2, 0.7), (1e-4, 1.0), (0.5, 0.9)])
def test_log_axis_labels_never_overlap(span):
    """Issue 31: B2's right x-axis (about one decade) labelled its minor ticks 3, 4, 6 x 10^k on top of each other."""
    import matplotlib.pyplot as plt

    from vgh.plotting import log_scale, set_style

    set_style()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.geomspace(*span, 8), np.geomspace(*span, 8))
    assert log_scale(ax, "xy")
    assert overlapping_tick_labels(fig, ax, "x") == [] and overlapping_tick_labels(fig, ax, "y") == []
    plt.close(fig)


def test_symlog_axis_labels_do_not_pile_up_at_zero():
    """Issue 31: C2's log axes with a value <= 0 took the smallest positive value as the linear threshold (1e-8
    below gains of 1e-2): a dozen decades of tick labels piled up at zero."""
    import matplotlib.pyplot as plt

    from vgh.plotting import set_style, symlog_scale

    set_style()
    values = np.array([-6e-4, 0.0, 3e-9, 7e-5, 4e-3, 1.3e-2])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(values, values, "o")
    linthresh = symlog_scale(ax, "xy", values)
    ax.set(xlim=(-1e-3, 3e-2), ylim=(-1e-3, 3e-2))
    assert linthresh == pytest.approx(1e-5)  # four decades below the decade of the largest |value| (1e-1)
    ticks = ax.get_xticks()
    assert 0.0 in ticks and len(ticks) <= 9 and ticks.max() >= 1e-2 and ticks.min() <= -1e-4
    assert overlapping_tick_labels(fig, ax, "x") == [] and overlapping_tick_labels(fig, ax, "y") == []
    plt.close(fig)


def test_nested_interval_resamples_units_within_members():
    units = [np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0]), np.array([5.0, 5.0, 5.0])]

    def stat(k, idx):
        u = units[k]
        return float(u.mean() if idx is None else u[idx].mean())

    lo, hi = nested_interval(stat, 3, [3, 3, 3], 2000, 0)
    assert lo < np.mean([u.mean() for u in units]) < hi
    # one member: only its units vary, so the interval is that of its mean over resampled units
    lo1, hi1 = nested_interval(stat, 1, [3], 2000, 0)
    assert 1.0 <= lo1 < 2.0 < hi1 <= 3.0
    # no spread within members and one member: a point
    assert nested_interval(lambda k, idx: 5.0, 1, [3], 100, 0) == (5.0, 5.0)
