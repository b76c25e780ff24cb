"""Defaults live in the schema only: config/config.yaml repeats them for the reader, and must agree."""
import subprocess
import sys

import yaml
from conftest import ROOT

from vgh.config import load_schema, validate_config

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def _leaves(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_config_yaml_equals_the_schema_defaults():
    defaults = dict(_leaves(validate_config({}, load_schema(SCHEMA))))
    written = dict(_leaves(yaml.safe_load((ROOT / "config/config.yaml").read_text())))
    differ = {k: (v, defaults.get(k, "<no default>")) for k, v in written.items() if defaults.get(k, object()) != v}
    assert not differ, f"config/config.yaml differs from the schema defaults (yaml, schema): {differ}"


def test_config_validation_imports_no_torch():
    code = ("import sys, vgh.config; bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
