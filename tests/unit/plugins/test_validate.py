"""The preflight validator, driven by the catalogue (tests/integration/preflight_cases.yml) with fake
hostvars and node facts: every case's message, in seconds, without a node.

The fake cluster is the sandbox's: node1 and node2 at 198.18.0.11/12 with the sandbox inventory's
group_vars. A case's ``vars`` act as extra vars (they win over everything), its ``host_vars`` as
host variables; its ``facts`` replace parts of what node_probe would read on a node. Like the
playbooks, the inventory stage runs first and the node stage only when the inventory is clean.
"""

import copy
import os
import importlib.util
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar
from ansible_collections.onprem.torchrun.plugins.module_utils import ports
from ansible_collections.onprem.torchrun.plugins.plugin_utils import checks

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "roles"
spec = importlib.util.spec_from_file_location("catalogue", ROOT / "tools" / "catalogue.py")
catalogue = importlib.util.module_from_spec(spec)
spec.loader.exec_module(catalogue)

HOSTS = {"node1": "198.18.0.11", "node2": "198.18.0.12"}
GROUP_VARS = yaml.safe_load((ROOT / "inventories" / "sandbox" / "group_vars" / "all.yml").read_text())
GROUP_VARS["sandbox_package_host"] = "198.18.0.1:3142"
GROUP_VARS["sandbox_wheelhouse_url"] = "http://198.18.0.1:3143/"
# What node_probe reads on a fresh sandbox node.
HEALTHY_NODE = {
    "listeners": [{"port": 22, "address": "0.0.0.0", "process": "sshd", "pid": 100, "unit": "ssh.service", "exe": "/usr/sbin/sshd", "uid": 0}],
    "ssh_ports": [22], "links": {}, "venv_untrusted": None, "cluster": "trainers:0123456789ab",
    "gpus": 0, "fabric": {"devices": [], "char_devices": []}, "preset": [], "path_exists": True, "firewall_active": [], "nft_tables": [], "nft_own_tables": [], "jobs": [],
    "account": {"name": "torchrun", "exists": False, "uid": None, "home": "", "ours": False, "group_exists": False},
}


init_plugin_loader()  # the roles' defaults use lookups (env)
SPECS, DEFAULTS = checks.load_roles(ROLES, lambda path: yaml.safe_load(Path(path).read_text()))
trusted = checks.trusted
TEMPLAR = Templar(loader=DataLoader())


class HostVars(dict):
    """One host's variables as hostvars gives them: each rendered with the host's variables on access."""

    def __getitem__(self, name):
        return TEMPLAR.copy_with_new_env(available_variables=dict(self)).template(dict.__getitem__(self, name))


def hostvars_for(extra=None, host_vars=None, hosts=HOSTS):
    """Each host's variables: extra vars over host vars over group vars, rendered on access."""
    found = {}
    for host, address in hosts.items():
        raw = dict(GROUP_VARS, ansible_host=address, inventory_hostname=host)
        raw.update((host_vars or {}).get(host, {}))
        raw.update(extra or {})
        found[host] = HostVars(trusted(raw))
    return found


def cluster(extra=None, host_vars=None, facts=None, script_on_controller=True, hosts=HOSTS):
    hostvars = hostvars_for(extra, host_vars, hosts)
    first = hostvars[next(iter(hosts))]
    group = first["torchrun_group"] if "torchrun_group" in first else "trainers"
    members = list(hosts) if group == "trainers" else []

    def template(_host, value, merged):
        return TEMPLAR.copy_with_new_env(available_variables=merged).template(value)

    values, found = checks.effective_values(members, hostvars, DEFAULTS, SPECS, template)
    made = checks.Cluster(group=group, hosts=members, values=values, specs=SPECS, script_on_controller=script_on_controller,
                          given={host: list(hostvars[host]) for host in members})
    if facts is not None:
        made.facts = {}
        for host in members:
            node = copy.deepcopy(HEALTHY_NODE)
            node.update(copy.deepcopy((facts or {}).get(host, {})))
            made.facts[host] = node
    return made, found


