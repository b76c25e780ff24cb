"""Params per rule: after a smoke run, a config change plans only the jobs whose rules read the changed key (every
rule takes only the config it uses, and Snakemake reruns a job whose params changed)."""
import re

import yaml
from conftest import ROOT, snakemake

PART_A_B = {"data", "pretrain", "import_checkpoint", "costates", "update_alignment"}  # and every control_*


def stage(rule: str) -> str:
    """A member-level rule's stage: pretrain_group_1 -> pretrain (one rule per group of members)."""
    return re.sub(r"_group_\d+$", "", rule)


def planned(wf, tmp_path, override: dict | None = None) -> dict[str, int]:
    """Rule -> job count of a dry run on the smoke config (with `override` merged over it)."""
    files = ["config/smoke.yaml"]
    if override:
        path = tmp_path / "override.yaml"
        path.write_text(yaml.safe_dump(override))
        files.append(str(path))
    proc = snakemake(wf, "-n", "--configfile", *files, timeout=300)
    out = proc.stdout + proc.stderr
    if "Job stats:" not in out:
        return {}
    jobs = {}
    for line in out.split("Job stats:")[1].splitlines()[3:]:
        if not line.strip() or line.split()[0] == "total":
            break
        name, count = line.split()
        jobs[stage(name)] = jobs.get(stage(name), 0) + int(count)
    return jobs


def part_a_or_b(jobs) -> list[str]:
    return sorted(r for r in jobs if r in PART_A_B or r.startswith("control_"))


def test_nothing_to_do_after_a_run(smoke_run, tmp_path):
    assert planned(smoke_run, tmp_path) == {}


def test_regrouping_the_members_reruns_their_jobs_but_not_their_data(smoke_run, tmp_path):
    """Which members share a job is not a parameter of any job, but each job's set of input files is its members'
    own data (R20), so one member per job (after the smoke run's one job for both) reruns pretraining and Parts B and
    C (Snakemake's `input` trigger) and no member's data draw. The numbers are the same either way:
    tests/test_workflow.py."""
    jobs = planned(smoke_run, tmp_path, {"pretrain": {"members_per_job": 1}})
    assert jobs.get("pretrain") == 2 and jobs.get("costates") == 2 and jobs.get("trajectory") == 2, jobs
    assert "data" not in jobs and "tokenizer" not in jobs, jobs


def test_rl_lr_reruns_part_c_only(smoke_run, tmp_path):
    jobs = planned(smoke_run, tmp_path, {"trajectory": {"rl": {"lr": 0.01}}})
    assert jobs.get("trajectory") == 1 and jobs.get("trajectory_summary") == 1
    assert part_a_or_b(jobs) == [], jobs


def test_alignment_key_reruns_b3_only(smoke_run, tmp_path):
    jobs = planned(smoke_run, tmp_path, {"alignment": {"n_batches": 3}})
    assert jobs.get("update_alignment") == 1
    assert part_a_or_b(jobs) == ["update_alignment"], jobs
    assert "trajectory" not in jobs


def test_a_new_member_runs_alone(smoke_run, tmp_path):
    """A new member in a group of its own runs alone (a new member in an existing group reruns that group's job)."""
    jobs = planned(smoke_run, tmp_path, {"pretrain": {"seeds": [1000, 1001, 1002], "members_per_job": 2}})
    assert jobs.get("pretrain") == 1 and jobs.get("costates") == 1 and jobs.get("trajectory") == 1, jobs
    assert jobs.get("data") == 1, jobs  # the new member's own data draw (R20), no other member's
    assert part_a_or_b(jobs) == ["costates", "data", "pretrain", "update_alignment"]


def test_slurm_profile_names_only_rules_that_exist(smoke_run):
    proc = snakemake(smoke_run, "--list-rules", "--configfile", "config/smoke.yaml", timeout=300)
    out = proc.stdout
    rules = {line.split()[0] for line in out.splitlines() if line.strip() and not line[0].isspace()}
    text = (ROOT / "profiles/slurm/config.yaml").read_text()
    block = text.split("set-resources:", 1)[1].split("\n\n", 1)[0]
    named = re.findall(r"^#\s{3}(\w+):\s*$", block, flags=re.M)
    assert named and set(named) <= rules, (named, sorted(rules))
