"""The workflow end to end on the smoke config, in a private temporary copy of the repo.

One smoke run (the session fixture `smoke_run` of conftest.py, its outputs under `smoke_out` = runs/smoke) serves every
check: outputs and claim records exist, the copy's committed figures/ and results/ are left alone, a second dry run has
nothing to do, touching a figure notebook reruns only that figure (not its claim rule), `--lint` is clean, `--report`
builds, and a forced rerun with one member per job reproduces every table exactly.
"""
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, SMOKE_OUT, SNAKEMAKE, as_default_layout, snakemake

SMOKE = ["--configfile", "config/smoke.yaml"]


def claim_ids(out: Path) -> list[str]:
    return pd.read_csv(out / "figures/claims.csv")["id"].tolist()


def dry_run_jobs(wf: Path, *args: str) -> dict[str, int]:
    """rule -> job count of what a dry run would execute, the target rule `all` aside (empty: nothing to do)."""
    out = snakemake(wf, "-n", "--cores", "2", *SMOKE, *args).stdout
    if "Nothing to be done" in out:
        return {}
    stats = out.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)
            if m.group(1) not in ("total", "all")}


def test_every_claim_has_record_and_figure(smoke_out):
    """Every claim of the claim table has its record, stated as the claim table states it (the check returns only
    what it found), its verdict R21's over the counted sub-checks and the verdict table's, and its figure."""
    from vgh.claims import load_claim_table
    from vgh.ensemble import claim_verdict

    entries = load_claim_table(ROOT / "workflow/claims.yaml")
    ids = claim_ids(smoke_out)
    assert ids == list(entries), "the verdict table's claims are not the claim table's"
    for cid in ids:
        rec = json.loads((smoke_out / f"results/claims/{cid}.json").read_text())
        assert rec["id"] == cid and rec["statement"] == entries[cid]["statement"]
        assert rec["metric"] == entries[cid]["metric"].format(**rec["details"]), cid
        counted = {n: c for n, c in rec["checks"].items() if c.get("meaningful", True)}
        assert rec["verdict"] == (claim_verdict(counted) if counted else "INCONCLUSIVE"), cid
        assert pd.read_csv(smoke_out / "figures/claims.csv").set_index("id").at[cid, "verdict"] == rec["verdict"], cid
        for key in ("statement", "metric", "value", "interval", "threshold", "member_verdicts", "config"):
            assert key in rec, f"{cid} record lacks {key}"
        stems = list((smoke_out / "figures").glob(f"{cid}_*.pdf"))
        assert len(stems) == 1, f"{cid}: expected one figure, got {stems}"
        assert stems[0].stat().st_size > 1000 and stems[0].with_suffix(".png").stat().st_size > 1000
    table = (smoke_out / "figures/claims.md").read_text()
    for cid in ids:
        assert f"| {cid} |" in table


def test_smoke_marks_what_its_shapes_fix(smoke_out):
    """R17: each record's sub-checks are its claim table entry's `subchecks`; at the smoke config's K = 2 every
    sub-check with member values is marked not meaningful (R21: no count of 2 can PASS or FAIL), A2's power and
    closeness carry the smoke config's mark, the marked sub-checks are left out of the verdict (every smoke verdict is
    INCONCLUSIVE), and the verdict table names them."""
    from vgh.claims import load_claim_table
    from vgh.ensemble import claim_verdict

    entries = load_claim_table(ROOT / "workflow/claims.yaml")
    md = (smoke_out / "figures/claims.md").read_text()
    for cid in claim_ids(smoke_out):
        rec = json.loads((smoke_out / f"results/claims/{cid}.json").read_text())
        assert set(rec["checks"]) == set(entries[cid]["subchecks"]), cid
        for name, c in rec["checks"].items():
            if c["per_member"] or (cid == "A2" and name in ("pendulum_power", "pendulum_closeness")):
                assert c.get("meaningful") is False and "not meaningful at this size" in c["note"], (cid, name)
        counted = {n: c for n, c in rec["checks"].items() if c.get("meaningful", True)}
        assert rec["verdict"] == (claim_verdict(counted) if counted else "INCONCLUSIVE") == "INCONCLUSIVE", cid
    a2_row = next(line for line in md.splitlines() if line.startswith("| A2 |"))
    marked = a2_row.split("not counted, not meaningful at this size: ", 1)[1].split(" |")[0].split(", ")
    assert {"pendulum_closeness", "pendulum_power"} <= set(marked), a2_row