def report(extra=None, host_vars=None, facts=None):
    """The problems the playbooks would print: the inventory stage's, or else the node stage's."""
    script = (extra or {}).get("torchrun_script", DEFAULTS["torchrun_script"])
    script_on_controller = checks.script_found(str(script), ROLES, ROOT / "playbooks")
    made, found = cluster(extra, host_vars, None, script_on_controller)
    problems = found + checks.validate(made)
    if problems:
        return [p.message for p in problems]
    made, found = cluster(extra, host_vars, facts or {}, script_on_controller)
    return [p.message for p in found + checks.validate(made)]


CASES = {case["mistake"]: case for case in catalogue.load()}


@pytest.mark.parametrize("name", list(CASES))
def test_catalogue_case_is_refused_with_its_message(name):
    case = CASES[name]
    messages = report(case.get("vars"), case.get("host_vars"), case.get("facts"))
    assert any(case["message"] in message for message in messages), "case %r:\n%s" % (name, "\n".join(messages))


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.get("sandbox")])
def test_a_case_marked_inventory_is_refused_by_the_inventory_stage_alone(name):
    # stage: inventory moves a sandbox case to make test-slow (tests/integration/test_preflight.py): it must
    # never need what a node holds, and a case that needs nothing of a node should say so.
    case = CASES[name]
    made, found = cluster(case.get("vars"), case.get("host_vars"), None, True)
    alone = any(case["message"] in p.message for p in found + checks.validate(made))
    assert alone == (case.get("stage") == "inventory"), "case %r: the inventory stage alone %s it" % (name, "refuses" if alone else "does not refuse")


def test_the_sandbox_inventory_passes():
    assert report() == []


def test_every_problem_is_reported_at_once():
    messages = report({"torchrun_nproc_per_node": 0, "torchrun_master_port": 52500, "torchrun_nnodes": "3"})
    assert len(messages) == 4, messages
    for expected in ("node1: torchrun_nproc_per_node=0", "node2: torchrun_nproc_per_node=0",
                     "node1: torchrun_master_port=52500 lies inside", "node1: torchrun_nnodes=3 but"):
        assert any(m.startswith(expected) for m in messages), (expected, messages)


# ---- types as a user types them: every int/bool knob of every role from -e key=value -------------
TYPED = sorted((name, spec["type"]) for name, spec in SPECS.items() if spec.get("type") in ("int", "bool"))


def typed_value(name, kind):
    if kind == "bool":
        return "false" if name != "job_wait" else "true"
    value = DEFAULTS.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return {"connectivity_probe_port": "52000"}.get(name, "1")


@pytest.mark.parametrize("name,kind", TYPED)
def test_a_number_or_bool_given_as_a_string_is_accepted_and_converted(name, kind):
    made, found = cluster({name: typed_value(name, kind)})
    problems = found + checks.validate(made)
    assert not [p for p in problems if p.var == name], problems
    converted = made.values["node1"][name]
    assert isinstance(converted, bool if kind == "bool" else int) and (kind == "bool" or not isinstance(converted, bool))


@pytest.mark.parametrize("name,kind", TYPED)
def test_a_word_where_a_number_or_bool_belongs_is_refused_by_name(name, kind):
    made, found = cluster({name: "many"})
    messages = [p.message for p in found + checks.validate(made)]
    want = "node1: %s=many must be %s" % (name, "a whole number" if kind == "int" else "true or false")
    assert want in messages, messages


def test_a_list_typed_as_a_string_names_the_json_fix():
    messages = report({"torchrun_collective_port_range": "[52000, 53999]"})
    assert any(m.startswith("node1: torchrun_collective_port_range=[52000, 53999] must be a list; -e name=value always "
                            "gives a string, so pass lists as JSON") for m in messages), messages


# ---- names: a strict grammar, anchored, and no collisions with the collection's own names ----------
@pytest.mark.parametrize("job", ["train", "a", "bert-large", "llama3-8b", "j" * 22])
def test_good_job_names_pass(job):
    assert report({"torchrun_job": job}) == []


@pytest.mark.parametrize("job", ["train\n", "Train", "a.b", "a_b", "-a", "a-", "a--b", "1a", "", "j" * 23, "a b",
                                 "x'; touch /root/pwned; echo '", "firewall", "healthcheck", "healthcheck-train",
                                 "probe-52000", "a.secret", "a.run"])
def test_bad_job_names_are_refused(job):
    messages = report({"torchrun_job": job})
    assert any(m.startswith("node1: torchrun_job=") for m in messages), messages


