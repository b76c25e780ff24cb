"""K parameter sets of one architecture as one stack, and the optimizer on it: the one stacking scheme of pretraining
groups (`vgh.lm.pretrain_stack`) and of Part C's RL runs (`vgh.trajectory.rl`).

A `Stack` keeps every set's trainable parameters in one leaf [K, P] (`flat`, each row a set's parameters in
`named_parameters` order); `params()` gives them by name as [K, ...] views, the form the stacked forward
(`vgh.lm.stacked`) takes, so one backward gives the gradient of every row and an optimizer step is a handful of
elementwise ops on the whole buffer, whatever K is. Each row's numbers are its own: elementwise ops round the same
per element, and reductions that must not mix rows are taken per row.
"""
from __future__ import annotations

import math

import torch


class Stack:
    """The trainable parameters of K models of one architecture as one leaf [K, P] (`flat`) that requires grad.
    `template` is the architecture (config, buffers); its own weights are unused."""

    def __init__(self, flat: torch.Tensor, template):
        self.template = template
        own = dict(template.named_parameters())
        self.names = _trainable(template)
        self.shapes = [own[n].shape for n in self.names]
        self.sizes = [own[n].numel() for n in self.names]
        if flat.dim() != 2 or flat.shape[1] != sum(self.sizes):
            raise ValueError(f"a stack of this architecture is [K, {sum(self.sizes)}], got {list(flat.shape)}")
        self.flat = flat

    @classmethod
    def of_models(cls, models: list, runs: list[int] | None = None) -> Stack:
        """Row k = models[runs[k]]'s parameters (default: one row per model), on the first model's device and dtype.
        The models share one architecture."""
        runs = list(range(len(models))) if runs is None else list(runs)
        named = [dict(m.named_parameters()) for m in models]
        if any(set(n) != set(named[0]) for n in named):
            raise ValueError("the models of one stack must share an architecture (their parameter names differ)")
        names = _trainable(models[0])
        rows = [torch.cat([named[r][n].detach().to(named[0][n]).reshape(-1) for n in names]) for r in runs]
        return cls(torch.stack(rows).requires_grad_(True), models[0])

    @classmethod
    def of_model(cls, model, k: int) -> Stack:
        """K copies of `model`'s parameters."""
        return cls.of_models([model], [0] * k)

    @property
    def k(self) -> int:
        return self.flat.shape[0]

    def params(self) -> dict[str, torch.Tensor]:
        """Every row's parameters by name, [K, ...] views of `flat` (one split: its backward is one concat). A tied LM
        head is the input embedding itself, as in the model (`named_parameters` lists it once)."""
        parts = torch.split(self.flat, self.sizes, dim=1)
        return {n: t.view(self.k, *s) for n, t, s in zip(self.names, parts, self.shapes)}

    def rows(self, index: torch.Tensor | list[int]) -> Stack:
        """A new stack (its own leaf) of rows `index` of this one, in that order (a row may repeat)."""
        index = torch.as_tensor(index, device=self.flat.device)
        return Stack(self.flat.detach()[index].clone().requires_grad_(True), self.template)

    @torch.no_grad()
    def unstack_into(self, model, k: int):
        """Row k's parameters copied into `model` (same architecture) in place; returns it."""
        params = self.params()
        for name, p in model.named_parameters():
            if name in params:
                p.copy_(params[name][k])
        return model


def _trainable(model) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


class StackedOptimizer:
    """Adam (torch.optim's single-tensor update with weight_decay 0, which Adam and AdamW share) or SGD on a stack's
    `flat` buffer: each row's update is what torch.optim does to that row alone.

    `step(grad, lr)` takes the learning rate as one float for every row (pretraining's schedule) or as a [K, 1] tensor
    of `flat`'s dtype, one per row (Part C's lr sweep). Each form keeps the float32 rounding its tables were made
    with: a shared lr is folded into one Python-float step size (addcdiv_'s value), a per-row lr scales the first
    moment before the division."""

    def __init__(self, flat: torch.Tensor, optimizer: str = "adam", betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        self.flat, self.optimizer, self.betas, self.eps, self.t = flat, optimizer, betas, eps, 0
        if optimizer == "adam":
            self.m = torch.zeros_like(flat, requires_grad=False)
            self.v = torch.zeros_like(flat, requires_grad=False)

    @torch.no_grad()
    def step(self, grad: torch.Tensor, lr: float | torch.Tensor) -> None:
        self.t += 1
        if self.optimizer == "sgd":
            self.flat.sub_(lr * grad)
            return
        b1, b2 = self.betas
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2 ** self.t)).add_(self.eps)
        if isinstance(lr, torch.Tensor):
            self.flat.sub_((lr / (1 - b1 ** self.t)) * self.m / denom)
        else:
            self.flat.addcdiv_(self.m, denom, value=-(lr / (1 - b1 ** self.t)))

    def state_dict(self) -> dict:
        """The step count and, for Adam, its two moments (SGD keeps no other state)."""
        return {"t": self.t, **({"m": self.m, "v": self.v} if self.optimizer == "adam" else {})}

    def load_state_dict(self, state: dict) -> None:
        if ("m" in state) != (self.optimizer == "adam"):
            kind = "an Adam" if "m" in state else "an SGD"
            raise ValueError(f"{kind} state cannot be loaded into StackedOptimizer(optimizer={self.optimizer!r})")
        self.t = state["t"]
        if self.optimizer == "adam":
            self.m.copy_(state["m"])
            self.v.copy_(state["v"])
