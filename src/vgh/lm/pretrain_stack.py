"""The pretraining step of K GPT-2 members as one stacked computation (`vgh.lm.stacked`).

All members' parameters live in one float32 leaf [K, P] (a `vgh.lm.stack.Stack`, each row a member's parameters in
`named_parameters` order); the named parameters are views of it. One step is one batched forward / backward for all
K, the per-member gradient norm is one reduction over each row and AdamW is a handful of elementwise ops on the whole
buffer, so the number of ops per step does not grow with K: that is the gain where ops are dear (a GPU's launches).
Each member trains on its own corpus (R20: the corpora stacked [K, N, S], one gather per step). On one CPU thread at
the default size the step is bound by its arithmetic (batched matmuls, the tanh GELU), not by its ops: a member-step
there cost 0.78x (K = 1, 5) to 0.87x (K = 10) of the lone Hugging Face model's step (Intel Xeon, 2026-12-02). Each
member's numbers are its own: its batch from its own generator, its loss (the mean over its tokens, so the gradient
of the sum of the K losses is each member's own gradient), its clip and its AdamW state."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import stacked
from .stack import Stack, StackedOptimizer


def lm_losses(params: dict[str, torch.Tensor], config, batch: torch.Tensor) -> torch.Tensor:
    """[K] the LM loss of every member on its own batch [K, B, T]: Hugging Face's GPT2LMHeadModel loss with
    labels = input_ids (next-token cross-entropy through the tied full-vocabulary head, mean over the B * (T - 1)
    predicted tokens). Positions 0..T-2 alone predict a token, and attention is causal, so the last token is not fed."""
    k = batch.shape[0]
    h = stacked.hidden_states(params, config, batch[:, :, :-1])
    wte = params["transformer.wte.weight"]  # [K, V, E]
    logits = torch.bmm(h.reshape(k, -1, h.shape[-1]), wte.transpose(1, 2))  # [K, B (T - 1), V]
    targets = batch[:, :, 1:].reshape(-1)
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets, reduction="none").view(k, -1).mean(1)


def train_step(members: Stack, opt: StackedOptimizer, train_ids: torch.Tensor, batch_size: int, lr: float,
               generators: list[torch.Generator]) -> torch.Tensor:
    """One pretraining step of every member at learning rate `lr`: member k's batch is `batch_size` rows of its own
    corpus train_ids[k] ([K, N, S]: each member's draw of the data, R20) drawn with generators[k] (on `train_ids`'
    device, as a lone member draws them), its LM loss, its gradient clipped to norm 1 (over its own parameters), one
    AdamW step (weight decay 0, `opt`). Returns the losses [K], detached, on the device."""
    idx = torch.stack([torch.randint(0, train_ids.shape[1], (batch_size,), generator=g, device=g.device)
                       for g in generators])
    rows = torch.arange(len(generators), device=train_ids.device).unsqueeze(1)
    loss = lm_losses(members.params(), members.template.config, train_ids[rows, idx])
    (grad,) = torch.autograd.grad(loss.sum(), members.flat)
    norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    grad.mul_((1.0 / (norm + 1e-6)).clamp_(max=1.0))  # torch.nn.utils.clip_grad_norm_ per member, max_norm 1
    opt.step(grad, lr)
    return loss.detach()