def test_job_names_map_to_distinct_units_files_sets_and_comments():
    good = ["a-b", "ab", "a-b-c", "ab-c", "a-bc", "abc"]
    for job in good:
        assert report({"torchrun_job": job}) == []
    # The names each job gets (the roles use the job name as it is).
    derived = [("torchrun-%s.service" % j, "/etc/torchrun/%s.env" % j, "nodes_%s" % j, "torchrun-%s" % j, "torchrun job %s" % j)
               for j in good]
    for column in zip(*derived):
        assert len(set(column)) == len(good)


@pytest.mark.parametrize("user,ok", [("torchrun", True), ("ml-jobs", True), ("root", False), ("Torchrun", False),
                                     ("torchrun\n", False), ("a b", False), ("nobody", False)])
def test_job_user_names(user, ok):
    messages = report({"torchrun_user": user})
    assert (messages == []) == ok, messages


@pytest.mark.parametrize("table,ok", [("torchrun", True), ("torchrun_b", True), ("filter; flush ruleset", False),
                                      ("Torchrun", False), ("t\n", False)])
def test_firewall_table_names(table, ok):
    messages = report({"firewall_table": table})
    assert (messages == []) == ok, messages


# ---- per-host consistency -----------------------------------------------------------------------
def test_a_cluster_wide_setting_that_differs_names_each_node_and_value():
    hosts = dict(HOSTS, node3="198.18.0.13")
    made, found = cluster(host_vars={"node2": {"torchrun_master_port": 29501}, "node3": {"torchrun_master_port": 29502}},
                          hosts=hosts)
    messages = [p.message for p in found + checks.validate(made)]
    assert any(m.startswith("node2: torchrun_master_port=29501 differs from torchrun_master_port=29500 on node1") for m in messages)
    assert any(m.startswith("node3: torchrun_master_port=29502 differs") for m in messages)


def test_a_secret_that_differs_is_named_without_its_value():
    messages = report(host_vars={"node1": {"torchrun_secret_env": {"TOKEN": "s3cret-one"}},
                                 "node2": {"torchrun_secret_env": {"TOKEN": "s3cret-two"}}})
    assert any("node2: torchrun_secret_env differs from node1's (values not shown)" in m for m in messages), messages
    assert not any("s3cret" in m for m in messages)


def test_a_secret_of_the_wrong_type_is_not_shown():
    messages = report({"torchrun_secret_env": "TOKEN=s3cret"})
    assert messages and not any("s3cret" in m for m in messages), messages


def test_per_host_settings_may_differ():
    assert report(host_vars={"node2": {"firewall_ssh_ports": [22, 2222], "nvidia_driver_branch": "555"}}) == []


# ---- accounts and tables that are not ours --------------------------------------------------------
def test_the_login_user_is_refused_before_any_node_is_read():
    made, found = cluster({"torchrun_user": "admin", "ansible_user": "admin"})
    assert "node1: torchrun_user=admin is the account Ansible logs in with (ansible_user)" in \
        " ".join(p.message for p in checks.validate(made))


def test_an_account_the_collection_made_is_reused():
    ours = {"account": {"name": "torchrun", "exists": True, "uid": 998, "home": "/var/lib/torchrun", "ours": True, "group_exists": True}}
    assert report(facts={"node1": ours, "node2": ours}) == []


def test_the_collection_own_table_is_reused():
    facts = {"nft_tables": ["inet torchrun", "inet filter"], "nft_own_tables": ["torchrun"]}
    assert report(facts={"node1": facts, "node2": facts}) == []


# ---- addresses ----------------------------------------------------------------------------------------
def test_ipv6_cluster_addresses_are_refused_until_the_rules_cover_them():
    made, found = cluster(host_vars={"node1": {"torchrun_address": "fd00::11"}, "node2": {"torchrun_address": "FD00:0::12"}})
    messages = [p.message for p in found + checks.validate(made)]
    assert any(m.startswith("node1: torchrun_address=fd00::11 is an IPv6 address") for m in messages), messages
    assert any(m.startswith("node2: torchrun_address=fd00::12 is an IPv6 address") for m in messages), messages


