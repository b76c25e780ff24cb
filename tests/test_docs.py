"""The README's commands, its verdict table, and the figure notebooks stay in step with the workflow."""
import ast
import re

import jupytext
import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
NOTEBOOKS = sorted((ROOT / "workflow/notebooks").glob("*.py"))


def readme_commands() -> list[str]:
    head = README.split("<!-- claims-table:start -->")[0]
    return re.findall(r"```bash\n(.+?)\n```", head, re.S)


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    build, test = cmds
    assert build.rstrip().endswith("snakemake --cores all") and test.rstrip().endswith("pytest")
    ci_lines = [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines()]
    assert test.strip() in ci_lines, ".ci/run must run the README's test command verbatim"


def test_readme_verdict_table_matches_figures_claims_md():
    block = README.split("<!-- claims-table:start -->")[1].split("<!-- claims-table:end -->")[0]
    assert block.strip() == (ROOT / "figures/claims.md").read_text().strip(), \
        "README verdict table differs from figures/claims.md: rerun the workflow and paste the table"


def test_committed_figures_exist_for_every_claim():
    ids = re.findall(r"^\| (\w\d) \|", (ROOT / "figures/claims.md").read_text(), re.M)
    assert ids
    for cid in ids:
        pdfs = list((ROOT / "figures").glob(f"{cid}_*.pdf"))
        assert len(pdfs) == 1 and pdfs[0].with_suffix(".png").exists(), cid


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_figure_notebook_opens_as_a_notebook(path):
    nb = jupytext.read(path)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds.count("markdown") >= 1 and kinds.count("code") >= 2
    for cell in nb.cells:
        if cell.cell_type == "code":
            ast.parse("\n".join(ln for ln in cell.source.splitlines() if not ln.startswith(("%", "!"))))
    assert 'if "snakemake" not in globals()' in path.read_text(), "notebook must also run by hand"


def test_claim_table_drives_every_figure_rule_and_notebook(monkeypatch):
    """workflow/claims.yaml is the one place a figure's paths live: the rules and the notebooks read it."""
    from vgh.claims import load_claim_table, standalone_job

    monkeypatch.chdir(ROOT)
    table = load_claim_table()
    assert sorted(table) == sorted(re.findall(r"^\| (\w\d) \|", (ROOT / "figures/claims.md").read_text(), re.M))
    for cid, entry in table.items():
        notebook = ROOT / f"workflow/notebooks/{entry['figure']}.py"
        assert f'standalone_job("{cid}")' in notebook.read_text(), notebook
        job = standalone_job(cid)
        assert job.input.claim == f"results/claims/{cid}.json" and job.output.pdf == f"scratch/{entry['figure']}.pdf"
