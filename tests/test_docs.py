"""The README's commands, its verdict table, its layout, the docs' commands, and the figure notebooks stay in step
with the workflow."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text()
NOTEBOOKS = sorted((ROOT / "workflow/notebooks").glob("*.py"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_WORDS = ("snakemake", "python", "jupytext", "pip", "pytest", "scontrol")
README_MAX_LINES = 150


def readme_commands() -> list[str]:
    head = README.split("<!-- claims-table:start -->")[0]
    return re.findall(r"```bash\n(.+?)\n```", head, re.S)


def bash_lines(path) -> list[str]:
    """The command lines of a page's `bash` blocks; the README's two opening commands aside (the test below and CI
    run them)."""
    text = path.read_text()
    body = text.split("<!-- claims-table:start -->", 1)[1] if path.name == "README.md" else text
    return [ln.strip() for block in re.findall(r"```bash\n(.*?)```", body, re.S) for ln in block.splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


def shown_commands(path) -> list[str]:
    """Each command a page shows a user: every line of a `bash` block, every inline code span that starts with a
    command word, and the `used as:` line of an example config."""
    text = path.read_text()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = [re.sub(r"\s+", " ", span).strip() for span in re.findall(r"`([^`]+)`", prose)]
    cmds = bash_lines(path) + [c for c in spans if c.split(" ")[0] in COMMAND_WORDS and " " in c]  # a lone word
    cmds += re.findall(r"^# .*used as: (.+)$", text, re.M)                                      # names a tool
    return cmds


def documented_commands() -> list[str]:
    """Every command shown in README.md and docs/*.md, placeholders filled in, once each."""
    cmds = [c.replace("<config>", "config/smoke.yaml") for path in DOCS for c in shown_commands(path)]
    return list(dict.fromkeys(cmds))


def test_every_command_in_a_bash_block_is_one_the_tests_run():
    for path in DOCS:
        for line in bash_lines(path):
            assert line.split()[0] in COMMAND_WORDS, f"{path.name}: no test runs `{line}`"
    assert any(c.startswith("snakemake") for c in documented_commands())


PYTEST_COMMANDS = [c for c in documented_commands() if c.split()[0] == "pytest"]


@pytest.mark.parametrize("command", PYTEST_COMMANDS)
@pytest.mark.workflow  # slow (over 1.5 s): kept out of the fast tier
def test_documented_pytest_command_selects_tests(command):
    """Collected, not run: the command is valid and its marker expression selects some tests and, if it has one,
    leaves others out."""
    import shlex

    args = [str(Path(sys.executable).with_name("pytest")), *shlex.split(command)[1:], "--collect-only", "-q",
            "-p", "no:cacheprovider", "-n", "0"]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = re.search(r"^(\d+)(?:/(\d+))? tests? collected(?: \((\d+) deselected\))?", proc.stdout, re.M)
    assert found, proc.stdout[-2000:]
    selected = int(found.group(1))
    assert selected > 0, command
    if "-m" in command:
        assert found.group(3) and int(found.group(3)) > 0, f"{command}: the marker expression leaves nothing out"


def test_readme_is_short():
    n = len(README.splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}): move detail to docs/"


def layout_paths() -> list[str]:
    """The paths the README's Layout section names, e.g. `src/vgh/control/` (an indented entry is under the last
    unindented folder; continuation lines start in the description column)."""
    section = README.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    paths, parent = [], ""
    for line in block.splitlines():
        m = re.match(r"^( {0,2})(\S+)(?: {2,}|$)", line)
        if not m:
            continue
        name = m.group(2)
        if m.group(1):
            paths.append(parent + name)
        else:
            paths.append(name)
            parent = name if name.endswith("/") else ""
    return paths


def test_layout_section_reads_as_paths():
    paths = layout_paths()
    assert {"Snakefile", "workflow/rules/", "src/vgh/", "src/vgh/control/", "tests/"} <= set(paths), paths


def test_layout_section_matches_the_tree():
    """Every path the Layout names exists (a folder as a folder), and it names every top-level folder of the
    repository and every package and module of the library."""
    paths = layout_paths()
    missing = [p for p in paths if not ((ROOT / p).is_dir() if p.endswith("/") else (ROOT / p).is_file())]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    folders = {f.split("/")[0] + "/" for f in tracked if "/" in f}
    library = {f"src/vgh/{p.name}/" for p in (ROOT / "src/vgh").iterdir() if (p / "__init__.py").exists()}
    library |= {f"src/vgh/{p.name}" for p in (ROOT / "src/vgh").glob("*.py") if p.name != "__init__.py"}
    unnamed = sorted({f for f in folders | library if not any(p.startswith(f) for p in paths)})  # src/ by src/vgh/
    assert not missing and not unnamed, f"named but absent: {missing}; present but not named: {unnamed}"


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    build, test = cmds
    assert build.rstrip().endswith("snakemake --cores all") and test.rstrip().endswith("pytest")
    ci_lines = [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines()]
    assert test.strip() in ci_lines, ".ci/run must run the README's test command verbatim"


def test_readme_verdict_table_matches_figures_claims_md():
    """The README embeds figures/claims.md, its figure links relative to the repository root (figures/X.pdf), where
    figures/claims.md's are relative to figures/ (issue 31: they resolved to figures/figures/X.pdf); both resolve."""
    block = README.split("<!-- claims-table:start -->")[1].split("<!-- claims-table:end -->")[0]
    table = (ROOT / "figures/claims.md").read_text()
    links = re.compile(r"\]\((?:figures/)?([^)/]+\.pdf)\)")
    assert links.sub(r"](\1)", block).strip() == links.sub(r"](\1)", table).strip(), \
        "README verdict table differs from figures/claims.md: rerun the workflow and paste the table (links: figures/)"
    for link in re.findall(r"\]\(([^)]+\.pdf)\)", block):
        assert link.startswith("figures/") and (ROOT / link).is_file(), link


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
        job = standalone_job(cid, argv=[], check=False)
        assert job.input.claim == f"results/claims/{cid}.json" and job.output.pdf == f"scratch/{entry['figure']}.pdf"
        job = standalone_job(cid, argv=["--configfile", "config/smoke.yaml"], check=False)  # issue 31: its workdir's
        assert job.input.claim == f"runs/smoke/results/claims/{cid}.json"
        assert job.output.pdf == f"runs/smoke/scratch/{entry['figure']}.pdf"


def test_a_notebook_by_hand_names_what_is_missing_and_refuses_while_a_run_holds_the_workdir(tmp_path):
    """Issue 31: by hand after a smoke-only run a notebook failed with a raw FileNotFoundError (results/ at the root
    did not exist), and during a forced rerun it read a half-replaced results/."""
    from vgh.claims import standalone_job
    from vgh.io import copy_workflow

    repo = copy_workflow(ROOT, tmp_path / "repo")
    with pytest.raises(FileNotFoundError, match=r"repo/results/.+ does not exist: run the figure's rule first, "
                                                r"`snakemake --cores all figures/C2_real_vs_predicted.pdf` \(or give "
                                                r"the config of the run that made it: --configfile FILE\)"):
        standalone_job("C2", argv=[], root=repo)
    with pytest.raises(FileNotFoundError, match=r"repo/runs/smoke/results/.+ `snakemake --cores all "
                                                r"figures/C2_real_vs_predicted.pdf --configfile config/smoke.yaml`"):
        standalone_job("C2", argv=["--configfile", "config/smoke.yaml"], root=repo)
    (repo / "runs/smoke/.snakemake/locks").mkdir(parents=True)
    (repo / "runs/smoke/.snakemake/locks/0.input.lock").write_text("")
    with pytest.raises(RuntimeError, match=r"a Snakemake run holds .*runs/smoke .* `snakemake --unlock --configfile "
                                           r"config/smoke.yaml`"):
        standalone_job("C2", argv=["-f", "kernel.json", "--configfile", "config/smoke.yaml"], root=repo)