@pytest.mark.parametrize("zone,ok", [("", True), ("trusted-cluster", True), ("public; drop", False), ("z" * 18, False)])
def test_firewalld_zone_names(zone, ok):
    messages = report({"firewall_firewalld_zone": zone})
    assert (messages == []) == ok, messages


def test_a_template_that_fails_is_named_and_a_secret_one_hides_its_text():
    messages = report({"pytorch_index_url": "{{ no_such_variable }}/simple",
                       "torchrun_secret_env": "{{ {'TOKEN': 's3cret'} | no_such_filter }}"})
    assert any(m.startswith("node1: pytorch_index_url could not be evaluated: ") for m in messages), messages
    assert "node1: torchrun_secret_env could not be evaluated: (details hidden: a secret)" in messages, messages
    assert not any("s3cret" in m for m in messages)


def test_a_default_that_refers_to_another_setting_follows_the_users_value():
    # torchrun_user defaults to torchrun-<job>; the check port, unset, to the first port of the range given.
    made, found = cluster({"torchrun_collective_port_range": [54000, 55999], "torchrun_job": "eval"})
    assert found + checks.validate(made) == []
    assert made.values["node1"]["torchrun_user"] == "torchrun-eval"
    model = ports.model(made.values["node2"])
    assert model["probe"] == 54000 and model["span"] == "54000-55999"


def test_a_play_that_leaves_out_nodes_of_the_group_is_named():
    made, _ = cluster()
    assert checks.whole_group(made, ["node1", "node2"]) == []
    found = checks.whole_group(made, ["node1"])
    assert [p.message for p in found] == [
        "node1: this play leaves out node2 of group trainers (--limit or a narrower host pattern); a job runs on every node of the "
        "group at once, and part of it started, stopped or changed leaves the others waiting their whole join timeout or hanging "
        "on their peers: run without --limit, or take it out of group trainers"]
    assert "leaves out node1, node2 of group" in checks.whole_group(made, [])[0].message


def test_a_play_that_may_mean_part_of_the_group_says_so_with_job_partial():
    # setup and stop name job_partial; launch and the health check never run on part of the group.
    made, _ = cluster()
    found = checks.whole_group(made, ["node1"], "job_partial")
    assert len(found) == 1 and found[0].message.endswith("say so with -e job_partial=true")
    made, _ = cluster({"job_partial": "true"})  # -e gives a string; the types area converts it, as the action runs it first
    assert checks.validate(made) == []
    assert checks.whole_group(made, ["node1"], "job_partial") == []
    assert len(checks.whole_group(made, ["node1"])) == 1


def test_a_projects_script_must_be_a_file_inside_it(tmp_path):
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "train.py").write_text("")
    for script, refused in (("trainer/train.py", False), ("train.py", True), ("../outside.py", True), ("/abs/train.py", True)):
        made, found = cluster({"torchrun_project_dir": str(tmp_path), "torchrun_script": script})
        messages = [p.message for p in found + checks.validate(made)]
        assert any("is not a file inside torchrun_project_dir" in m for m in messages) == refused, (script, messages)
    made, found = cluster({"torchrun_project_dir": str(tmp_path), "torchrun_module": "trainer.train", "torchrun_script": "none.py"})
    assert found + checks.validate(made) == []  # a module needs no script
    made, found = cluster({"torchrun_project_dir": str(tmp_path), "torchrun_script_on_node": True})
    assert any("torchrun_script_on_node=true and torchrun_project_dir" in p.message for p in found + checks.validate(made))