def test_a_smoke_run_leaves_the_committed_figures_and_results_alone(smoke_run, smoke_out):
    """Issue 21: the smoke config writes under its `workdir` (runs/smoke), so no run of it rewrites tracked files.
    The copy's committed figures/ (the repository's, copied in before the run) are as committed, byte for byte and
    never rewritten, and no results/, logs/, benchmarks/ or resume/ appear beside them; the verdict table and the
    config that made it are under runs/smoke/figures/."""
    def files(folder):
        return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns)
                for p in folder.rglob("*") if p.is_file()}

    committed = files(ROOT / "figures")
    assert committed and files(smoke_run / "figures") == committed
    for folder in ("results", "logs", "benchmarks", "resume"):
        assert not (smoke_run / folder).exists(), f"the smoke run wrote {folder}/ at the copy's root"
    assert SMOKE_OUT == yaml.safe_load((ROOT / "config/smoke.yaml").read_text())["workdir"]
    assert pd.read_csv(smoke_out / "figures/claims.csv")["verdict"].notna().all()
    assert yaml.safe_load((smoke_out / "figures/claims_config.yaml").read_text())["workdir"] == SMOKE_OUT


def test_the_ensemble_members_are_distinct_runs_and_every_table_names_its_member(smoke_run, smoke_out):
    members = yaml.safe_load((smoke_run / "config/smoke.yaml").read_text())["pretrain"]["seeds"]
    assert len(members) >= 2
    weights = {m: (smoke_out / f"results/pretrain/member_{m}/step_300/model.safetensors").read_bytes()
               for m in members}
    assert len(set(weights.values())) == len(members), "two members have identical weights"
    logs = {m: pd.read_parquet(smoke_out / f"results/pretrain/member_{m}/train_log.parquet") for m in members}
    assert not logs[members[0]]["loss"].equals(logs[members[1]]["loss"])
    for m in members:
        for table in ("costates/member_{m}/prompts", "costates/member_{m}/summary",
                      "costates/member_{m}/update_alignment", "trajectory/member_{m}/metrics",
                      "trajectory/member_{m}/rl", "trajectory/member_{m}/lr_sweep"):
            df = pd.read_parquet(smoke_out / f"results/{table.format(m=m)}.parquet")
            assert (df["member"] == m).all() and len(df), table
    # the Part C summary covers every member
    summary = pd.read_parquet(smoke_out / "results/trajectory/checkpoints.parquet")
    assert set(summary["member"]) == set(members)
    # every claim record of Parts B and C has one value per member, and names its members (R22)
    for cid in ("B1", "B2", "B3", "C1", "C2"):
        rec = json.loads((smoke_out / f"results/claims/{cid}.json").read_text())
        assert rec["members"] == members, cid
        assert all(len(c["per_member"]) == len(members) for c in rec["checks"].values() if c["per_member"]), cid


def test_second_dry_run_has_nothing_to_do(smoke_run):
    assert dry_run_jobs(smoke_run) == {}


def test_touching_a_figure_notebook_reruns_only_that_figure(smoke_run):
    nb = sorted((smoke_run / "workflow/notebooks").glob("A1_*.py"))[0]
    nb.touch()
    jobs = dry_run_jobs(smoke_run)
    assert set(jobs) == {"fig_A1"}, jobs  # restyling never recomputes a verdict (claim_A1) or the verdict table
    # restyle for real: rerun only that figure
    snakemake(smoke_run, "--cores", "2", *SMOKE)
    assert dry_run_jobs(smoke_run) == {}


