"""The README's common-mistakes table is the preflight catalogue's, and every case is well formed."""

import ast
import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("catalogue", ROOT / "tools" / "catalogue.py")
catalogue = importlib.util.module_from_spec(spec)
spec.loader.exec_module(catalogue)

KEYS = {"mistake", "sandbox", "vars", "host_vars", "facts", "setup", "cleanup", "message", "stage"}


def test_readme_table_is_generated_from_the_catalogue():
    text = catalogue.README.read_text()
    assert catalogue.render(text, catalogue.load()) == text, "README.md's table is stale: run `make readme`"


def test_catalogue_cases_are_well_formed():
    cases = catalogue.load()
    assert len(cases) >= 12
    for case in cases:
        assert set(case) <= KEYS and {"mistake", "message"} <= set(case), case
        # Each message names where the problem is: a node, the inventory, the controller or the spec.
        assert case["message"].split(":")[0].split(",")[0] in ("node1", "node2", "inventory", "controller") \
            or case["message"].startswith("value of "), case["message"]
        assert set(case.get("setup") or {}) == set(case.get("cleanup") or {}), "every setup needs its cleanup"


def test_role_readmes_are_generated_from_their_specs():
    spec_ = importlib.util.spec_from_file_location("role_docs", ROOT / "tools" / "role_docs.py")
    role_docs = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(role_docs)
    assert role_docs.main(["--check"]) == 0, "a role README is stale: run `make readme`"
    for readme in (ROOT / "roles").glob("*/README.md"):
        assert "| variable | type | default | description |" in readme.read_text() or "No variables" in readme.read_text()


def test_the_install_section_says_which_settings_may_differ_per_host():
    text = catalogue.README.read_text()
    section = text.split("## Install and run")[1].split("\n## ")[0]
    line = section.split("<!-- per-host: generated from the validator's PER_HOST; checked by a unit test -->\n")[1].splitlines()[0]
    listed = sorted(re.findall(r"`([a-z_]+)`", line))
    assert listed == sorted(_per_host()), "the README's per-host list is not the validator's PER_HOST"
    # The example's host_vars hold only those (and connection settings); every YAML block parses.
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 3
    parsed = [yaml.safe_load(block) for block in blocks]
    assert set(parsed[2]) <= set(_per_host())
    assert list(parsed[0]["trainers"]["hosts"]) == ["gpu-node-1", "gpu-node-2"]


def _per_host():
    """The validator's PER_HOST, read from its source (importing it needs the collection's package path)."""
    source = (ROOT / "plugins" / "plugin_utils" / "checks" / "core.py").read_text()
    return ast.literal_eval(re.search(r"^PER_HOST = (\{.*?\})$", source, flags=re.M).group(1))