def test_a_projects_requirements_file_is_checked_before_any_node_is_changed(tmp_path):
    (tmp_path / "train.py").write_text("")
    project = {"torchrun_project_dir": str(tmp_path), "torchrun_script": "train.py"}

    def messages(**extra):
        made, found = cluster(dict(project, **extra))
        return [p.message for p in found + checks.validate(made)]

    assert messages() == []  # no requirements.txt: nothing to install
    assert messages(torchrun_project_requirements="reqs/train.txt") == [
        "controller: torchrun_project_requirements=reqs/train.txt is not a file inside torchrun_project_dir=%s; give the project's "
        "requirements file relative to it, or an empty value to install none" % tmp_path]
    assert "must be a path inside torchrun_project_dir" in messages(torchrun_project_requirements="../requirements.txt")[0]
    assert "must be a path inside torchrun_project_dir" in messages(torchrun_project_requirements="/etc/requirements.txt")[0]
    (tmp_path / "requirements.txt").write_text("tabulate==0.9.0\n--index-url https://example.invalid/simple\n-e ./lib\n")
    assert messages() == [
        "controller: torchrun_project_requirements=%s/requirements.txt: line 2 (--index-url https://example.invalid/simple) sets a "
        "package source of its own; the nodes install from the site's sources (pytorch_index_url, pytorch_extra_index_urls, "
        "pytorch_find_links): remove the line" % tmp_path,
        "controller: torchrun_project_requirements=%s/requirements.txt: line 3 (-e ./lib) is an editable install from a folder or "
        "repository; put the code in the project (it is on the job's PYTHONPATH) or name a released package" % tmp_path]
    assert messages(torchrun_project_requirements="") == []  # none installed
    (tmp_path / "requirements.txt").write_bytes(b"\xff\xfe")
    assert "cannot be read" in messages()[0]


def test_a_fixed_uid_is_free_on_every_node_or_already_the_job_users():
    def messages(extra, facts=None):
        made, found = cluster(extra, facts=facts)
        return [p.message for p in found + checks.validate(made)]

    for bad in (-1, 65534, 2 ** 32):
        assert messages({"torchrun_uid": bad}) == [
            "node1: torchrun_uid=%d must be 0 (each node picks) or a uid from 1 to 4294967294, not 65534 (nobody)" % bad]
    assert messages({"torchrun_uid": "2000"}, facts={}) == []  # -e torchrun_uid=2000 is a string: converted
    ours = {"name": "torchrun-train", "exists": True, "uid": 2000, "gid": 2000, "home": "/var/lib/torchrun/train", "ours": True,
            "group_exists": True, "uid_holder": "", "gid_holder": ""}
    assert messages({"torchrun_uid": 2000}, facts={"node1": {"account": ours}, "node2": {"account": ours}}) == []
    taken = dict(HEALTHY_NODE["account"], uid_holder="backup", gid_holder="")
    assert messages({"torchrun_uid": 34}, facts={"node2": {"account": taken}}) == [
        "node2: torchrun_uid=34 is already the uid of account backup on this node; choose a number free on every node "
        "(getent passwd 34; getent group 34)"]
    renumbered = dict(ours, uid=998, gid=998)
    assert messages({"torchrun_uid": 2000}, facts={"node1": {"account": renumbered}, "node2": {"account": ours}}) == [
        "node1: torchrun_uid=2000, but an earlier setup created torchrun-train here with uid 998 and gid 998; the collection does "
        "not renumber an account: set torchrun_uid=998, or stop the job and remove the account and its group (userdel "
        "torchrun-train) first"]
    assert messages({"torchrun_uid": 0}, facts={"node1": {"account": renumbered}, "node2": {"account": ours}}) == []


def test_a_site_environment_the_unit_cannot_see_is_refused():
    made, found = cluster({"torchrun_venv": "/home/ml/conda/envs/train", "pytorch_venv_external": True})
    assert [p.message for p in found + checks.validate(made)] == [
        "node1: torchrun_venv=/home/ml/conda/envs/train lies under /home, which the job's hardened unit cannot see (ProtectHome, "
        "PrivateTmp); put it under /opt or /srv"]
    made, found = cluster({"torchrun_venv": "/opt/conda/envs/train", "pytorch_venv_external": True})
    assert found + checks.validate(made) == []


@pytest.mark.parametrize(("name", "good"), [
    ("node1", True), ("gpu-01.lab.example.org", True), ("198.18.0.11", True), ("node_1", True), ("A1", True),
    ("node1\nLD_PRELOAD=/tmp/x.so", False),  # a second line in the env file, an accept rule in the nft file
    ("node1 ", False), ("node1;touch /tmp/x", False), ("-node1", False), ("a..b", False), ("node1.", False),
    ("node1/../etc", False), ("n\u00f6de", False), ("x" * 254, False), ("a" * 64 + ".b", False), ("a" * 63 + ".b", True),
])
def test_inventory_names_follow_the_host_name_grammar_before_anything_reads_them(name, good):
    made, found = cluster(hosts={name: "198.18.0.11", "node2": "198.18.0.12"})
    problems = [p for p in found + checks.validate(made) if p.var == "inventory name"]
    if good:
        assert problems == []
    else:
        assert [p.host for p in problems] == [name]
        assert problems[0].message.startswith("%s: the inventory name %s must be a host name" % (checks.shown(name), checks.shown(name)))
        assert "\n" not in problems[0].message.replace(name, "")


