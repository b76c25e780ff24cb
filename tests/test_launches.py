"""tools/launches.py: what counts as a kernel launch, a sync and a FLOP, and the prediction; tools/gpu_cost.py."""
import math
import sys

import pytest
import torch
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))  # the developer tools are scripts in a plain folder, not a package
from launches import combine, count_work, foreach_launches, predict_seconds  # noqa: E402


def test_matmul_is_one_launch_and_2mnk_flops():
    a, b = torch.randn(8, 16), torch.randn(16, 32)
    w = count_work(torch.mm, a, b)
    assert w["launches"] == 1
    assert w["flops"] == 2 * 8 * 16 * 32
    assert w["syncs"] == 0
    assert w["by_op"] == {"mm": 1}
    assert w["bytes"] == (8 * 16 + 16 * 32 + 8 * 32) * 4
    assert torch.equal(w["result"], a @ b)


def test_views_launch_nothing():
    x = torch.randn(4, 6)

    def views(x):
        return x.view(6, 4).t().unsqueeze(0).expand(3, 4, 6)[1:, :, ::2].transpose(0, 1).detach()

    w = count_work(views, x)
    assert w["launches"] == 0, w["by_op"]
    assert w["flops"] == 0


def test_reshape_of_a_non_contiguous_tensor_copies_once():
    w = count_work(lambda x: x.t().reshape(-1), torch.randn(4, 6))
    assert w["launches"] == 1, w["by_op"]


def test_loop_of_ten_adds_counts_ten():
    def adds(x):
        for _ in range(10):
            x = x + 1
        return x

    w = count_work(adds, torch.zeros(5))
    assert w["launches"] == 10
    assert w["by_op"] == {"add": 10}
    assert w["flops"] == 0


def test_empty_tensors_launch_nothing():
    x = torch.randn(4, 3)

    def work(x):
        cache = torch.tensor([], device=x.device)  # an empty KV cache: no copy
        empty = torch.empty(0, 3, device=x.device) * 2  # no kernel on an empty tensor
        return torch.cat([cache.view(0, 3), empty, x])  # one launch: the output is not empty

    w = count_work(work, x)
    assert w["launches"] == 1, w["by_op"]
    assert w["syncs"] == 0


def test_item_and_float_are_syncs():
    def reads(x):
        return float(x.sum()) + x.max().item() + (1 if x.sum() > 0 else 0)

    w = count_work(reads, torch.ones(3))
    assert w["syncs"] == 3
    assert w["syncs_by_op"] == {"_local_scalar_dense": 3}
    assert w["syncs_by_site"] == {"test_launches.py:reads": 3}


def test_boolean_mask_indexing_syncs_integer_indexing_does_not():
    x, idx = torch.randn(10), torch.arange(3)
    assert count_work(lambda: x[x > 0])["syncs"] == 1
    assert count_work(lambda: x[idx])["syncs"] == 0


def test_nonzero_that_finds_nothing_still_syncs():
    x = torch.randn(5)  # all finite: the nonzero below returns an empty tensor, yet CUDA ran it and waited
    w = count_work(lambda t: (~torch.isfinite(t)).nonzero(), x)
    assert w["syncs"] == 1 and w["by_op"].get("nonzero") == 1


def test_host_tensors_launch_nothing():
    """A factory without a device (or device="cpu") makes a tensor a CUDA run keeps on the host."""
    x = torch.randn(4)

    def host_work(x):
        steps = torch.zeros((), device="cpu")
        for _ in range(5):
            steps += 1
        table = torch.tensor([1.0, 2.0, 3.0, 4.0]) * 2  # built on the host, stays there
        return x + steps.item(), table

    w = count_work(host_work, x)
    assert w["launches"] == 1, w["by_op"]  # x + scalar only
    assert w["syncs"] == 0


def test_device_factories_and_host_to_device_copies():
    x = torch.randn(4)

    def work(x):
        a = torch.arange(4, device=x.device)  # one launch
        b = torch.tensor([1.0, 2.0, 3.0, 4.0], device=x.device)  # host build + one H2D copy (a sync)
        c = torch.rand(4).to(x.device)  # host draw, one H2D copy
        return x + a + b + c

    w = count_work(work, x)
    assert w["by_op"].get("h2d_copy") == 2, w["by_op"]
    assert w["syncs"] == 2
    assert w["launches"] == 1 + 2 + 3


def test_cpu_of_a_device_tensor_is_a_copy_and_a_sync():
    w = count_work(lambda x: (x * 2).cpu().numpy(), torch.randn(3))
    assert w["launches"] == 2 and w["syncs"] == 1


def test_backward_is_counted():
    lin = torch.nn.Linear(16, 8)
    x = torch.randn(4, 16)

    def step():
        lin(x).pow(2).sum().backward()

    w = count_work(step)
    fwd = 2 * 4 * 16 * 8
    assert w["flops"] == fwd + 2 * fwd - 2 * 4 * 16 * 8  # forward, weight grad (no input grad: x is a leaf)
    assert w["launches"] > 4


def test_optimizer_step_uses_cuda_foreach_kernels():
    """AdamW on CUDA defaults to foreach multi-tensor kernels: a handful of launches for all parameters, not a
    per-parameter loop; its CPU step counters launch nothing."""
    params = [torch.nn.Parameter(torch.randn(3, 3)) for _ in range(20)]
    opt = torch.optim.AdamW(params, lr=1e-3)
    for p in params:
        p.grad = torch.randn(3, 3)
    first = count_work(opt.step)  # creates the state: moments on the device, step counters on the host
    assert first["launches"] > 0
    w = count_work(opt.step)
    assert all(name.startswith("_foreach_") for name in w["by_op"]), w["by_op"]
    assert w["launches"] < 20
    assert w["syncs"] == 0


