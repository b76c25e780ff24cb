"""The pretraining step of K GPT-2 members as one stacked computation (`vgh.lm.stacked`).

All members' parameters live in one float32 leaf [K, P] (`Members.flat`, each row a member's parameters in
`named_parameters` order); the named parameters are views of it. One step is one batched forward / backward for all
K, the per-member gradient norm is one reduction over each row and AdamW is a handful of elementwise ops on the whole
buffer, so the number of ops per step does not grow with K: that is the gain where ops are dear (a GPU's launches).
Each member trains on its own corpus (R20: the corpora stacked [K, N, S], one gather per step). On one CPU thread at
the default size the step is bound by its arithmetic (batched matmuls, the tanh GELU), not by its ops: a member-step
there cost 0.78x (K = 1, 5) to 0.87x (K = 10) of the lone Hugging Face model's step (Intel Xeon, 2026-12-02). Each
member's numbers are its own: its batch from its own generator, its loss (the mean over its tokens, so the gradient
of the sum of the K losses is each member's own gradient), its clip and its AdamW state."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import stacked


class Members:
    """K GPT-2s of one architecture (`models`, each with its own initialisation) as one flat leaf [K, P]; the first
    model is the template (config; `unstack_into` writes a member into it)."""

    def __init__(self, models: list):
        self.template = models[0]
        named = [(n, p) for n, p in self.template.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        rows = []
        for m in models:
            own = dict(m.named_parameters())
            rows.append(torch.cat([own[n].detach().reshape(-1) for n in self.names]))
        self.flat = torch.stack(rows).requires_grad_(True)

    @property
    def k(self) -> int:
        return self.flat.shape[0]

    def params(self) -> dict[str, torch.Tensor]:
        """Every member's parameters by name, [K, ...] views of `flat` (one split: its backward is one concat)."""
        parts = torch.split(self.flat, self.sizes, dim=1)
        return {n: t.view(self.k, *s) for n, t, s in zip(self.names, parts, self.shapes)}

    def unstack_into(self, model, k: int):
        """Member k's weights copied into `model` (same architecture); returns it."""
        with torch.no_grad():
            return stacked.unstack_into(model, self.params(), k)


class StackedAdamW:
    """torch.optim.AdamW with weight_decay 0 (its single-tensor update, one shared lr per step) on the flat buffer:
    each member's update is what torch's AdamW does to that member alone."""

    def __init__(self, flat: torch.Tensor, betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8):
        self.flat, self.betas, self.eps, self.t = flat, betas, eps, 0
        self.m = torch.zeros_like(flat, requires_grad=False)
        self.v = torch.zeros_like(flat, requires_grad=False)

    @torch.no_grad()
    def step(self, grad: torch.Tensor, lr: float) -> None:
        self.t += 1
        b1, b2 = self.betas
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2 ** self.t)).add_(self.eps)
        self.flat.addcdiv_(self.m, denom, value=-(lr / (1 - b1 ** self.t)))

    def state_dict(self) -> dict:
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state_dict(self, state: dict) -> None:
        self.t = state["t"]
        self.m.copy_(state["m"])
        self.v.copy_(state["v"])


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


def train_step(members: Members, opt: StackedAdamW, train_ids: torch.Tensor, batch_size: int, lr: float,
               generators: list[torch.Generator]) -> torch.Tensor:
    """One pretraining step of every member at learning rate `lr`: member k's batch is `batch_size` rows of its own
    corpus train_ids[k] ([K, N, S]: each member's draw of the data, R20) drawn with generators[k] (on `train_ids`'
    device, as a lone member draws them), its LM loss, its gradient clipped to norm 1 (over its own parameters), one
    AdamW step. Returns the losses [K], detached, on the device."""
    idx = torch.stack([torch.randint(0, train_ids.shape[1], (batch_size,), generator=g, device=g.device)
                       for g in generators])
    rows = torch.arange(len(generators), device=train_ids.device).unsqueeze(1)
    loss = lm_losses(members.params(), members.template.config, train_ids[rows, idx])
    (grad,) = torch.autograd.grad(loss.sum(), members.flat)
    norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    grad.mul_((1.0 / (norm + 1e-6)).clamp_(max=1.0))  # torch.nn.utils.clip_grad_norm_ per member, max_norm 1
    opt.step(grad, lr)
    return loss.detach()