@pytest.mark.parametrize(("group", "good"), [("trainers", True), ("gpu_nodes", True), ("_x", True), ("trainers:!node2", False),
                                             ("all,node3", False), ("gpus-a", False), ("1st", False)])
def test_the_group_name_is_an_inventory_group_name(group, good):
    made = checks.Cluster(group=group, hosts=[], values={})
    problems = checks.validate(made)
    assert (problems[0].var, problems[0].host) == ("torchrun_group", "inventory")
    assert ("must be an inventory group name" in problems[0].message) != good


SITE_LISTENERS = [
    {"port": 22, "address": "0.0.0.0", "process": "sshd", "exe": "/usr/sbin/sshd", "uid": 0},
    {"port": 9100, "address": "0.0.0.0", "process": "node_exporter"},
    {"port": 8888, "address": "127.0.0.1", "process": "jupyter-lab"},  # loopback only: strict mode leaves it alone
    {"port": 6006, "address": "::", "process": "tensorboard"},
    {"port": 29500, "address": "::", "process": "torchrun", "unit": "torchrun-train.service"},  # the job's own
    {"port": 52017, "address": "0.0.0.0", "process": "python3"},        # the collective range: the jobs' peers keep it
]


@pytest.mark.parametrize(("extra", "named"), [
    ({}, None),                                                          # jobs mode: every site service stays as it was
    ({"firewall_mode": "strict"}, "tensorboard (6006), node_exporter (9100)"),
    ({"firewall_mode": "strict", "firewall_allow": [{"port": 9100, "from": ["198.18.0.250"]}]}, "tensorboard (6006)"),
    ({"firewall_mode": "strict", "firewall_allow": [{"port": "6000-9999", "from": ["198.18.0.0/24", "fd00::/8"]}]}, None),
])
def test_the_strict_firewall_names_the_listening_services_it_cuts_off(extra, named):
    made, found = cluster(extra, facts={"node1": {"listeners": SITE_LISTENERS}})
    assert found + checks.validate(made) == []
    said = checks.notes(made)
    if named is None:
        assert said == []
    else:
        assert said == ["WARNING node1: firewall_mode=strict drops every port but SSH, the ports of the jobs and firewall_allow, which cuts "
                        "%s off from other hosts: add what must stay reachable to firewall_allow (port and sources), or leave "
                        "firewall_mode=jobs" % named]


def test_a_range_the_nodes_connections_half_fill_is_said():
    made, found = cluster(facts={"node1": {"ephemeral": {"range": [32768, 60999], "total": 1200, "busiest_peer": "10.0.0.5:443",
                                                         "busiest": 300}}})
    assert found + checks.validate(made) == []
    assert checks.notes(made) == ["WARNING node1: 1200 TCP connections hold ephemeral ports now, half or more of the 2000 ports of "
                                  "torchrun_collective_port_range 52000-53999, which becomes the whole ephemeral range of the node: size the "
                                  "range for the other programs of the node too"]



@pytest.mark.parametrize(("extra", "message"), [
    ({"launcher_wait": "false"}, "node1: launcher_wait is not a setting of the collection and would be ignored; it was renamed: use job_wait"),
    ({"job_wiat": True}, "node1: job_wiat is not a setting of the collection and would be ignored; did you mean job_wait?"),
    ({"torchrun_master_prot": 29501}, "did you mean torchrun_master_port?"),
    ({"healthcheck_port": 52001}, "healthcheck_port is not a setting of the collection and would be ignored; it was removed: the health "
                                  "check uses the job's master port (torchrun_master_port) since 0.2.0; remove it"),
    ({"firewall_zzz": 1}, "node1: firewall_zzz is not a setting of the collection and would be ignored; see the roles' READMEs"),
])
def test_a_mistyped_or_renamed_setting_is_refused_with_its_name(extra, message):
    made, found = cluster(extra)
    problems = [p.message for p in found + checks.validate(made)]
    assert [m for m in problems if message in m] and len(problems) == 1, problems


