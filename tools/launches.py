"""Counting, on the CPU, the GPU work of a Python callable: kernel launches, host<->device syncs, FLOPs, bytes.

Tiny models on a GPU are *launch-bound*: eager PyTorch spends a roughly fixed host time per operator (Python,
dispatcher, CUDA launch) while each kernel finishes in microseconds, so a unit of work takes about
(kernel launches) x (seconds per launch) unless its arithmetic takes longer. `count_work` runs a callable once on
the CPU and counts what it would launch on a CUDA device; `predict_seconds` turns counts into seconds.
A developer tool (tools/README.md): the GPU cost model, tools/gpu_cost.py, is built on it; no rule runs it.

What counts as a launch (`WorkCounter`, a `TorchDispatchMode`, sees every aten op below autograd, backward
included). An aten op on a *device* tensor counts one launch, except
- view / alias ops, whose schema returns an alias of an input that is not written
  (`any(r.alias_info is not None and not r.alias_info.is_write for r in func._schema.returns)`: view, t,
  transpose, expand, slice, select, unsqueeze, split, unbind, detach, alias, lift_fresh, ...),
- in-place metadata ops (tag `inplace_view`: unsqueeze_, as_strided_, ...), and
- profiler markers (`profiler._record_function_enter_new`, which optimizer steps call) and
- ops whose tensor outputs are all empty (CUDA kernels return before launching; not a data-dependent op such as
  `nonzero`, which has launched and synced to learn that its output is empty), and
- metadata / allocation-only ops (`NO_KERNEL`: `_unsafe_view`, `_reshape_alias`, `empty*`, `new_empty*`,
  `resize_`, `set_`, `sym_*`, `is_same_size`, ...): no kernel on CUDA either;
- `_foreach_*` ops (the optimizers' and `clip_grad_norm_`'s multi-tensor kernels) count the launches of CUDA's
  `multi_tensor_apply`: one per group of at most 110 / 64 / 48 / 36 / 30 tensors (by the number of tensor lists
  touched) or 320 chunks of 65536 elements, plus one clean-up kernel for `_foreach_norm`.
Composite ops are seen after their decomposition, which is the same on CPU and CUDA (the ops counted are the
ones CUDA would run); an op that launches several kernels on CUDA (multinomial, randperm, a large two-pass
reduction) still counts one, so "launches" is really "device operators", which is what the host time scales with.

Host tensors. The callable runs on the CPU, but a CUDA run keeps some tensors on the host: the optimizers' step
counters (`device="cpu"`), seeded draws from a CPU generator, small tables built with `torch.tensor(list)`.
Every tensor is therefore classed *device* or *host*: arguments and anything computed from a device tensor are
device tensors; a factory call (`torch.zeros`, `tensor`, `arange`, `rand`, `randint`, ...) with no `device` or
with a string `"cpu"` device makes a host tensor (device-agnostic code passes a `torch.device` taken from its data
for tensors meant for the accelerator), as does `.cpu()` / `.to("cpu")`; ops whose tensor inputs are all host
tensors are host ops and launch nothing. `.to(torch.device)` of a host tensor, a factory call with a
`torch.device`, and a host tensor with dimensions fed to a device op are host-to-device copies.

Syncs (the host waits for the device): `.item()` / `float()` / `bool()` / `int()` of a device tensor
(`aten._local_scalar_dense`), `.cpu()` / `.tolist()` of one, ops whose output shape depends on the data
(`nonzero`, `masked_select`, boolean-mask indexing, `unique`, `repeat_interleave` by a tensor), and
host-to-device copies (from pageable memory CUDA synchronises the stream first). A sync's copy is also counted
as a launch.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode` (matmul-like ops only: mm, addmm, bmm, baddbmm,
convolutions, attention; elementwise work is not FLOPs here). Bytes are the summed sizes of every launched op's
tensor inputs and outputs: an upper bound on device-memory traffic (no cache reuse).

Placement is learnt only inside `count_work`: a tensor made outside it counts as a device tensor, so run the
set-up of state the callable reuses (an optimizer's first step, which creates its state) under `count_work` too;
what a call learns is kept for later calls.

Not modelled: tensors created from numpy (`torch.from_numpy`) are classed as device tensors; a CPU-side copy of
a parameter (e.g. saving a checkpoint) is only seen where the code calls `.cpu()`.
"""
from __future__ import annotations

