"""Random streams: every draw of the workflow comes from a generator seeded by `seed_of` a member (or Part A seed) and
the name of what it draws (docs/SCIENCE.md, R20: a member is an independent replicate, so each of its draws has its
own stream and no two members share one).

    seed_of(1003, "data")              member 1003's corpus and prompt splits
    seed_of(1003, "rl", 2)             member 1003's RL run with RL seed 2
    numpy_rng(1003, "prompt_halves")   a numpy Generator on that stream
    torch_generator(1003, "costates", 200, device="cpu")

The parts are hashed by `numpy.random.SeedSequence` (integers as they are, a name by its CRC-32), so the same parts
give the same stream on every machine and different parts give independent ones.
"""
from __future__ import annotations

import zlib

import numpy as np


def _entropy(part) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode())
    if isinstance(part, (bool, np.bool_)) or not isinstance(part, (int, np.integer)):
        raise TypeError(f"a stream part is an integer or a name, got {part!r}")
    if part < 0:
        raise ValueError(f"a stream part must be >= 0, got {part}")
    return int(part)


def seed_of(*parts) -> int:
    """A 63-bit seed of the stream named by `parts` (integers and names)."""
    state = np.random.SeedSequence([_entropy(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) & ((1 << 63) - 1))


def numpy_rng(*parts) -> np.random.Generator:
    """A numpy Generator on the stream named by `parts`."""
    return np.random.default_rng(seed_of(*parts))


def torch_generator(*parts, device="cpu"):
    """A torch Generator on `device`, seeded with the stream named by `parts`."""
    import torch

    return torch.Generator(device=device).manual_seed(seed_of(*parts))
