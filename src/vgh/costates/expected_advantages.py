"""R14's exact expected advantage: the advantage the RL code (`vgh.lm.updates.advantages`) gives a completion, averaged
over every composition of its G - 1 group-mates' reward levels with its multinomial probability (what
`vgh.costates.alignment.expected_updates` weights each completion's grad log-probability by)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from vgh.lm.updates import advantages

from .enumeration import chunks


def compositions(n: int, m: int) -> np.ndarray:
    """[C, m] every way to write n as an ordered sum of m non-negative integers (C = binom(n + m - 1, m - 1)): the
    counts of each of m reward levels among n group-mates."""
    bars = np.array(list(itertools.combinations(range(n + m - 1), m - 1)), dtype=np.int64).reshape(-1, m - 1)
    edges = np.concatenate([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), n + m - 1)], axis=1)
    return np.diff(edges, axis=1) - 1


def composition_advantages(values: torch.Tensor, group_size: int, algo: str, scale_rewards: str = "group",
                           max_elements: int = 1 << 22) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(compositions [c, m] of the G - 1 group-mates' reward levels, adv [m, c]: the advantage
    `vgh.lm.updates.advantages` gives a completion with reward values[j] among group-mates of composition c)], in
    chunks of at most `max_elements` group entries.

    Independent of the prompt, so `expected_updates` computes it once per algorithm and G for every prompt chunk."""
    g, m = group_size, len(values)
    comps = torch.as_tensor(compositions(g - 1, m), device=values.device)  # [C, m]
    out = []
    for sl in chunks(len(comps), max(1, max_elements // (m * g))):
        c = comps[sl]
        mates = values[torch.repeat_interleave(torch.arange(m, device=c.device).expand(len(c), m).reshape(-1),
                                               c.reshape(-1))].view(len(c), g - 1)  # [c, G - 1] sorted by level
        groups = torch.cat([values[:, None, None].expand(m, len(c), 1), mates[None].expand(m, -1, -1)], dim=-1)
        out.append((c, advantages(groups, algo, scale_rewards)[..., 0]))  # [m, c]: the first member's advantage
    return out


def expected_advantages(level_probs: torch.Tensor, values: torch.Tensor, group_size: int, algo: str,
                        scale_rewards: str = "group", max_elements: int = 1 << 22,
                        table: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """[Q, m] a[q, j]: the expected advantage of a completion with reward values[j] when its G - 1 group-mates'
    rewards are drawn from prompt q's level probabilities level_probs [Q, m] (float64, rows sum to 1).

    Exact: a sum over every composition of the group-mates' reward levels, weighted by its multinomial probability,
    of the advantage the RL code gives the completion in that group (`composition_advantages`, or its `table` when
    already computed; so the RL code's own eps and std are what is averaged).
    """
    g = group_size
    table = table if table is not None else composition_advantages(values, g, algo, scale_rewards, max_elements)
    logp = level_probs.log()
    out = torch.zeros(level_probs.shape, dtype=level_probs.dtype, device=level_probs.device)
    for c, adv in table:
        logcoef = math.lgamma(g) - torch.lgamma(c.to(logp.dtype) + 1).sum(-1)  # [c]
        # sum_j c_j log pi_qj with 0 * log 0 = 0
        loglik = torch.where(c[None] > 0, c[None].to(logp.dtype) * logp[:, None, :], 0.0).sum(-1)  # [Q, c]
        out += (logcoef[None] + loglik).exp() @ adv.T
    return out


def reward_levels(rewards: torch.Tensor, answer_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(level index of every reward [...] in 0..L, level values j / L [L + 1]): partial credit and exact match
    both take values in {0, 1/L, ..., 1}."""
    scaled = rewards * answer_len
    level = scaled.round().long()
    if not torch.allclose(scaled, level.to(scaled.dtype), atol=1e-9):
        raise ValueError("rewards must be multiples of 1 / L (partial credit or exact match)")
    values = torch.arange(answer_len + 1, dtype=rewards.dtype, device=rewards.device) / answer_len
    return level, values
