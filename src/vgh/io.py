"""Atomic writers: an output appears only once it is complete.

Every table or record is written to a temporary file beside its target and then renamed, so a job that
fails or is interrupted never leaves a half-written file that looks complete.
"""
from __future__ import annotations

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


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a tidy table as parquet (or CSV when the name ends in .csv), atomically."""
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)


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
    shutil.copytree(src, tmp)
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
    """Concatenate parquet tables of one shape (e.g. one per member) into one. `paths` is a list, or one path
    (Snakemake hands a named input of a one-member ensemble over as a single string)."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else paths
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


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
    from its outputs, so which members share a job is not a parameter of the job (regrouping reruns nothing)."""
    import re

    found = re.findall(r"(?:^|/)member_(\d+)(?:/|$)", str(path))
    if len(found) != 1:
        raise ValueError(f"not a per-member path (one member_<k> folder): {path}")
    return int(found[0])