import contextlib
import math
import time
import weakref
from collections import Counter
from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# metadata or allocation only: no kernel on CUDA (views and in-place views are recognised by schema / tag)
NO_KERNEL = frozenset({
    aten._unsafe_view, aten._reshape_alias, aten.empty, aten.empty_strided, aten.empty_like, aten.new_empty,
    aten.new_empty_strided, aten.resize_, aten.set_, aten.sym_size, aten.sym_stride, aten.sym_numel,
    aten.sym_storage_offset, aten.is_same_size, aten._has_compatible_shallow_copy_type, aten.record_stream,
    aten.detach, aten.view, aten.t, aten.expand, aten.alias, aten.lift_fresh,
})
# ops that make the host wait for the device (besides `Tag.data_dependent_output`, e.g. _local_scalar_dense)
SYNC_OPS = frozenset({aten.nonzero, aten.masked_select, aten._unique, aten._unique2, aten.unique_dim,
                      aten.unique_consecutive, aten.bincount, aten.equal})
# factories: without a device (or with device="cpu") they make host tensors
FACTORIES = frozenset({"zeros", "ones", "full", "empty", "empty_strided", "tensor", "as_tensor", "arange", "range",
                       "linspace", "logspace", "rand", "randn", "randint", "randperm", "eye", "scalar_tensor",
                       "normal", "bernoulli", "zeros_like", "ones_like", "full_like", "empty_like", "rand_like",
                       "randn_like", "randint_like"})
# CUDA multi_tensor_apply: tensors per launch by the number of tensor lists touched, chunks per launch, chunk size
_MTA_TENSORS = {1: 110, 2: 64, 3: 48, 4: 36, 5: 30}
_MTA_BLOCKS = 320
_MTA_CHUNK = 65536


def is_view_op(func) -> bool:
    """Whether aten op `func` only makes a view / alias of an input (no kernel): its schema returns an alias that is
    not written, or it is an in-place metadata op (tag `inplace_view`), or it is in `NO_KERNEL`."""
    if func.namespace == "profiler" or func.overloadpacket in NO_KERNEL or torch.Tag.inplace_view in func.tags:
        return True
    return any(r.alias_info is not None and not r.alias_info.is_write for r in func._schema.returns)


def is_sync_op(func, args: tuple) -> bool:
    """Whether aten op `func` (called with `args`) makes the host wait for the device on CUDA."""
    if torch.Tag.data_dependent_output in func.tags or func.overloadpacket in SYNC_OPS:
        return True
    if func.overloadpacket is aten.repeat_interleave and func._overloadname == "Tensor":
        return True
    if func.overloadpacket is aten.index and len(args) > 1:  # boolean-mask indexing: output size = mask.sum()
        return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in args[1])
    return False


def foreach_launches(func, args: tuple) -> int:
    """CUDA kernel launches of one `_foreach_*` op (multi_tensor_apply): a launch per group of tensors that fills
    the per-launch tensor or chunk limit; `_foreach_norm` adds its clean-up kernel."""
    lists = [a for a in args if isinstance(a, (list, tuple)) and a and isinstance(a[0], torch.Tensor)]
    if not lists:
        return 1
    name = func.overloadpacket.__name__
    depth = min(5, len(lists) + (0 if name.endswith("_") else 1))
    launches, tensors, blocks = 0, 0, 0
    for t in lists[0]:
        chunks = max(1, math.ceil(t.numel() / _MTA_CHUNK))
        for _ in range(chunks):
            blocks += 1
            if blocks == _MTA_BLOCKS:
                launches, blocks = launches + 1, 0
        tensors += 1
        if tensors == _MTA_TENSORS[depth]:
            launches, tensors, blocks = launches + (1 if blocks else 0), 0, 0
    launches += 1 if blocks or tensors else 0
    return max(1, launches) + (1 if name == "_foreach_norm" else 0)


# tensors a CUDA run keeps on the host, by id (a WeakSet would compare tensors with ==); shared by every
# count_work call, so state made in one call (an optimizer's step counters) keeps its placement in the next
_HOST_TENSORS: dict[int, weakref.ref] = {}


def _caller_site() -> str:
    """`file.py:function` of the innermost frame outside torch and this module: where a sync was asked for."""
    import sys

    frame = sys._getframe(1)
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        if "/torch/" not in path and not path.endswith("/launches.py") and "<" not in path:
            return f"{path.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


def _nbytes(xs) -> int:
    return sum(t.numel() * t.element_size() for t in xs if isinstance(t, torch.Tensor))


