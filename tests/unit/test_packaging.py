"""The collection builds, installs cleanly, and resolves both from a checkout and installed."""

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(cmd, cwd, env=None):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    run([BIN / "ansible-galaxy", "collection", "build", "--output-path", str(out), str(ROOT)], cwd=ROOT)
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    path = out / ("onprem-torchrun-%s.tar.gz" % version)
    assert path.is_file()
    return path


def test_tarball_ships_no_dev_files(tarball):
    names = tarfile.open(tarball).getnames()
    assert "playbooks/ping.yml" in names and "plugins/filter/node_rank.py" in names
    for dev in ("sandbox/", "tests/", "bench/", "extensions/", "collections/", ".venv/", "inventories/sandbox/", "Makefile"):
        assert not [n for n in names if n.startswith(dev)], dev


def test_installed_collection_runs_playbooks_by_name(tarball, tmp_path):
    cols = tmp_path / "cols"
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")  # not the checkout's ansible.cfg
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(cols), ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"))
    run([BIN / "ansible-galaxy", "collection", "install", "--offline", "--force", "-p", str(cols), str(tarball)], cwd=tmp_path, env=env)
    assert (cols / "ansible_collections" / "onprem" / "torchrun" / "MANIFEST.json").is_file()
    out = run([BIN / "ansible-playbook", "onprem.torchrun.ping", "--syntax-check", "-i", "localhost,"], cwd=tmp_path, env=env)
    assert "playbook: %s/ansible_collections/onprem/torchrun/playbooks/ping.yml" % cols in out
    doc = run([BIN / "ansible-doc", "-t", "filter", "onprem.torchrun.node_rank"], cwd=tmp_path, env=env)
    assert "node rank" in doc


