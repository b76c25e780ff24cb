"""The GPU probe (tools/gpu_probe.py) runs on the CPU with tiny settings and reports every measurement."""
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.workflow  # runs the probe end to end (~15 s)
def test_gpu_probe_cpu_tiny(tmp_path):
    """The command docs/benchmarks.md shows, on the CPU at test size where no GPU is here (the form
    tests/test_workflow.py runs a shown tool in, which leaves this one to this test)."""
    from test_docs import documented_commands
    from test_workflow import cpu_form

    (shown,) = {c for c in documented_commands() if c.startswith("python tools/gpu_probe.py")}
    args = cpu_form(shlex.split(shown.replace("$OUT", str(tmp_path))))
    out = Path(args[args.index("--out") + 1])
    cmd = [sys.executable, str(ROOT / args[1]), *args[2:]]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    assert text in proc.stdout
    for row in ("| 1 | 3 |", "| 2 | 3 |", "pretrain step | batch 16, fp32", "pretrain step | batch 64, high",
                "RL step (call of 2 / 2) | K 1,", "RL step (call of 2 / 2) | K 2,", "RL call, 1 step | K 2,",
                "exact pass@1 (stacked, float64) | K 2, 32 prompts (n_eval)", "pretraining eval pass@1",
                "device: CPU", "torch ", "## Projections", "- pretraining, N = 2 at a time:"):
        assert row in text, row
    data = json.loads(out.with_suffix(".json").read_text())
    assert [r["procs"] for r in data["concurrency"]] == [1, 2]
    for r in data["concurrency"]:
        assert r["ms_per_step_mean"] > 0 and r["agg_steps_per_s"] > 0 and r["wall_s"] > 0
    assert data["settings"]["model"] == {"n_layer": 1, "n_head": 2, "n_embd": 32}
    assert data["settings"]["digits"] == 3 and data["settings"]["seq_len"] == 13  # gpu.yaml's task: 9 + 4 tokens
    assert len(data["steps"]) == 4 + 2 * 3 + 2 * 2 + 1
    for r in data["steps"]:
        if "marginal" not in r["what"]:  # a difference of two timings may be noise around zero on a tiny model
            assert r["median_ms"] > 0 and r["min_ms"] > 0, r
