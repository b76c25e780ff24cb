"""Part A's summaries of the experiment tables: what the A1-A3 checks (`vgh.control.checks`) decide on and the
figures plot (A1's errors over seeds; A2's LQ errors and pendulum cosines, distances and power; A3's biases)."""
from __future__ import annotations

import numpy as np
import pandas as pd


# ---------------------------------------------------------------------------------------------- A1
def a1_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max over seeds of rel_error and per_rollout_var per (estimator, N)."""
    g = table.groupby(["estimator", "n_rollouts"])
    out = g.agg(rel_error=("rel_error", "mean"), rel_error_min=("rel_error", "min"),
                rel_error_max=("rel_error", "max"), per_rollout_var=("per_rollout_var", "mean"),
                per_rollout_var_min=("per_rollout_var", "min"), per_rollout_var_max=("per_rollout_var", "max"),
                n_seeds=("seed", "nunique"))
    return out.reset_index()



# ---------------------------------------------------------------------------------------------- A2
def _norms(df: pd.DataFrame, keys: list[str], a: str, b: str) -> pd.DataFrame:
    """Per group of `keys`: |a - b| and |b| over the coordinates."""
    d = df.assign(_diff2=(df[a] - df[b]) ** 2, _ref2=df[b] ** 2, _se2=df["se"] ** 2)
    g = d.groupby(keys)[["_diff2", "_ref2", "_se2"]].sum()
    return pd.DataFrame({"err": np.sqrt(g._diff2), "ref": np.sqrt(g._ref2), "se": np.sqrt(g._se2)}).reset_index()


def a2_lq_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Pooled relative error sum_q |mean costate - grad V| / sum_q |grad V| per (seed, M)."""
    n = _norms(table, ["seed", "continuations", "probe"], "costate", "reference")
    g = n.groupby(["seed", "continuations"])[["err", "ref", "se"]].sum()
    return pd.DataFrame({"rel_error": g.err / g.ref, "rel_se": g.se / g.ref}).reset_index()


def _cosine_table(costate: pd.DataFrame, ref: pd.DataFrame, keys: list[str], on: list[str] | None = None
                  ) -> pd.DataFrame:
    """Per `keys`: the cosine, relative difference and reference norm of costate vs ref, matched on `on` (default
    `keys`) and "coord"."""
    m = costate.merge(ref, on=(keys if on is None else on) + ["coord"], suffixes=("_c", "_r"))
    m = m.assign(_cr=m.value_c * m.value_r, _cc=m.value_c ** 2, _rr=m.value_r ** 2,
                 _dd=(m.value_c - m.value_r) ** 2)
    g = m.groupby(keys)[["_cr", "_cc", "_rr", "_dd"]].sum()
    return pd.DataFrame({"cosine": g._cr / np.sqrt(g._cc * g._rr), "rel_diff": np.sqrt(g._dd / g._rr),
                         "ref_norm": np.sqrt(g._rr)}).reset_index()


def a2_pendulum_cosines(table: pd.DataFrame) -> pd.DataFrame:
    """Cosine and relative difference between the mean costate (every M) and the smoothing reference (every
    scale), per (seed, probe, M, scale)."""
    keys = ["seed", "probe"]
    c = table[table.method == "costate"].rename(columns={"size": "continuations"})
    r = table[table.method == "smoothing"]
    if c.empty or r.empty or not r["scale"].notna().any():  # no costate or no reference rows (a degenerate table)
        return pd.DataFrame(columns=keys + ["cosine", "rel_diff", "ref_norm", "continuations", "scale"], dtype=float)
    # every (scale, M) pair in one merge and one groupby (the check runs once per recurrence draw)
    t = _cosine_table(c[keys + ["continuations", "coord", "value"]], r[keys + ["scale", "coord", "value"]],
                      ["scale", "continuations"] + keys, on=keys)
    t = t.assign(continuations=t["continuations"].astype(int), scale=t["scale"].astype(float))
    return t[keys + ["cosine", "rel_diff", "ref_norm", "continuations", "scale"]]