def test_foreach_launches_follow_multi_tensor_apply_limits():
    small = [torch.zeros(10)] * 200
    assert foreach_launches(torch.ops.aten._foreach_mul_.Scalar, (small, 2.0)) == math.ceil(200 / 110)
    assert foreach_launches(torch.ops.aten._foreach_add_.List, (small, small)) == math.ceil(200 / 64)
    big = [torch.zeros(65536 * 100)] * 4  # 400 chunks: two launches by the chunk limit
    assert foreach_launches(torch.ops.aten._foreach_mul_.Scalar, (big, 2.0)) == 2
    assert foreach_launches(torch.ops.aten._foreach_norm.Scalar, (small, 2)) == math.ceil(200 / 64) + 1


def test_predict_seconds_is_the_slower_of_host_and_device():
    assert predict_seconds(1000, 0, 1e-5, 1e12) == pytest.approx(1e-2)
    assert predict_seconds(10, 1e12, 1e-5, 1e12) == pytest.approx(1.0)
    assert predict_seconds(10, 0, 1e-5, 1e12, bytes_moved=2e9, bandwidth=1e9) == pytest.approx(2.0)


def test_combine_scales_and_extrapolates():
    a = {"launches": 10, "syncs": 1, "flops": 100, "bytes": 8, "wall_s": 0.5}
    b = {"launches": 14, "syncs": 2, "flops": 300, "bytes": 8, "wall_s": 0.7}
    per_more = combine([(1, b), (-1, a)])
    assert per_more["launches"] == 4 and per_more["flops"] == 200
    assert combine([(1, a), (3, per_more)])["launches"] == 22
    a["by_op"], b["by_op"] = {"mm": 8, "add": 2}, {"mm": 12, "add": 2}
    assert combine([(1, b), (-1, a)])["by_op"] == {"mm": 4}  # cancelled entries dropped


def _gpu_cost_script():
    """tools/gpu_cost.py as a module (it is a script, not part of the library)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_cost", ROOT / "tools/gpu_cost.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_list_schedule_respects_inputs_and_slots():
    cost = _gpu_cost_script()
    jobs = {"pre/0": (3.0, []), "pre/1": (1.0, []), "post/0": (2.0, ["pre/0"]), "post/1": (4.0, ["pre/1"])}
    assert cost.list_schedule(jobs, 1)[0] == 10.0  # one slot: the sum
    wall, end = cost.list_schedule(jobs, 2)
    assert end["post/1"] == 5.0 and end["post/0"] == 5.0 and wall == 5.0  # post/1 starts when pre/1 ends
    wall, end = cost.list_schedule(jobs, 8)  # more slots than jobs: the longest chain
    assert wall == 5.0 and end["pre/0"] == 3.0


def test_device_busy_counts_every_kernel_and_the_flops():
    cost = _gpu_cost_script()
    units = {"a": {"flops": 2e12, "launches": 1000, "dtype": "float32"},
             "b": {"flops": 1e12, "launches": 0, "dtype": "float64"}}
    terms = {"rule": [(3, "a"), (2, "b")]}
    busy = cost.device_busy(units, terms, members=2, fp32_rate=1e12)
    expected = 2 * (3 * (2.0 + 1000 * cost.KERNEL_DEVICE_S) + 2 * (1e12 / cost.FLOP_RATE["float64"]))
    assert busy == pytest.approx(expected)


@pytest.mark.workflow  # runs the cost model end to end (~7 s)
def test_gpu_cost_script_reports_the_smoke_config(tmp_path):
    """The cost model end to end on the smoke config (seconds here): every section, every GPU rule, positive
    predictions, and N slots never slower than one. It runs the command the docs show, in the form
    tests/test_workflow.py runs a shown tool in (on the smoke config), with 4 slots and a report file added; that
    test leaves this command to this one."""
    import os
    import re
    import shlex
    import subprocess

    from test_docs import documented_commands
    from test_workflow import runnable_form

    (shown,) = {c for c in documented_commands() if c.startswith("python tools/gpu_cost.py")}
    args = shlex.split(runnable_form(shown))
    assert args[args.index("--configfile") + 1] == "config/smoke.yaml", shown
    out = tmp_path / "cost.md"
    proc = subprocess.run([sys.executable, str(ROOT / args[1]), *args[2:], "--slots", "4", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    for section in ("## Units", "## Per rule and whole DAG", "## Cross-check", "## Sensitivity",
                    "## Schedule: GPU jobs on N slots"):
        assert section in text, section
    for rule in ("pretrain", "trajectory", "costates", "update_alignment"):
        assert re.search(rf"^\| {rule} ", text, re.M), rule
    assert re.search(r"\*\*Whole DAG: [\d,.]+ (ms|s)", text)
    from vgh.config import read_yaml

    smoke = read_yaml(ROOT / "config/smoke.yaml")
    n_batches = (smoke.get("alignment", {}).get("n_batches")
                 or read_yaml(ROOT / "config/config.yaml")["alignment"]["n_batches"])
    assert f"extrapolated to {n_batches} batches" in text  # the alignment unit scaled to the config's batches

    def seconds(cell: str) -> float:
        value = float(re.match(r"([\d,.]+)", cell.strip()).group(1).replace(",", ""))
        return value / 1000 if cell.strip().split()[1] == "ms" else value

    walls = {}
    for row in re.findall(r"^\| (\d+) s +\| gpu=(\d+) +\| ([^|]+)\|", text, re.M):
        walls.setdefault(row[0], {})[int(row[1])] = seconds(row[2])
    assert walls and all(set(w) == {1, 4} and 0 < w[4] <= w[1] for w in walls.values()), walls
