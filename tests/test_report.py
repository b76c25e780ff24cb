"""The report and what a run tells its user (issue 31): every caption is valid reStructuredText (the report renders
it with docutils), the report's file and, at the end of a run, the verdict table, the figures and the report command
are named."""
import io
from pathlib import Path

import pytest
from conftest import ROOT
from docutils.core import publish_doctree, publish_parts
from docutils.utils import SystemMessage

from vgh.claims_table import caption_rst
from vgh.notices import end_summary, report_path

CAPTIONS = sorted((ROOT / "workflow/report").glob("*.rst"))


def render(text: str) -> str:
    """The caption's visible text; raises docutils' SystemMessage on any warning or error (an undefined substitution,
    unbalanced markup), which the report would otherwise print into the caption."""
    settings = {"halt_level": 2, "report_level": 5, "warning_stream": io.StringIO()}
    publish_doctree(text, settings_overrides=settings)
    return publish_parts(text, writer="html", settings_overrides=settings)["body"]


@pytest.mark.parametrize("path", CAPTIONS, ids=[p.name for p in CAPTIONS])
def test_every_caption_file_renders(path):
    text = path.read_text()
    if "{{" in text:  # workflow.rst: a Jinja template over the config, as Snakemake renders it
        import jinja2

        from vgh.config import load_config

        config = load_config(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml")
        text = jinja2.Template(text).render(snakemake=type("S", (), {"config": config}))
    render(text)


def record(threshold="|g0 - r| >= 3 SE; *x* < 1", name="pendulum_power_"):
    return {"id": "A2", "verdict": "INCONCLUSIVE", "metric": "error at M=`4096`", "value": 0.25,
            "interval": [0.1, 0.5], "threshold": threshold, "recurrence": 0.5, "member_verdicts": ["PASS", "FAIL"],
            "checks": {name: {"value": -1.5, "interval": [-3.0, 0.1], "threshold": threshold,
                              "verdict": "INCONCLUSIVE"}}}


def test_a_caption_shows_record_text_as_written():
    """A2's threshold "|g0 - r|" was read as a substitution reference ("Undefined substitution referenced")."""
    html = render(caption_rst(record(), (ROOT / "workflow/report/A2.rst").read_text()))
    assert html.count("|g0 - r| &gt;= 3 SE; *x* &lt; 1") == 2 and "pendulum_power_:" in html
    assert "error at M=`4096`" in html and "Verdict: INCONCLUSIVE" in html
    with pytest.raises(SystemMessage):  # the test can fail: the unescaped text is an error
        render("check |g0 - r| >= 3")


def test_the_smoke_runs_captions_render(smoke_out):
    captions = sorted((smoke_out / "results/report").glob("*.rst"))
    assert len(captions) == 8
    for path in captions:
        html = render(path.read_text())
        assert "Verdict:" in html, path


def test_the_report_file_is_found_on_the_command_line():
    assert report_path(["snakemake", "--report", "r.html", "--configfile", "c.yaml"]) == "r.html"
    assert report_path(["snakemake", "--report", "--configfile", "c.yaml"]) == "report.html"
    assert report_path(["snakemake", "--report=x/r.zip"]) == "x/r.zip"
    assert report_path(["snakemake", "--cores", "all"]) is None


def test_the_end_summary_names_the_table_the_figures_and_the_report(tmp_path):
    out = tmp_path / "runs/mine"
    (out / "figures").mkdir(parents=True)
    (out / "figures/claims.md").write_text("| id |\n\n8 claims: 3 PASS, 4 INCONCLUSIVE, 1 FAIL.\n")
    (tmp_path / "mine.yaml").write_text("{}\n")
    text = end_summary(out, [tmp_path / "mine.yaml"], ROOT / "config/config.yaml", tmp_path)
    assert "Verdict table: runs/mine/figures/claims.md (8 claims: 3 PASS, 4 INCONCLUSIVE, 1 FAIL)" in text
    assert "Figures: runs/mine/figures/" in text
    assert "snakemake --report report.html --configfile mine.yaml  (writes runs/mine/report.html)" in text
    default = end_summary(tmp_path, [ROOT / "config/config.yaml"], ROOT / "config/config.yaml", tmp_path)
    assert "snakemake --report report.html  (writes report.html)" in default and "no verdict table yet" in default
    assert str(Path("/elsewhere/report.html")) in end_summary("/elsewhere", [], ROOT / "config/config.yaml", tmp_path)


def test_unlock_names_the_other_locked_workdirs(tmp_path):
    """Issue 31: `snakemake --unlock` unlocks only its config's workdir (the smoke config's lock is in runs/smoke/):
    the others that are locked are named."""
    from vgh.notices import unlock_elsewhere

    for d in ("runs/smoke", "runs/other"):
        (tmp_path / d / ".snakemake/locks").mkdir(parents=True)
    (tmp_path / "runs/smoke/.snakemake/locks/0.input.lock").write_text("")
    assert unlock_elsewhere(tmp_path, tmp_path) == [str(tmp_path / "runs/smoke")]
    assert unlock_elsewhere(tmp_path, tmp_path / "runs/smoke") == []
