"""Critic-free advantages, named as in TRL (`num_generations` = group size G, `scale_rewards`).

rewards have shape [..., G]: one group of G completions per prompt along the last axis.
"""
from __future__ import annotations

import torch


def reinforce_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """Plain REINFORCE: the reward itself, no baseline."""
    return rewards


def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE leave-one-out: r_i minus the mean of the other G - 1 rewards of its group (unbiased)."""
    g = rewards.shape[-1]
    if g < 2:
        raise ValueError("RLOO needs a group of at least 2 completions")
    return (g * rewards - rewards.sum(-1, keepdim=True)) / (g - 1)


def grpo_advantages(rewards: torch.Tensor, scale_rewards: str = "group", eps: float = 1e-4) -> torch.Tensor:
    """GRPO: r_i minus the group mean, divided by the group's (unbiased) std when scale_rewards == 'group'.

    A group whose rewards are all equal gets zero advantage (TRL's `frac_reward_zero_std`).
    """
    centred = rewards - rewards.mean(-1, keepdim=True)
    if scale_rewards == "group":
        return centred / (rewards.std(-1, keepdim=True) + eps)
    if scale_rewards == "none":
        return centred
    raise ValueError(f"scale_rewards must be 'group' or 'none', got {scale_rewards!r}")


ALGOS = ("reinforce", "rloo", "grpo")


def advantages(rewards: torch.Tensor, algo: str, scale_rewards: str = "group") -> torch.Tensor:
    """[..., G] advantages of the critic-free update `algo` (one of ALGOS) from group rewards [..., G].

    The one dispatch from an algorithm's name to its advantages, for B3's update directions and Part C's RL.
    """
    if algo == "reinforce":
        return reinforce_advantages(rewards)
    if algo == "rloo":
        return rloo_advantages(rewards)
    if algo == "grpo":
        return grpo_advantages(rewards, scale_rewards)
    raise ValueError(f"algo must be one of {ALGOS}, got {algo!r}")