def test_lint_is_clean(smoke_run):
    proc = snakemake(smoke_run, "--lint", *SMOKE, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_report_builds(smoke_run, smoke_out):
    proc = snakemake(smoke_run, "--report", "report.html", *SMOKE)
    html = (smoke_out / "report.html").read_text(errors="replace")  # relative to the workdir, like every output
    assert len(html) > 10_000
    for cid in claim_ids(smoke_out):
        assert cid in html
    assert f"The report goes to {SMOKE_OUT}/report.html" in proc.stderr  # issue 31: not only "Report created."
    assert "Undefined substitution" not in html and "System Message" not in html  # docutils' errors, if any


def test_forced_rerun_reproduces_every_table(smoke_run, smoke_out, tmp_path):
    """Same config and seeds on CPU give the same numbers, whichever members share a job: rerun every member's jobs
    with one member per job (the smoke run computed both members together: `pretrain.members_per_job`) and compare
    every table they rewrite. It runs in a copy of the finished smoke run, so that the copy the other tests share
    keeps its grouping (a regrouping reruns its jobs: tests/test_rerun.py). What reads these tables (Part C's
    summary, the claims, figures) is the same code on the same numbers; Part A is not grouped. A rebuild of the
    whole DAG from scratch reproduces every table too: the fresh check's test (`python -m vgh.fresh_check`)."""
    wf = shutil.copytree(smoke_run, tmp_path / "wf", symlinks=True)
    out = wf / SMOKE_OUT
    members = yaml.safe_load((wf / "config/smoke.yaml").read_text())["pretrain"]["seeds"]
    tables = sorted(p for m in members for p in (out / "results").glob(f"*/member_{m}/*.parquet"))
    assert {p.parent.parent.name for p in tables} == {"data", "pretrain", "costates", "trajectory"}, tables
    before = {p: (pd.read_parquet(p), p.stat().st_mtime_ns) for p in tables}
    alone = wf / "one_member_per_job.yaml"
    alone.write_text(yaml.safe_dump({"pretrain": {"members_per_job": 1}}))
    proc = snakemake(wf, "--cores", "2", "--forceall", *[str(p.relative_to(out)) for p in tables], *SMOKE, str(alone))
    assert len(re.findall(r"^(?:local)?rule pretrain_group_\d+:", proc.stdout + proc.stderr, re.M)) == len(members)
    for path, (table, mtime) in before.items():
        assert path.stat().st_mtime_ns != mtime, f"{path} was not rewritten"
        pd.testing.assert_frame_equal(pd.read_parquet(path), table, check_exact=True, obj=str(path))


# ---------------------------------------------------------------- every command README.md and docs/*.md show a user

TINY_PROBE = ["--tiny", "--steps", "3", "--procs", "1", "2", "--repeats", "2", "--rl-repeats", "1", "--rl-steps",
              "2", "--rl-k", "1", "2", "--block", "2", "--warmup", "1", "--threads", "1", "--worker-timeout", "50"]


def runnable_form(command: str) -> str:
    """A tool (a `python` script) shown on the default or the GPU config runs on the smoke config here; the benchmark
    times 2 cores only (its default one-core run repeats the same DAG and doubled the suite's longest test)."""
    if command.split(" ")[0] == "python":
        command = re.sub(r"--configfile config/(config|gpu)\.yaml", "--configfile config/smoke.yaml", command)
    if command.startswith("python tools/bench.py") and "--cores" not in command:
        command += " --cores 2"
    return command


# Shown commands that a test of their own runs in the form run here and checks more closely: not run twice.
OWN_TESTS = {"tools/gpu_probe.py": "tests/test_gpu_probe.py", "tools/gpu_cost.py": "tests/test_launches.py"}


def shown_commands() -> list[str]:
    """Each command README.md and docs/*.md show (tests/test_docs.py collects them), pytest's aside (collected by
    tests/test_docs.py) and those of OWN_TESTS, once in the form run here."""
    from test_docs import documented_commands

    return list(dict.fromkeys(runnable_form(c) for c in documented_commands()
                              if c.split(" ")[0] != "pytest" and (c.split(" ") + [""])[1] not in OWN_TESTS))


def cpu_form(args: list[str]) -> list[str]:
    """A tool's arguments asking for `--device cuda`, on a machine without CUDA: the same tool on the CPU at test
    size (`--device cpu` and TINY_PROBE)."""
    import torch

    if "--device" not in args or args[args.index("--device") + 1] != "cuda" or torch.cuda.is_available():
        return args
    args = list(args)
    args[args.index("--device") + 1] = "cpu"
    return args + TINY_PROBE


def readme_example_config(tmp: Path) -> Path:
    """The documented external-checkpoint YAML, its folders replaced by tiny Llama checkpoints."""
    from test_docs import DOCS
    from test_external import save_llama

    text = next(t for t in (p.read_text() for p in DOCS) if "# my_model.yaml" in t)
    block = re.search(r"```yaml\n(# my_model.yaml.+?)```", text, re.S).group(1)
    for i, path in enumerate(re.findall(r"path: (\S+)\}", block)):
        block = block.replace(path, str(save_llama(tmp / f"rev_{i}", seed=i)))
    (tmp / "my_model.yaml").write_text(block)
    return tmp / "my_model.yaml"


def needs_a_run(command: str) -> bool:
    """Whether a shown command reads a finished run (a Snakemake command, a figure notebook, the fresh check against
    its verdict table); a tool, a config check, an install or an scontrol command does not."""
    args = command.split(" ") + [""]
    return not (args[0] in ("pip", "scontrol") or args[0] == "python" and (
        args[1].startswith("tools/") or args[1:3] == ["-m", "vgh.config"]))


@pytest.mark.parametrize("command", [c for c in shown_commands() if needs_a_run(c)])
def test_readme_command_works_verbatim(smoke_run, command, tmp_path):
    """Every command README.md and docs/*.md show that reads a run, run in the finished smoke copy: on the smoke
    config where they show the default, as a dry run where a real run needs a GPU, a cluster or a user's model
    (docs/testing.md lists each rewrite)."""
    run_shown(command, smoke_run, tmp_path)


@pytest.mark.parametrize("command", [c for c in shown_commands() if not needs_a_run(c)])
def test_shown_tool_works_verbatim(workflow_copy, command, tmp_path):
    """Every other command README.md and docs/*.md show (a tool, a config check, the install, scontrol), run in a
    fresh copy of the workflow (no run needed, so not on the smoke run's worker): on the smoke config where they
    show the default, on the CPU at test size where a tool asks for CUDA that is not here."""
    run_shown(command, workflow_copy, tmp_path)


def same_tables_and_records(run: Path, reference: Path) -> None:
    """Every results table and claim record of `run` equals the `reference` run's, exactly (and none is missing)."""
    tables = sorted(p.relative_to(reference) for p in (reference / "results").rglob("*.parquet"))
    assert tables and tables == sorted(p.relative_to(run) for p in (run / "results").rglob("*.parquet"))
    for rel in tables:
        pd.testing.assert_frame_equal(pd.read_parquet(run / rel), pd.read_parquet(reference / rel), check_exact=True,
                                      obj=str(rel))
    records = sorted(p.relative_to(reference) for p in (reference / "results/claims").glob("*.json"))
    assert records == sorted(p.relative_to(run) for p in (run / "results/claims").glob("*.json"))
    for rel in records:
        assert json.loads((run / rel).read_text()) == json.loads((reference / rel).read_text()), rel


def run_shown(command: str, smoke_run: Path, tmp_path: Path) -> None:
    """Run one shown command in `smoke_run` (the finished smoke copy, or a fresh workflow copy for a command that
    reads no run) in the form docs/testing.md lists, and check what it must do."""
    args = shlex.split(command)
    if args[0] == "pip":
        ci = (ROOT / ".ci/run").read_text()
        assert command.replace("pip install", "pip install -q") in ci, "install command differs from .ci/run's"
        return
    if args[0] == "scontrol":
        from test_slurm import slurm_unavailable

        if reason := slurm_unavailable():
            pytest.skip(reason)
        proc = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "MinJobAge" in proc.stdout, proc.stderr
        return
    if "my.yaml" in command:  # the documented way to locate a YAML error in a --configfile file
        (smoke_run / "my.yaml").write_text("data:\n  digits: 2\n  seed: [1, 2\nmodel: {n_head: 4}\n")
        proc = subprocess.run(command.replace("python", str(Path(SNAKEMAKE).with_name("python")), 1), shell=True,
                              cwd=smoke_run, capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and re.search(r"my.yaml.+line \d+, column \d+", proc.stderr), proc.stderr
        return
    fresh = None
    if args[:3] == ["python", "-m", "vgh.fresh_check"]:  # the default config's check: on the smoke config here,
        fresh = tmp_path / "fresh"  # its rebuild kept in a folder of the test's, to compare below
        args += [*SMOKE, "--workdir", str(fresh)]
    args = [a.replace("$OUT", str(tmp_path)) for a in args]
    if args[0] != "snakemake":
        if args[0] == "python":
            args[0] = str(Path(SNAKEMAKE).with_name("python"))
            if args[1].endswith(".py") and not (smoke_run / args[1]).exists():  # a tool outside the workflow copy
                args[1] = str(ROOT / args[1])
            args = cpu_form(args)  # no GPU here: the same tool on the CPU at test size
        elif args[0] == "jupytext":
            args[0] = str(Path(SNAKEMAKE).with_name("jupytext"))
        cwd = smoke_run  # a notebook by hand with the smoke config's --configfile reads its run under runs/smoke
        if args[1].startswith("workflow/notebooks/") and "--configfile" not in args:  # one by hand reads results/
            cwd = as_default_layout(smoke_run, tmp_path / "repo")  # at the root (the default config's): linked so
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{command} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        if fresh:  # same config and seeds on this CPU: the rebuild from scratch gives every table and record again
            same_tables_and_records(fresh / "wf" / SMOKE_OUT, smoke_run / SMOKE_OUT)
        return
    if "my_model.yaml" in args:
        shutil.copy(readme_example_config(tmp_path), smoke_run / "my_model.yaml")
    dry = any(a in args for a in ("config/gpu.yaml", "config/other_seeds.yaml", "my_model.yaml", "profiles/slurm"))
    extra = (["-n"] if dry else []) + ([] if "--configfile" in args else SMOKE)
    figures = [a for a in args if a.startswith("figures/") and a.endswith(".pdf")]
    for fig in figures:  # the restyle row: an edited notebook reruns only its figure
        next((smoke_run / "workflow/notebooks").glob(Path(fig).stem + ".py")).touch()
    proc = snakemake(smoke_run, *args[1:], *extra)
    if figures:
        ran = set(re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, re.M))
        assert ran == {f"fig_{Path(f).stem.split('_')[0]}" for f in figures}, ran
        # issue 31: the run ends naming its verdict table, its figures and the report command
        assert f"Verdict table: {SMOKE_OUT}/figures/claims.md (8 claims:" in proc.stderr, proc.stderr[-2000:]
        assert f"snakemake --report report.html --configfile config/smoke.yaml  (writes {SMOKE_OUT}/report.html)" \
            in proc.stderr
    if "my_model.yaml" in args:  # issue 31: a user's config writes under runs/<its name>/, never the committed files
        assert (smoke_run / "runs/my_model").is_dir()  # Snakemake made it its workdir (the old default: the root)
