"""Test hook: SIGKILL the workflow's pretrain job at a chosen file operation, as a hard kill would.

Loaded only by tests that put this folder on PYTHONPATH and set VGH_TEST_KILL (tests/test_resume.py):
  VGH_TEST_KILL=state.pt:3   kill right after the 3rd resume state is saved (mid-training)
  VGH_TEST_KILL=copytree:2   kill before the 2nd checkpoint is copied to its output (mid-finish)
Every other process (Snakemake itself, other jobs) is left alone.
"""
import os
import shutil
import signal
import sys

_spec = os.environ.get("VGH_TEST_KILL")
if _spec and "pretrain.py" in " ".join(sys.argv):
    _what, _n = _spec.rsplit(":", 1)
    _count = {"n": 0}

    def _kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if _what == "copytree":
        _copytree = shutil.copytree

        def _killing_copytree(*args, **kwargs):
            _count["n"] += 1
            if _count["n"] == int(_n):
                _kill()
            return _copytree(*args, **kwargs)

        shutil.copytree = _killing_copytree
    else:
        _replace = os.replace

        def _killing_replace(src, dst, *args, **kwargs):
            out = _replace(src, dst, *args, **kwargs)
            if os.path.basename(os.fspath(dst)) == _what:
                _count["n"] += 1
                if _count["n"] == int(_n):
                    _kill()
            return out

        os.replace = _killing_replace
