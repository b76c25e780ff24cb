"""figures/calibration.png|pdf and figures/calibration.md from every claim's calibration table (R19)."""
import matplotlib.pyplot as plt

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
for col, color, name in (("pass_rate", "#2a9d8f", "PASS"), ("inconclusive_rate", "#bbbbbb", "INCONCLUSIVE"),
                         ("fail_rate", "#e76f51", "FAIL")):
    ax.barh(list(y), t[col], left=left, color=color, label=name, height=0.8)
    left = [a + b for a, b in zip(left, t[col])]
for yi, (_, r) in zip(y, t.iterrows()):
    mark = "positive" if r.truth == "positive" else ("ok" if r.holds else "WEAK")
    ax.text(1.01, yi, f"{mark} ({int(r.replicates)})", va="center", fontsize=6,
            color="black" if mark != "WEAK" else "#c1121f")
ax.set_yticks(list(y))
ax.set_yticklabels(t["label"], fontsize=6)
ax.axvline(0.05, color="black", lw=0.6, ls=":")
ax.axvline(0.95, color="black", lw=0.6, ls=":")
ax.set_xlim(0, 1.15)
ax.set_xlabel("fraction of replicates (dotted: 5% and 95%)")
ax.set_title(f"Calibration (R19) at K = {int(t['members'].max())} members: verdicts on nulls and planted positives")
ax.legend(loc="lower right", fontsize=7)
save(fig, snakemake.output.pdf, snakemake.output.png)

weak = t[(t.truth == "null") & (t.holds == False)]  # noqa: E712 (holds is None for positives)
rows = "".join(f"| {r.claim} | {r.level} | {r.target} | {r.case} | {r.truth} | {int(r.replicates)} | "
               f"{r.pass_rate:.3f} | {r.inconclusive_rate:.3f} | {r.fail_rate:.3f} | "
               f"{'—' if r.truth == 'positive' else ('yes' if r.holds else '**no**')} |\n" for r in t.itertuples())
text = ("| claim | level | target | case | truth | replicates | PASS | INCONCLUSIVE | FAIL | wrong <= 5% |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + rows
        + f"\n{int((t.truth == 'null').sum())} nulls, {len(weak)} with a wrong-verdict rate above 5%"
        + (": " + "; ".join(f"{r.claim} {r.case} ({r.wrong_rate:.3f})" for r in weak.itertuples()) if len(weak)
           else "") + ".\n")
write_text(text, snakemake.output.md)
log.info("%d rows, %d weak nulls", len(t), len(weak))
