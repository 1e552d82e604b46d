"""The README's common-mistakes table is the preflight catalogue's, and every case is well formed."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("catalogue", ROOT / "tools" / "catalogue.py")
catalogue = importlib.util.module_from_spec(spec)
spec.loader.exec_module(catalogue)

KEYS = {"mistake", "sandbox", "vars", "host_vars", "facts", "setup", "cleanup", "message"}


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