def test_an_unknown_setting_of_one_host_is_named_on_that_host_and_the_others_are_left_alone():
    made, found = cluster(host_vars={"node2": {"pytorch_torch_verison": "2.13.0"}})
    assert [p.message for p in found + checks.validate(made)] == [
        "node2: pytorch_torch_verison is not a setting of the collection and would be ignored; did you mean pytorch_torch_version?"]
    made, found = cluster({"gpu_check_note": "x", "mytool_setting": 1, "connectivity_matrix": {}})  # not ours, or a result
    assert found + checks.validate(made) == []


def test_the_prefixes_are_the_roles_and_every_result_they_set_is_known():
    roles = sorted(p.name for p in ROLES.iterdir() if (p / "meta" / "argument_specs.yml").is_file())
    assert sorted(checks.PREFIXES) == sorted(["torchrun_"] + [name + "_" for name in roles if name != "torchrun"])
    facts = set()
    for tasks in ROLES.glob("*/tasks/*.yml"):
        for task in yaml.safe_load(tasks.read_text()) or []:
            for name in (task.get("ansible.builtin.set_fact") or {}) if isinstance(task, dict) else {}:
                if name.startswith(checks.PREFIXES):
                    facts.add(name)
    assert facts and facts <= checks.NOT_SETTINGS, facts - checks.NOT_SETTINGS


def test_the_report_folder_is_a_writable_folder_on_the_controller(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))  # what the shell that runs ansible-playbook says
    made, found = cluster()
    assert made.cluster("torchrun_report_dir") == str(tmp_path)  # the current folder by default
    assert found + checks.validate(made) == []
    made, found = cluster({"torchrun_report_dir": str(tmp_path / "missing")})
    assert [p.message for p in found + checks.validate(made)] == [
        "controller: torchrun_report_dir=%s/missing is not a folder the controller can write to (missing); create it or give "
        "another (in an execution environment, a mounted one)" % tmp_path]
    made, found = cluster({"torchrun_report_dir": "reports"})
    assert [p.var for p in found + checks.validate(made)] == ["torchrun_report_dir"]
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "closed").mkdir(mode=0o555)
        made, found = cluster({"torchrun_report_dir": str(tmp_path / "closed")})
        assert "(not writable)" in (found + checks.validate(made))[0].message


def test_every_setting_is_read_once_per_play_and_again_in_the_next(tmp_path):
    # setup.yml checks the group itself, then the validate role runs as every role's dependency: the
    # second check of every setting in the same play is not read again; a new play reads them.
    import json
    import subprocess
    import sys
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"trainers": {"vars": {"nvidia_driver_source": "distro"}, "hosts": {
        "node1": {"ansible_connection": "local", "ansible_host": "198.18.0.11"},
        "node2": {"ansible_connection": "local", "ansible_host": "198.18.0.12"}}}}}}))
    check = {"onprem.torchrun.validate": {"group": "trainers"}, "run_once": True}
    plays = [
        {"name": "One play", "hosts": "trainers", "gather_facts": False, "tasks": [
            dict(check, name="First", register="first", **{"onprem.torchrun.validate": {"group": "trainers", "whole_group": True}}),
            dict(check, name="Again", register="again"),
            {"name": "Keep", "run_once": True, "ansible.builtin.set_fact": {"kept": {
                "first": "{{ first.validated_before | default(false) }}", "again": "{{ again.validated_before | default(false) }}",
                "addresses": "{{ again.addresses }}"}}}]},
        {"name": "Another play", "hosts": "trainers", "gather_facts": False, "tasks": [
            dict(check, name="Next", register="next"),
            {"name": "Hand over", "delegate_to": "localhost", "run_once": True, "ansible.builtin.copy": {
                "content": "{{ kept | combine({'next': next.validated_before | default(false)}) | to_json }}",
                "dest": str(tmp_path / "out.json"), "mode": "0600"}}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays))
    root = ROLES.parent
    env = dict(os.environ, ANSIBLE_CONFIG=str(root / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(tmp_path / "play.yml"), "-i", str(tmp_path / "hosts.yml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert json.loads((tmp_path / "out.json").read_text()) == {"first": False, "again": True, "addresses": ["198.18.0.11", "198.18.0.12"],
                                                               "next": False}