class WorkCounter:
    """Counters shared by the dispatch-level and function-level modes of one `count_work` call."""

    def __init__(self):
        self.launches = 0
        self.syncs = 0
        self.bytes = 0
        self.by_op: Counter[str] = Counter()
        self.syncs_by_op: Counter[str] = Counter()
        self.syncs_by_site: Counter[str] = Counter()
        self._host = _HOST_TENSORS
        self.force: str | None = None  # "host" / "device" while a factory call of known placement runs

    def is_host(self, t: torch.Tensor) -> bool:
        ref = self._host.get(id(t))
        return ref is not None and ref() is t

    def mark_host(self, t: torch.Tensor) -> None:
        """Class `t` as a host tensor, for this and every later `count_work` call while it lives."""
        key = id(t)

        def forget(ref, key=key, host=self._host):
            if host.get(key) is ref:
                del host[key]

        self._host[key] = weakref.ref(t, forget)

    def mark_device(self, t: torch.Tensor) -> None:
        if self.is_host(t):
            del self._host[id(t)]

    def launch(self, name: str, n: int = 1, nbytes: int = 0) -> None:
        self.launches += n
        self.bytes += nbytes
        self.by_op[name] += n

    def sync(self, name: str) -> None:
        self.syncs += 1
        self.syncs_by_op[name] += 1
        self.syncs_by_site[_caller_site()] += 1


class _DispatchCounter(TorchDispatchMode):
    def __init__(self, counter: WorkCounter):
        super().__init__()
        self.c = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        c = self.c
        inputs = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        out = func(*args, **kwargs)
        if c.force == "host" or (c.force is None and inputs and all(c.is_host(t) for t in inputs)):
            aliased = {id(t) for t in inputs}
            for t in pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor) and id(t) not in aliased:
                    c.mark_host(t)
            return out
        name = str(func.overloadpacket.__name__)
        outs = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        # CUDA kernels return early on empty tensors, but an op whose output size depends on the data (nonzero
        # finding nothing) has already launched and waited to learn that size
        if outs and all(t.numel() == 0 for t in outs) and not is_sync_op(func, args):
            return out
        if not is_view_op(func):
            nbytes = _nbytes(inputs) + _nbytes(outs)
            n = foreach_launches(func, args) if name.startswith("_foreach_") else 1
            c.launch(name, n, nbytes)
            if is_sync_op(func, args):
                c.sync(name)
            if name not in ("copy_", "_to_copy"):
                for t in inputs:  # a host tensor with dimensions read by a device op: copied to the device first
                    if c.is_host(t) and t.dim() > 0 and t.numel() > 0:
                        c.launch("h2d_copy", 1, _nbytes([t]))
                        c.sync("h2d_copy")
        return out


def _target_device(args: tuple, kwargs: dict) -> str | None:
    """'host' / 'device' / None: where `Tensor.to(...)` sends its tensor (None: no device change asked)."""
    cands = [kwargs.get("device"), *args[1:]]
    for a in cands:
        if isinstance(a, str):
            return "host" if a.startswith("cpu") else "device"
        if isinstance(a, torch.device):
            return "device"
    return None


class _FunctionCounter(TorchFunctionMode):
    """Function-level placement: factories and device moves, which the dispatch level sees without the `device`
    the caller wrote."""

    def __init__(self, counter: WorkCounter):
        super().__init__()
        self.c = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        c = self.c
        name = getattr(func, "__name__", "")
        has_tensor = any(isinstance(t, torch.Tensor) for t in pytree.tree_leaves((args, kwargs)))
        if name in FACTORIES and (not has_tensor or "device" in kwargs):
            dev = kwargs.get("device")
            where = "host" if dev is None or (isinstance(dev, str) and dev.startswith("cpu")) else "device"
            if where == "host" and has_tensor and dev is None:  # *_like without a device: follows its input
                return func(*args, **kwargs)
            prev, c.force = c.force, where
            try:
                out = func(*args, **kwargs)
            finally:
                c.force = prev
            if where == "host":
                c.mark_host(out)
            elif name in ("tensor", "as_tensor") and out.numel() > 0:  # built on the host, copied to the device
                c.launch("h2d_copy", 1, _nbytes([out]))
                c.sync("h2d_copy")
            return out
        if name in ("cpu", "to", "tolist") and args and isinstance(args[0], torch.Tensor):
            src = args[0]
            target = "host" if name in ("cpu", "tolist") else _target_device(args, kwargs)
            out = func(*args, **kwargs)
            if target is None:
                return out
            src_host = c.is_host(src)
            if src.numel() == 0:
                pass
            elif target == "host" and not src_host:
                c.launch("d2h_copy", 1, _nbytes([src]))
                c.sync("d2h_copy")
            elif target == "device" and src_host:
                c.launch("h2d_copy", 1, _nbytes([src]))
                c.sync("h2d_copy")
            if isinstance(out, torch.Tensor):
                if out is src and target != ("host" if src_host else "device"):
                    out = src.view_as(src)  # a CUDA run gets a new tensor: do not re-class the caller's
                if target == "host":
                    c.mark_host(out)
                else:
                    c.mark_device(out)
            return out
        return func(*args, **kwargs)