def a2_pendulum_noise_free(table: pd.DataFrame) -> pd.DataFrame:
    """Relative difference |v - g0| / |v| of the mean costate (largest M) and of the smoothing reference (every
    scale) from the noise-free pathwise gradient g0, per (seed, probe): how much the noise moves grad V."""
    keys = ["seed", "probe"]
    g0 = table[table.method == "noise_free"][keys + ["coord", "value"]]
    if g0.empty:
        return pd.DataFrame(columns=keys + ["against", "scale", "rel_diff"])
    c = table[table.method == "costate"]
    c = c[c["size"] == c["size"].max()]
    out = [_cosine_table(g0, c[keys + ["coord", "value"]], keys).assign(against="costate", scale=np.nan)]
    for s, rs in table[table.method == "smoothing"].groupby("scale"):
        out.append(_cosine_table(g0, rs[keys + ["coord", "value"]], keys).assign(against="smoothing", scale=float(s)))
    return pd.concat(out, ignore_index=True)[keys + ["against", "scale", "rel_diff", "cosine"]]


def a2_pendulum_distances(table: pd.DataFrame, headline_scale: float) -> pd.DataFrame:
    """Per (seed, probe): |g0 - r|, |mean costate - r| and the reference's standard error |se_r| (norms over the
    two coordinates), with g0 the noise-free pathwise gradient, r the smoothing reference at the headline scale
    and the mean costate at the largest M (rule R2; the figure plots these per probe)."""
    keys = ["seed", "probe", "coord"]
    cols = ["seed", "probe", "g0_minus_ref", "costate_minus_ref", "ref_se"]
    c = table[table.method == "costate"]
    if c.empty:
        return pd.DataFrame(columns=cols, dtype=float)
    c = c[c["size"] == c["size"].max()][keys + ["value"]].rename(columns={"value": "costate"})
    r = table[(table.method == "smoothing") & np.isclose(table.scale.astype(float), headline_scale)]
    r = r[keys + ["value", "se"]].rename(columns={"value": "ref", "se": "ref_se"})
    g0 = table[table.method == "noise_free"][keys + ["value"]].rename(columns={"value": "g0"})
    m = c.merge(r, on=keys).merge(g0, on=keys)
    m = m.assign(_g=(m.g0 - m.ref) ** 2, _c=(m.costate - m.ref) ** 2, _s=m.ref_se ** 2)
    g = m.groupby(["seed", "probe"])[["_g", "_c", "_s"]].sum()
    return pd.DataFrame({"g0_minus_ref": np.sqrt(g._g), "costate_minus_ref": np.sqrt(g._c),
                         "ref_se": np.sqrt(g._s)}).reset_index()[cols]


def a2_pendulum_power(table: pd.DataFrame, headline_scale: float) -> pd.DataFrame:
    """Per seed, the three vectors pooled over its probe states (R2): |g0 - r|, |mean costate - r|, the
    reference's pooled standard error sqrt(sum se^2) (from its antithetic pairs), power = |g0 - r| / (3 SE) and
    closeness = |mean costate - r| / |g0 - r|."""
    d = a2_pendulum_distances(table, headline_scale)
    cols = ["seed", "g0_minus_ref", "costate_minus_ref", "ref_se", "power", "closeness"]
    if d.empty:
        return pd.DataFrame(columns=cols, dtype=float)
    g = d.assign(g0_minus_ref=d.g0_minus_ref ** 2, costate_minus_ref=d.costate_minus_ref ** 2,
                 ref_se=d.ref_se ** 2).groupby("seed")[["g0_minus_ref", "costate_minus_ref", "ref_se"]].sum()
    g = np.sqrt(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = g.assign(power=g.g0_minus_ref / (3 * g.ref_se), closeness=g.costate_minus_ref / g.g0_minus_ref)
    return g.reset_index()[cols]



# ---------------------------------------------------------------------------------------------- A3
def a3_bias(table: pd.DataFrame) -> pd.DataFrame:
    """Per (seed, alpha, backward): pooled relative bias sum_q |mean - grad V| / sum_q |grad V| and the noise
    floor 3 sum_q SE_q / sum_q |grad V| (SE_q = norm of the per-coordinate standard errors)."""
    n = _norms(table, ["seed", "alpha", "backward", "probe"], "costate", "reference")
    g = n.groupby(["seed", "alpha", "backward"])[["err", "ref", "se"]].sum()
    out = pd.DataFrame({"rel_bias": g.err / g.ref, "floor": 3 * g.se / g.ref}).reset_index()
    radius = table.groupby(["seed", "alpha"]).ms_radius.first()  # each seed's own system (R20)
    return out.assign(ms_radius=[radius[(s, a)] for s, a in zip(out.seed, out.alpha)])
