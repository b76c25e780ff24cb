"""Atomic writers: an output appears only once it is complete; tables read back only as they were written.

Every table or record is written to a temporary file beside its target and then renamed, so a job that
fails or is interrupted never leaves a half-written file that looks complete. Every parquet table's size and
sha256 are recorded in its folder's `manifest.json` as it is written (`write_table`), and checked whenever a job or
a notebook reads it (`read_table`): a table corrupted or overwritten since is named with the command that rebuilds
it, instead of giving a silently different claim.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

WORKFLOW_FILES = ["Snakefile", "workflow", "config", "profiles", "environment.yml", "pyproject.toml"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only when the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


MANIFEST = "manifest.json"  # a folder's tables: {"files": {name: {"size", "sha256"}}}, as a checkpoint's files


class TableError(RuntimeError):
    """A results table that differs from what was written: the message names the file and the command that
    rebuilds it."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rebuild_hint(path: str | os.PathLike) -> str:
    """What to run when an output (a table, a checkpoint folder) is damaged."""
    return (f"rebuild it with `snakemake --cores all --force {path}` (targets before your run's --configfile), "
            f"or delete it and run again")


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder`'s manifest: jobs that run side by side write tables into one folder."""
    with open(folder / f".{MANIFEST}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _manifest(folder: Path) -> dict[str, dict]:
    try:
        return json.loads((folder / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError) as err:
        raise TableError(f"{folder / MANIFEST} is damaged ({err}); delete it and rebuild that folder's tables with "
                         f"`snakemake --cores all --forcerun <the rules that write them>`") from None


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a tidy table as parquet (or CSV when the name ends in .csv), atomically; a parquet table's size and
    sha256 go into its folder's manifest (`read_table` checks them)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    if path.suffix != ".csv":
        entry = {"size": path.stat().st_size, "sha256": file_sha256(path)}
        with _folder_lock(path.parent):
            files = _manifest(path.parent)
            files[path.name] = entry
            write_json({"files": files}, path.parent / MANIFEST)


def verify_table(path: str | os.PathLike) -> None:
    """Raise TableError when parquet table `path` differs (size or sha256) from its entry in its folder's manifest.
    A table without an entry (written by hand, or before manifests) passes."""
    path = Path(path)
    want = _manifest(path.parent).get(path.name)
    if want is None:
        return
    if (size := path.stat().st_size) != want["size"]:
        problem = f"has {size} bytes, its folder's {MANIFEST} recorded {want['size']} when it was written"
    elif file_sha256(path) != want["sha256"]:
        problem = f"differs from the sha256 its folder's {MANIFEST} recorded when it was written"
    else:
        return
    raise TableError(f"results table {path} {problem} (corrupted or overwritten since); {rebuild_hint(path)}")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """One parquet table, checked against its folder's manifest first (`verify_table`)."""
    verify_table(path)
    return pd.read_parquet(path)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write JSON (indent 2, sorted keys), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def copy_dir_atomic(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Copy folder `src` to `dest` through a temporary sibling and one rename: `dest` is whole or absent."""
    src, dest = Path(src), Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(src, tmp)
    except BaseException:  # a failed copy (a full disk) leaves no partial folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def copy_workflow(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """A private copy of the workflow's files (no results/, figures/, .snakemake/) to run it elsewhere."""
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        if (src / name).is_dir():
            shutil.copytree(src / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src / name, dest / name)
    return dest


def read_tables(paths) -> pd.DataFrame:
    """Concatenate parquet tables of one shape (e.g. one per member), each checked (`read_table`), into one.
    `paths` is a list, or one path (Snakemake hands a named input of a one-member ensemble over as a single
    string)."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else paths
    return pd.concat([read_table(p) for p in paths], ignore_index=True)


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as fh:
        return json.load(fh)


def _jsonable(x: Any) -> Any:
    """numpy / torch scalars and arrays to plain Python."""
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def member_of(path: str | os.PathLike) -> int:
    """The ensemble member a workflow path belongs to (`.../member_<k>/...`): a member-level job reads its members
    from its outputs, so which members share a job is not a parameter of the job."""
    import re

    found = re.findall(r"(?:^|/)member_(\d+)(?:/|$)", str(path))
    if len(found) != 1:
        raise ValueError(f"not a per-member path (one member_<k> folder): {path}")
    return int(found[0])
