"""Results tables read back only as they were written (issue 31): each parquet table's size and sha256 go into its
folder's manifest when it is written, and every reader (claim, calibration and figure rules, notebooks) checks them;
a changed table is named with the command that rebuilds it."""
import json
import multiprocessing
import re
import shutil

import pandas as pd
import pytest
import yaml
from conftest import snakemake

from vgh.io import MANIFEST, TableError, read_table, read_tables, write_table


def flip_bit(path, byte: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[byte] ^= 1 << bit
    path.write_bytes(data)


def table(n=50):
    return pd.DataFrame({"member": [0] * n, "x": [i / 7 for i in range(n)], "name": [f"r{i}" for i in range(n)]})


def test_a_table_reads_back_and_its_manifest_names_it(tmp_path):
    write_table(table(), tmp_path / "a.parquet")
    write_table(table(3), tmp_path / "b.parquet")
    files = json.loads((tmp_path / MANIFEST).read_text())["files"]
    assert set(files) == {"a.parquet", "b.parquet"} and files["a.parquet"]["size"] > 0
    pd.testing.assert_frame_equal(read_table(tmp_path / "a.parquet"), table())
    assert len(read_tables([tmp_path / "a.parquet", tmp_path / "b.parquet"])) == 53


@pytest.mark.parametrize("where", [0.1, 0.3, 0.5, 0.7, 0.95])
def test_a_flipped_bit_is_named_with_the_command_that_rebuilds_the_table(tmp_path, where):
    path = tmp_path / "results/control/a1.parquet"
    write_table(table(), path)
    flip_bit(path, int(where * path.stat().st_size), bit=3)
    shown = re.escape(str(path))
    with pytest.raises(TableError, match=rf"results table {shown} differs from the sha256 .*{MANIFEST}.* rebuild it "
                                         rf"with `snakemake --cores all --force {shown}`"):
        read_table(path)


def test_a_truncated_or_overwritten_table_is_named(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(table(), path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(TableError, match="has .* bytes, its folder's manifest.json recorded"):
        read_table(path)
    table(4).to_parquet(path)  # rewritten by hand, not by the workflow: its manifest no longer matches
    with pytest.raises(TableError, match=re.escape(str(path))):
        read_tables(str(path))


def test_a_table_the_manifest_does_not_list_reads_unchecked(tmp_path):
    """A table written by hand (a test's degenerate table, an older run) has no entry: it is read as it is."""
    table().to_parquet(tmp_path / "mine.parquet")
    assert len(read_table(tmp_path / "mine.parquet")) == 50
    write_table(table(2), tmp_path / "other.parquet")
    assert len(read_table(tmp_path / "mine.parquet")) == 50


def _write_many(args):
    folder, k = args
    for i in range(15):
        write_table(table(5 + i), f"{folder}/t_{k}_{i}.parquet")


def test_jobs_writing_tables_into_one_folder_side_by_side_keep_every_entry(tmp_path):
    """Part A's jobs write results/control/ at once: the manifest's read-modify-write is locked."""
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(_write_many, [(str(tmp_path), k) for k in range(3)])
    files = json.loads((tmp_path / MANIFEST).read_text())["files"]
    assert len(files) == 45
    for name in files:
        read_table(tmp_path / name)


def test_a_claim_rule_stops_on_a_corrupted_table(smoke_run, smoke_out):
    """Through Snakemake, as a user meets it: one flipped bit in A1's table (a copy of the smoke run's, in another
    workdir) stops A1's claim rule, naming the file and the command; that command rebuilds the table."""
    flip = smoke_run / "runs/flip"
    shutil.copytree(smoke_out / "results/control", flip / "results/control")
    (smoke_run / "flip.yaml").write_text(yaml.safe_dump({"workdir": "runs/flip"}))
    rel = "results/control/a1_sf_pd.parquet"
    flip_bit(flip / rel, (flip / rel).stat().st_size // 2, bit=2)
    args = ("--cores", "1", "--configfile", "config/smoke.yaml", "flip.yaml")
    proc = snakemake(smoke_run, "--force", "results/claims/A1.json", *args, check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Error in rule claim_A1" in out
    assert f"results table {rel} differs from the sha256" in out
    assert f"`snakemake --cores all --force {rel}`" in out
    assert not (flip / "results/claims/A1.json").exists()
    snakemake(smoke_run, "--force", rel, *args, timeout=300)
    pd.testing.assert_frame_equal(read_table(flip / rel), read_table(smoke_out / rel))