def test_installed_and_run_by_name_without_our_config_a_bad_value_on_unreachable_nodes_gets_the_validation_report(tarball, tmp_path):
    # As a user runs it: the tarball in an empty collections path, outside the checkout, no ansible.cfg
    # of ours; nodes that do not answer (TEST-NET addresses) and a bad value. The report, not SSH errors.
    cols = tmp_path / "cols"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(cols), ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    run([BIN / "ansible-galaxy", "collection", "install", "--offline", "--force", "--no-deps", "-p", str(cols), str(tarball)], cwd=tmp_path, env=env)
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"trainers": {"hosts": {
        "gpu-node-1": {"ansible_host": "192.0.2.16", "ansible_ssh_common_args": "-o ConnectTimeout=2"},
        "gpu-node-2": {"ansible_host": "192.0.2.17", "ansible_ssh_common_args": "-o ConnectTimeout=2"}}}}))
    for name in ("setup", "train"):
        proc = subprocess.run([BIN / "ansible-playbook", "onprem.torchrun." + name, "-i", "hosts.yml", "-e", "torchrun_master_port=70000"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "gpu-node-1: torchrun_master_port=70000 must be a port from 1024 to 65535" in out, out[-3000:]
        assert "UNREACHABLE!" not in out and "ssh: connect" not in out, out[-3000:]
        # Without our ansible.cfg the report is still one problem per line, not one JSON line.
        assert re.search(r"^\[ERROR\]: Task failed: Action failed: preflight found 3 problem\(s\); nothing was changed\n"
                         r"gpu-node-1: torchrun_master_port=70000 must be a port from 1024 to 65535\n", out, flags=re.M), out[-3000:]


def test_an_execution_environment_gets_what_the_collection_needs_on_the_controller(tarball, tmp_path):
    # ansible-builder reads meta/execution-environment.yml of the installed collection (as it does
    # inside the image's build): rsync for the project copy, the ssh client, no Python packages.
    cols = tmp_path / "cols"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    run([BIN / "ansible-galaxy", "collection", "install", "--offline", "--force", "--no-deps", "-p", str(cols), str(tarball)], cwd=tmp_path, env=env)
    found = yaml.safe_load(run([BIN / "ansible-builder", "introspect", str(cols)], cwd=tmp_path, env=env))
    assert found["system"] == ["rsync [platform:rpm platform:dpkg]  # from collection onprem.torchrun",
                               "openssh-clients [platform:rpm]  # from collection onprem.torchrun",
                               "openssh-client [platform:dpkg]  # from collection onprem.torchrun"], found
    assert found["python"] == [], found


def test_ansible_builder_accepts_the_execution_environment_definition(tarball, tmp_path):
    definition = tmp_path / "awx"
    definition.mkdir()
    for name in ("execution-environment.yml", "requirements.yml"):
        (definition / name).write_text((ROOT / "docs" / "awx" / name).read_text())
    (definition / "onprem-torchrun.tar.gz").write_bytes(tarball.read_bytes())  # as the definition's comment says
    # The recipe named: ansible-builder otherwise names it (Containerfile, Dockerfile) after the engine it finds.
    run([BIN / "ansible-builder", "create", "-f", str(definition / "execution-environment.yml"), "-c", str(tmp_path / "context"),
         "--output-filename", "Containerfile"], cwd=tmp_path)
    recipe = (tmp_path / "context" / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in recipe and "ansible-core>=2.19" in recipe
    assert (tmp_path / "context" / "_build" / "onprem-torchrun.tar.gz").read_bytes() == tarball.read_bytes()
    assert yaml.safe_load((tmp_path / "context" / "_build" / "requirements.yml").read_text())["collections"][0]["type"] == "file"


def test_checkout_resolves_the_collection_without_install(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    out = run([BIN / "ansible-playbook", "playbooks/ping.yml", "--syntax-check", "-i", "localhost,"], cwd=ROOT, env=env)
    assert "playbook: playbooks/ping.yml" in out
    link = ROOT / "collections" / "ansible_collections" / "onprem" / "torchrun"
    assert link.resolve() == ROOT


def test_lab_inventory_describes_the_example_cluster():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    out = run([BIN / "ansible-inventory", "-i", "inventories/lab", "--list"], cwd=ROOT, env=env)
    inventory = yaml.safe_load(out)
    assert inventory["trainers"]["hosts"] == ["gpu-node-1", "gpu-node-2"]
    first = inventory["_meta"]["hostvars"]["gpu-node-1"]
    assert first["ansible_host"] == "10.10.10.16"
    assert first["torchrun_master_port"] == 50000
    assert not first["torchrun_collective_port_range"][0] <= 50000 <= first["torchrun_collective_port_range"][1]
    assert first["torchrun_nproc_per_node"] == 8


def test_changelog_releases_the_version_galaxy_yml_names():
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert version in releases, "galaxy.yml says %s; changelogs/changelog.yaml releases %s" % (version, sorted(releases))
    newest = max(releases, key=lambda v: tuple(int(p) for p in v.split(".")))
    assert newest == version, "the newest release %s is not galaxy.yml's %s" % (newest, version)
    assert releases[version]["changes"].get("release_summary"), "release %s has no summary" % version
    text = (ROOT / "CHANGELOG.rst").read_text()
    assert "v%s\n" % version in text, "CHANGELOG.rst is not generated from changelog.yaml (antsibull-changelog generate)"
    run([BIN / "antsibull-changelog", "lint"], cwd=ROOT)


def test_the_declared_ansible_core_is_one_the_collection_runs_on():
    # The validator imports ansible.template.trust_as_template, which ansible-core has from 2.19 on:
    # on 2.17 or 2.18 the first validate task of every playbook failed with an import error.
    declared = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]
    assert declared == ">=2.19.0"
    checks = (ROOT / "plugins" / "plugin_utils" / "checks" / "build.py").read_text()
    assert "from ansible.template import trust_as_template" in checks  # the reason for 2.19
    for meta in sorted((ROOT / "roles").glob("*/meta/main.yml")):
        assert yaml.safe_load(meta.read_text())["galaxy_info"]["min_ansible_version"] == "2.19", meta
    pinned = [line for line in (ROOT / "requirements" / "dev.txt").read_text().splitlines() if line.startswith("ansible-core==")]
    assert pinned and pinned[0].split("==")[1].startswith("2.19."), pinned


def test_no_python_file_in_plugins_is_over_600_lines():
    # One room per concern: a file that grows past this is split by area (as plugin_utils/checks/ is).
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "plugins").rglob("*.py") for n in [len(p.read_text().splitlines())] if n > 600}
    assert not long, long