@contextlib.contextmanager
def cuda_optimizer_defaults():
    """Make the optimizers take their CUDA default (foreach multi-tensor kernels) on CPU tensors too, so the
    optimizer step dispatches the ops a CUDA run would (the CPU default is a per-parameter loop)."""
    import torch.optim.optimizer as optimizer_module

    original = optimizer_module._get_foreach_kernels_supported_devices
    optimizer_module._get_foreach_kernels_supported_devices = lambda: [*original(), "cpu"]
    try:
        yield
    finally:
        optimizer_module._get_foreach_kernels_supported_devices = original


def count_work(fn: Callable[..., Any], *args, **kwargs) -> dict[str, Any]:
    """Run `fn(*args, **kwargs)` once on the CPU and count the GPU work it would do on a CUDA device.

    Returns a dict: `launches` (kernel-launching aten ops, module docstring), `syncs` (host-device
    synchronisations), `flops` (matmul-like FLOPs, `FlopCounterMode`), `bytes` (summed input + output sizes of
    the launched ops), `wall_s` (seconds on this CPU, counting overhead included), `by_op` / `syncs_by_op`
    (launches and syncs per aten op name), `syncs_by_site` (syncs per `file.py:function` that asked for them,
    the innermost frame outside torch) and `result` (what `fn` returned). Optimizers take their CUDA defaults
    (`cuda_optimizer_defaults`). The counts do not depend on the values computed, only on shapes and control
    flow, so a randomly initialised model of the right shape counts what a trained one would.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = WorkCounter()
    flop_mode = FlopCounterMode(display=False)
    with cuda_optimizer_defaults(), flop_mode, _DispatchCounter(counter), _FunctionCounter(counter):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        wall = time.perf_counter() - t0
    return {"launches": counter.launches, "syncs": counter.syncs, "flops": int(flop_mode.get_total_flops()),
            "bytes": counter.bytes, "wall_s": wall, "by_op": dict(counter.by_op),
            "syncs_by_op": dict(counter.syncs_by_op), "syncs_by_site": dict(counter.syncs_by_site), "result": result}


COUNT_KEYS = ("launches", "syncs", "flops", "bytes", "wall_s")
BREAKDOWN_KEYS = ("by_op", "syncs_by_op", "syncs_by_site")


def combine(terms: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """sum_i coef_i * counts_i over `COUNT_KEYS`, and per name over the breakdowns (`BREAKDOWN_KEYS`) where the
    terms have them: scaled and extrapolated units (e.g. 13 temperatures x a measured one, or a difference of two
    measurements as the cost of one more loop iteration). Breakdown entries that cancel to ~0 are dropped."""
    out: dict[str, Any] = {k: float(sum(coef * t[k] for coef, t in terms)) for k in COUNT_KEYS}
    for key in BREAKDOWN_KEYS:
        if all(key in t for _, t in terms):
            names = {n for _, t in terms for n in t[key]}
            acc = {n: sum(coef * t[key].get(n, 0) for coef, t in terms) for n in names}
            out[key] = {n: v for n, v in acc.items() if abs(v) > 1e-6}
    return out


def predict_seconds(launches: float, flops: float, launch_s: float, flop_rate: float, bytes_moved: float = 0.0,
                    bandwidth: float = math.inf) -> float:
    """Predicted device seconds: max(launches * launch_s, flops / flop_rate + bytes_moved / bandwidth).

    The max, not the sum: the host enqueues kernels asynchronously, so while it is busy launching (launch_s per
    launch: the host cost of an eager op, Python and dispatcher included) the device works through the queue
    in parallel; the slower of the two sets the pace. That is exact when one side dominates throughout and a
    lower bound otherwise (a sync drains the queue, so work alternating between launch-bound and compute-bound
    stretches costs up to the sum); the sum is the corresponding upper bound, and the two differ by at most a
    factor 2. `flops / flop_rate` (matmuls) and `bytes_moved / bandwidth` (memory traffic) add: they are
    different ops on the device.
    """
    host = launches * launch_s
    device = flops / flop_rate + (bytes_moved / bandwidth if bytes_moved else 0.0)
    return max(host, device)
