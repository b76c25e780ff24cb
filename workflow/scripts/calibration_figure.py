"""figures/calibration.png|pdf and figures/calibration.md from every claim's calibration table (R19)."""
import matplotlib.pyplot as plt

from vgh.calibration import outcome_shares
from vgh.claims_table import md_cell
from vgh.io import read_tables, write_text
from vgh.plotting import save, set_style
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
set_style()
t = read_tables(list(snakemake.input))
t["label"] = t["claim"] + " " + t["level"] + ": " + t["target"] + " | " + t["case"]
fig, ax = plt.subplots(figsize=(11, 0.22 * len(t) + 1.2))
y = range(len(t))[::-1]
left = [0.0] * len(t)
shares = outcome_shares(t)  # a verdict's colour is what it means for the row: right, undecided or wrong
for col, color, name in (("right", "#2a9d8f", "right verdict (positive: PASS; null at the threshold: INCONCLUSIVE; "
                                              "claim-level null: FAIL)"),
                         ("undecided", "#bbbbbb", "INCONCLUSIVE, neither right nor wrong"),
                         ("wrong", "#c1121f", "wrong verdict")):
    ax.barh(list(y), shares[col], left=left, color=color, label=name, height=0.8)
    left = [a + b for a, b in zip(left, shares[col])]
for yi, (_, r) in zip(y, t.iterrows()):
    mark = "positive" if r.truth == "positive" else ("ok" if r.holds else "WEAK")
    ax.text(1.01, yi, f"{mark} ({int(r.replicates)})", va="center", fontsize=6,
            color="black" if mark != "WEAK" else "#c1121f")
ax.set_yticks(list(y))
ax.set_yticklabels(t["label"], fontsize=6)
ax.axvline(0.95, color="black", lw=0.6, ls=":")
ax.set_xlim(0, 1.15)
ax.set_xlabel("fraction of replicates (dotted: 95%; a null is WEAK when over 5% of its verdicts are wrong, per tail)")
ks = t.groupby(t["claim"].str[0])["members"].max()  # each part's K (R21: Part A's seeds, Parts B and C's members)
ax.set_title("Calibration (R19) at " + ", ".join(f"K = {int(k)} in Part {part}" for part, k in ks.items())
             + ": verdicts on nulls and planted positives", pad=28)
ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=6, frameon=False)
save(fig, snakemake.output.pdf, snakemake.output.png)

weak = t[(t.truth == "null") & (t.holds == False)]  # noqa: E712 (holds is None for positives)
rows = "".join(f"| {r.claim} | {r.level} | {r.target} | {md_cell(r.case)} | {r.truth} | {int(r.replicates)} | "
               f"{r.pass_rate:.3f} | {r.inconclusive_rate:.3f} | {r.fail_rate:.3f} | "
               f"{'—' if r.truth == 'positive' else ('yes' if r.holds else '**no**')} |\n" for r in t.itertuples())
text = ("| claim | level | target | case | truth | replicates | PASS | INCONCLUSIVE | FAIL | wrong <= 5% |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + rows
        + f"\n{int((t.truth == 'null').sum())} nulls, {len(weak)} with a wrong-verdict rate above 5%"
        + (": " + "; ".join(f"{r.claim} {r.case} ({r.wrong_rate:.3f})" for r in weak.itertuples()) if len(weak)
           else "") + ".\n")
write_text(text, snakemake.output.md)
log.info("%d rows, %d weak nulls", len(t), len(weak))
