"""setup_plan: which setup role's inputs a setting is (plugin_utils/fingerprint.py), the digests'
stability, and the action run by ansible-playbook on local hosts (no node): a changed setting
changes exactly the digests of the roles that read it, and the node's kept digests are read back."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.onprem.torchrun.plugins.plugin_utils import fingerprint
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.build import role_options

ROOT = Path(__file__).resolve().parents[3]
SETUP_ROLES = ("nvidia", "pytorch", "firewall", "connectivity", "launcher")


@pytest.fixture(scope="module")
def names():
    """Each setup role's inputs, as the action computes them (without the place facts' values)."""
    specs, lazy = {}, {}
    for role in (ROOT / "roles").iterdir():
        if (role / "meta" / "argument_specs.yml").is_file():
            specs.update(role_options(yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())))
        if (role / "vars" / "main.yml").is_file():
            lazy.update({k: json.dumps(v) for k, v in (yaml.safe_load((role / "vars" / "main.yml").read_text()) or {}).items()})
    known = set(specs) | {"__torchrun_addresses", "__torchrun_master"} | set(fingerprint.CONNECTION)
    return {role: fingerprint.role_names(fingerprint.role_texts(str(ROOT), role), known, lazy) for role in SETUP_ROLES}


@pytest.mark.parametrize("setting, readers", [
    ("torchrun_script_args", {"launcher"}),
    ("firewall_allow", {"firewall"}),
    ("connectivity_timeout", {"connectivity"}),
    ("pytorch_torch_version", {"pytorch"}),
    ("nvidia_driver_branch", {"nvidia"}),
    ("launcher_restart_sec", {"launcher"}),
    ("__torchrun_ports", {"connectivity", "firewall", "launcher"}),  # the ports and the range, through the port model
    ("__torchrun_requirements", {"pytorch", "launcher"}),  # the project's requirements file's content
    ("ansible_port", {"firewall"}),  # SSH stays open on the port Ansible connects to
])
def test_a_setting_is_an_input_of_exactly_the_roles_that_read_it(names, setting, readers):
    assert {role for role in SETUP_ROLES if setting in names[role]} == readers


def test_a_lazy_variable_counts_with_what_its_definition_names_in_turn():
    lazy = {"__demo_a": "{{ __demo_b ~ x_one }}", "__demo_b": "{{ y_two }}", "__demo_c": "{{ z_three }}"}
    found = fingerprint.role_names(["{{ __demo_a }}"], {"x_one", "y_two", "z_three"}, lazy)
    assert found == {"__demo_a", "__demo_b", "x_one", "y_two"}  # __demo_c is not named, so neither is z_three


def test_a_comment_in_a_task_file_names_no_input(tmp_path):
    tasks = tmp_path / "roles" / "demo" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text("# torchrun_script_args is the launcher's\n- name: x\n  debug: msg={{ firewall_allow }}\n")
    texts = fingerprint.role_texts(str(tmp_path), "demo")
    assert fingerprint.role_names(texts, {"torchrun_script_args", "firewall_allow"}, {}) == {"firewall_allow"}


def test_the_contract_roles_task_files_a_role_includes_are_read_in_turn(tmp_path):
    (tmp_path / "roles" / "demo" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "torchrun" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "demo" / "tasks" / "main.yml").write_text("- include_role:\n    name: onprem.torchrun.torchrun\n    tasks_from: a.yml\n")
    (tmp_path / "roles" / "torchrun" / "tasks" / "a.yml").write_text("- include_tasks:\n    tasks_from: b.yml\n- debug: msg={{ one_setting }}\n")
    (tmp_path / "roles" / "torchrun" / "tasks" / "b.yml").write_text("- debug: msg={{ two_setting }}\n")
    (tmp_path / "roles" / "torchrun" / "tasks" / "c.yml").write_text("- debug: msg={{ three_setting }}\n")
    texts = fingerprint.role_texts(str(tmp_path), "demo")
    assert fingerprint.role_names(texts, {"one_setting", "two_setting", "three_setting"}, {}) == {"one_setting", "two_setting"}


def test_the_digest_is_stable_and_says_nothing_of_the_values():
    one = fingerprint.digest({"b": {"y": 1, "x": [1, 2]}, "a": "__omit_place_holder__0123abcd"}, "files")
    two = fingerprint.digest({"a": "__omit_place_holder__ffff9999", "b": {"x": [1, 2], "y": 1}}, "files")
    assert one == two and len(one) == 64
    assert fingerprint.digest({"a": "secret-token"}, "files") != fingerprint.digest({"a": "secret-tokem"}, "files")
    assert "secret" not in fingerprint.digest({"a": "secret-token"}, "files")
    assert fingerprint.digest({"a": 1}, "files") != fingerprint.digest({"a": 1}, "other files")


def test_the_inputs_that_changed_are_named_and_a_secret_has_no_digest_of_its_own():
    now = fingerprint.input_digests({"a_one": 1, "b_two": "x", "torchrun_secret_env": {"K": "v"}}, {"torchrun_secret_env"})
    assert sorted(now) == ["a_one", "b_two"] and all(len(d) == 16 for d in now.values())
    kept = dict(now, a_one="0" * 16, c_gone="1" * 16)
    assert fingerprint.changed_inputs(now, kept) == ["a_one", "c_gone"]


def test_a_lazy_value_that_reads_the_roles_own_results_is_left_to_its_names():
    def render(name):
        if name in ("__registered", "unset_setting"):
            raise KeyError(name)
        return name.upper()

    values = fingerprint.values_of({"__registered", "setting", "unset_setting"}, render, {"__registered": "{{ x }}"})
    assert values == {"setting": "SETTING", "unset_setting": None}


def test_a_changed_file_changes_the_files_digest(tmp_path):
    (tmp_path / "roles" / "demo").mkdir(parents=True)
    (tmp_path / "roles" / "torchrun").mkdir()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "roles" / "demo" / "main.yml").write_text("a\n")

    def digest():
        return fingerprint.combined(fingerprint.files_digest(fingerprint.role_files(str(tmp_path), "demo"), str(tmp_path)),
                                    fingerprint.files_digest(fingerprint.shared_files(str(tmp_path)), str(tmp_path)))
    first = digest()
    (tmp_path / "plugins" / "x.py").write_text("b\n")  # a plugin: every role's digest
    second = digest()
    (tmp_path / "roles" / "demo" / "main.yml").write_text("c\n")  # the role's own
    third = digest()
    (tmp_path / "roles" / "demo" / "README.md").write_text("docs\n")  # documentation is no input
    assert len({first, second, third}) == 3 and digest() == third


def play(variants):
    """One task per variant (its settings as task vars), then the results handed to the test."""
    tasks = [{"name": item["name"], "onprem.torchrun.setup_plan": {"roles": ["firewall", "launcher", "connectivity"], "path": "{{ path }}",
              "node": item.get("node", NODE)}, "vars": item["vars"], "register": "plan_" + item["name"]}
             for item in variants]
    tasks.append({"name": "Hand the results to the test", "delegate_to": "localhost", "ansible.builtin.copy": {
        "content": "{{ %s | to_json }}" % ("{" + ", ".join("'%s': plan_%s" % (v["name"], v["name"]) for v in variants) + "}"),
        "dest": "{{ out }}/{{ inventory_hostname }}.json", "mode": "0600"}})
    return yaml.safe_dump([{"hosts": "trainers", "gather_facts": False, "tasks": tasks}])


# What the probe read of the node (its release, kernel and machine), as setup.yml hands it over.
NODE = {"release": {"id": "debian", "version": "12"}, "kernel": "6.1.0-28-amd64", "machine": "x86_64"}
VARIANTS = [{"name": "same", "vars": {}},
            {"name": "kernel", "vars": {}, "node": dict(NODE, kernel="6.1.0-30-amd64")},
            {"name": "firewall_allow", "vars": {"firewall_allow": [{"port": 9100, "from": ["198.18.0.1"]}]}},
            {"name": "torchrun_script_args", "vars": {"torchrun_script_args": ["--epochs", "3"]}},
            {"name": "torchrun_master_port", "vars": {"torchrun_master_port": 29600}}]


def test_the_action_digests_what_each_role_reads_and_reads_back_what_the_node_kept(tmp_path):
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"trainers": {"hosts": {
        # The contract role's place facts, as setup.yml has them when it plans.
        "node1": {"ansible_connection": "local", "ansible_host": "198.18.0.11", "__torchrun_node_rank": 0},
        "node2": {"ansible_connection": "local", "ansible_host": "198.18.0.12", "__torchrun_node_rank": 1}}}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable)

    def plan(variants):
        (tmp_path / "play.yml").write_text(play(variants))
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(tmp_path / "play.yml"), "-i", str(tmp_path / "hosts.yml"),
                               "-e", json.dumps({"path": str(tmp_path / "kept.json"), "out": str(tmp_path)})],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        return json.loads((tmp_path / "node1.json").read_text()), json.loads((tmp_path / "node2.json").read_text())

    first, other = plan(VARIANTS)
    assert first["same"]["exists"] is False and set(first["same"]["stored"]) == {"(machine)"} and first["same"]["unchanged"] == []
    assert first["same"]["changed_inputs"]["firewall"] == ["(no digest kept)"]
    found = first["same"]["fingerprints"]
    digests = {role: found[role]["digest"] for role in found}
    assert sorted(digests) == ["connectivity", "firewall", "launcher"]
    assert other["same"]["fingerprints"]["launcher"]["digest"] != digests["launcher"]  # node2's rank is its own

    def changed(name):
        return {role for role in digests if first[name]["fingerprints"][role]["digest"] != digests[role]}

    assert changed("kernel") == {"connectivity", "firewall", "launcher"}  # another kernel booted: every role runs again
    assert changed("firewall_allow") == {"firewall"}
    assert changed("torchrun_script_args") == {"launcher"}
    assert changed("torchrun_master_port") == {"connectivity", "firewall", "launcher"}  # through the port model
    # What the node kept is read back: the unchanged roles are named, and for the others what changed.
    kept = dict(found, launcher=dict(found["launcher"], digest="old",
                                     inputs=dict(found["launcher"]["inputs"], torchrun_script_args="0" * 16)))
    machine = first["same"]["stored"]["(machine)"]
    if not Path("/etc/machine-id").is_file():
        pytest.skip("no /etc/machine-id here: the plan trusts no kept digests on such a machine (every role runs)")
    assert machine == Path("/etc/machine-id").read_text().strip()
    (tmp_path / "kept.json").write_text(json.dumps(dict(kept, **{"(machine)": machine})))
    again, _ = plan(VARIANTS[:2])
    assert again["same"]["exists"] is True and again["same"]["fingerprints"] == found
    assert again["same"]["unchanged"] == ["connectivity", "firewall"]
    assert again["same"]["changed_inputs"] == {"launcher": ["torchrun_script_args"]}
    node = "(the node's release and kernel)"  # another kernel: named as such for every role
    assert again["kernel"]["unchanged"] == []
    assert again["kernel"]["changed_inputs"] == {"connectivity": [node], "firewall": [node], "launcher": [node, "torchrun_script_args"]}
    # A secret's value is never among the inputs' digests (the role's digest covers it).
    assert "torchrun_secret_env" not in found["launcher"]["inputs"] and "torchrun_job" in found["launcher"]["inputs"]
    # Digests another machine kept (a cloned disk or image) count as none; so do unreadable ones.
    (tmp_path / "kept.json").write_text(json.dumps(dict(found, **{"(machine)": "0" * 32})))
    cloned = plan(VARIANTS[:1])[0]["same"]
    assert cloned["unchanged"] == [] and cloned["changed_inputs"]["firewall"] == ["(no digest kept)"]
    (tmp_path / "kept.json").write_text("not json")
    assert plan(VARIANTS[:1])[0]["same"]["unchanged"] == []


def test_the_kept_digests_are_written_in_one_call_root_only_unshown_and_again_only_when_they_differ(tmp_path):
    # keep: what setup.yml's last task hands it, on a node whose configuration folder is missing.
    path = tmp_path / "etc" / "torchrun" / "train.setup.json"
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"node1": {"ansible_connection": "local"}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable)

    def keep(digests, *args):
        task = {"name": "Keep", "onprem.torchrun.setup_plan": {"path": str(path), "keep": digests}}
        (tmp_path / "play.yml").write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [task]}]))
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(tmp_path / "play.yml"), "-i", str(tmp_path / "hosts.yml"),
                               "-vvv", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        recap = re.search(r"node1\s+: ok=1\s+changed=(\d)", proc.stdout)
        assert recap, proc.stdout[-2000:]
        return recap.group(1) == "1", proc.stdout + proc.stderr

    digests = {"(machine)": "m" * 32, "launcher": {"digest": "d1g35t0f4s3cr3t", "inputs": {"torchrun_job": "0" * 16}}}
    changed, out = keep(digests, "--check")  # check mode: would change, writes nothing
    assert changed and not path.parent.exists()
    changed, out = keep(digests)
    assert changed and json.loads(path.read_text()) == digests
    assert oct(path.stat().st_mode & 0o7777) == "0o600" and oct(path.parent.stat().st_mode & 0o777) == "0o755"
    assert "d1g35t0f4s3cr3t" not in out  # never shown, not even with -vvv
    assert keep(digests)[0] is False  # the same digests: no change
    assert keep(digests, "--check")[0] is False
    # A link where the file goes is replaced by the file, never followed.
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("the site's\n")
    path.unlink()
    path.symlink_to(elsewhere)
    assert keep(dict(digests, launcher={"digest": "new", "inputs": {}}))[0] is True
    assert not path.is_symlink() and json.loads(path.read_text())["launcher"]["digest"] == "new"
    assert elsewhere.read_text() == "the site's\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
