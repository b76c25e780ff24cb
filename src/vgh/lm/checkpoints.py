"""Whole checkpoints: a manifest of every file's size and sha256, written when a checkpoint folder is finished and
checked by the loader, so a truncated or overwritten file is named (with the command that rebuilds it) instead of
surfacing as a deserializer's traceback.

`write_manifest` also gives every file of the folder the permissions of the workflow's other outputs (safetensors
writes its weights 0600).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..io import file_sha256, rebuild_hint

MANIFEST = "manifest.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class CheckpointError(RuntimeError):
    """A checkpoint folder that cannot be loaded: the message names the file, what is wrong and the remedy."""


def _files(folder: Path) -> list[Path]:
    """The checkpoint's files: everything but the manifest and dot files (Snakemake's `.snakemake_timestamp`)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def write_manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """Write `folder/manifest.json` ({relative path: {size, sha256}}) and give every file mode 0666 & ~umask."""
    folder = Path(folder)
    umask = os.umask(0)
    os.umask(umask)
    files = {}
    for p in _files(folder):
        os.chmod(p, 0o666 & ~umask)
        files[p.relative_to(folder).as_posix()] = {"size": p.stat().st_size, "sha256": file_sha256(p)}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=2, sort_keys=True) + "\n")
    os.chmod(folder / MANIFEST, 0o666 & ~umask)
    return files


def verify_checkpoint(folder: str | os.PathLike) -> None:
    """Raise CheckpointError naming the first file of `folder` whose size or sha256 differs from its manifest, or
    that is gone. A folder without a manifest (an external model, or a checkpoint written before manifests) passes."""
    folder = Path(folder)
    if not (folder / MANIFEST).exists():
        return
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"checkpoint {folder}: {MANIFEST} is damaged ({err}); {rebuild_hint(folder)}") from None
    for name, want in files.items():
        path = folder / name
        if not path.exists():
            problem = "is missing"
        elif (size := path.stat().st_size) != want["size"]:
            problem = f"has {size} bytes, its manifest says {want['size']} (truncated or overwritten)"
        elif file_sha256(path) != want["sha256"]:
            problem = "differs from its manifest's sha256 (overwritten or corrupted)"
        else:
            continue
        raise CheckpointError(f"checkpoint file {path} {problem}; {rebuild_hint(folder)}")


def weight_files(folder: str | os.PathLike) -> list[str]:
    folder = Path(folder)
    return sorted(str(p) for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES) if folder.is_dir() else []


def folder_sha256(*folders: str | os.PathLike | None) -> str:
    """One sha256 over the names and contents of every file of `folders` (None skipped): what decides whether an
    external checkpoint changed."""
    digest = hashlib.sha256()
    for folder in folders:
        if folder is None:
            continue
        folder = Path(folder)
        for p in _files(folder):
            digest.update(f"{p.relative_to(folder).as_posix()}\0{file_sha256(p)}\n".encode())
        digest.update(b"\1")
    return digest.hexdigest()
