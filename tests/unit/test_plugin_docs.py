"""`ansible-doc onprem.torchrun.<plugin>` works for every module and filter of the collection, each says the
release that brought it, and the README lists them all."""

import os
import subprocess
import sys
from pathlib import Path

import importlib.util

import pytest
import yaml
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("plugin_docs", ROOT / "tools" / "plugin_docs.py")
plugin_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plugin_docs)
PLUGINS = [("module", p.stem) for p in sorted((ROOT / "plugins" / "modules").glob("*.py")) if p.stem != "__init__"]
PLUGINS += [("filter", p.stem) for p in sorted((ROOT / "plugins" / "filter").glob("*.py")) if p.stem != "__init__"]


@pytest.mark.parametrize("kind,name", PLUGINS)
def test_ansible_doc_shows_the_plugin(kind, name):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "-t", kind, "onprem.torchrun." + name],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "onprem.torchrun.%s" % name in proc.stdout and "EXAMPLES" in proc.stdout, proc.stdout[:500]


def released_plugins():
    """Plugin name to the release whose changelog first lists it."""
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    first = {}
    for version in sorted(releases, key=Version):
        entries = list(releases[version].get("modules") or [])
        for kind_entries in (releases[version].get("plugins") or {}).values():
            entries += kind_entries
        for entry in entries:
            first.setdefault(entry["name"], version)
    return first, max(releases, key=Version)


@pytest.mark.parametrize("kind,name", PLUGINS)
def test_version_added_is_the_release_that_brought_the_plugin(kind, name):
    folder = "modules" if kind == "module" else "filter"
    doc = plugin_docs.documentation(ROOT / "plugins" / folder / (name + ".py"))
    first, latest = released_plugins()
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    if name in first:
        assert doc["version_added"] == first[name], "%s came with %s" % (name, first[name])
    else:
        # Not released yet: it comes with the next release, the one galaxy.yml prepares.
        upcoming = galaxy if Version(galaxy) > Version(latest) else "a version after %s" % latest
        assert Version(doc["version_added"]) > Version(latest), "%s is new since %s: version_added %s" % (name, latest, upcoming)
        if Version(galaxy) > Version(latest):
            assert doc["version_added"] == galaxy


def test_readme_plugin_list_is_generated_from_the_plugins():
    assert plugin_docs.main(["--check"]) == 0, "README.md's plugin list is stale: run `make readme`"
    listed = plugin_docs.README.read_text().split(plugin_docs.BEGIN)[1].split(plugin_docs.END)[0]
    for kind, name in PLUGINS:
        assert "| `onprem.torchrun.%s` | %s" % (name, kind) in listed


def test_an_unmarked_readme_is_refused():
    with pytest.raises(SystemExit, match="no plugin list markers"):
        plugin_docs.rewrite("# a README without the markers\n")
