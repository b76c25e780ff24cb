"""The verdict table: every claim record into figures/claims.md and figures/claims.csv."""
from vgh.claims import claims_markdown, claims_table
from vgh.io import read_json, write_table, write_text
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
table = claims_table([read_json(p) for p in snakemake.input], dict(snakemake.params.figures))
write_table(table, snakemake.output.csv)
write_text(claims_markdown(table), snakemake.output.md)
log.info("\n%s", table[["id", "value", "verdict"]].to_string(index=False))
