"""The filters that turn inventory data and facts into the cluster's shape."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.cluster_addresses import cluster_addresses
from ansible_collections.onprem.torchrun.plugins.filter.cluster_interface import cluster_interface
from ansible_collections.onprem.torchrun.plugins.filter.probe_matrix import probe_matrix
from ansible_collections.onprem.torchrun.plugins.filter.probe_plan import probe_plan
from ansible_collections.onprem.torchrun.plugins.filter.systemd_exec_args import systemd_exec_args


@pytest.mark.parametrize(
    ("hostvars", "expected"),
    [
        ({"a": {"ansible_host": "10.0.0.1"}, "b": {"ansible_host": "10.0.0.2"}}, ["10.0.0.1", "10.0.0.2"]),
        ({"a": {"ansible_host": "mgmt-a", "torchrun_address": "10.1.0.1"}, "b": {"torchrun_address": "10.1.0.2"}}, ["10.1.0.1", "10.1.0.2"]),
        ({"a": {"torchrun_address": "", "ansible_host": "10.0.0.1"}, "b": {}}, None),
        ({"a": {}, "b": {}}, None),
    ],
)
def test_cluster_addresses(hostvars, expected):
    if expected is None:
        with pytest.raises(AnsibleFilterError, match=r"^(a|b): .* is not an IP address; set torchrun_address"):
            cluster_addresses(["a", "b"], hostvars)
    else:
        assert cluster_addresses(["a", "b"], hostvars) == expected


def test_cluster_addresses_names_host_and_variable():
    with pytest.raises(AnsibleFilterError) as err:
        cluster_addresses(["n1", "n2"], {"n1": {"ansible_host": "10.0.0.1"}, "n2": {"torchrun_address": "gpu-2.lab"}})
    assert str(err.value).startswith("n2: torchrun_address='gpu-2.lab' is not an IP address")


@pytest.mark.parametrize(("value", "why"), [
    ("127.0.0.1", "a loopback address"), ("127.0.1.1", "a loopback address"), ("::1", "a loopback address"),
    ("0.0.0.0", "the any-address"), ("::", "the any-address"), ("224.0.0.1", "a multicast address"),
    ("169.254.3.4", "a link-local address"),
])
def test_cluster_addresses_refuse_unreachable_addresses(value, why):
    with pytest.raises(AnsibleFilterError) as err:
        cluster_addresses(["n1", "n2"], {"n1": {"ansible_host": "10.0.0.1"}, "n2": {"ansible_host": value}})
    assert str(err.value).startswith("n2: ansible_host=%s is %s, which the other nodes cannot reach" % (value, why))


FACTS = {
    "hostname": "node1",
    "interfaces": ["lo", "docker0", "eth0", "ib0"],
    "lo": {"device": "lo", "ipv4": {"address": "127.0.0.1"}},
    "docker0": {"device": "docker0", "ipv4": {"address": "172.17.0.1"}},
    "eth0": {"device": "eth0", "ipv4": {"address": "192.0.2.5"}, "ipv4_secondaries": [{"address": "10.10.10.16"}]},
    "ib0": {"device": "ib0", "ipv6": [{"address": "fe80::1%ib0"}, {"address": "2001:db8::16"}]},
}


@pytest.mark.parametrize(("address", "iface"), [("192.0.2.5", "eth0"), ("10.10.10.16", "eth0"), ("2001:db8::16", "ib0")])
def test_cluster_interface_finds_the_carrier(address, iface):
    assert cluster_interface(FACTS, address) == iface


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.1.1", "127.0.1.1 is a loopback address, not a cluster address"),
        ("10.9.9.9", "no interface of node1 carries 10.9.9.9 (interfaces: docker0, eth0, ib0, lo)"),
        ("node1", "'node1' is not an IP address"),
        ("172.17.0.1", "172.17.0.1 is on docker0, a container or virtual interface, not the cluster network"),
    ],
)
def test_cluster_interface_refuses(address, message):
    with pytest.raises(AnsibleFilterError, match="^cluster_interface: " + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        cluster_interface(FACTS, address)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["/opt/v/bin/torchrun", "--nnodes=2", "train.py"], '"/opt/v/bin/torchrun" "--nnodes=2" "train.py"'),
        (["a b", 'say "hi"', "back\\slash"], '"a b" "say \\"hi\\"" "back\\\\slash"'),
        (["--lr=5%", "$HOME", "${X}"], '"--lr=5%%" "$$HOME" "$${X}"'),
        ([], ""),
    ],
)
def test_systemd_exec_args(args, line):
    assert systemd_exec_args(args) == line


@pytest.mark.parametrize("bad", ["one string", ["line\nbreak"], ["nul\0"]])
def test_systemd_exec_args_refuses(bad):
    with pytest.raises(AnsibleFilterError, match="^systemd_exec_args: "):
        systemd_exec_args(bad)


HOSTS = ["n1", "n2", "n3"]
ADDRS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_probe_plan_for_a_worker_node():
    assert probe_plan("n2", HOSTS, ADDRS, 29500, 52000) == [
        {"name": "n1", "host": "10.0.0.1", "port": 29500},
        {"name": "n1", "host": "10.0.0.1", "port": 52000},
        {"name": "n3", "host": "10.0.0.3", "port": 52000},
    ]


def test_probe_plan_for_the_master_skips_itself():
    assert probe_plan("n1", HOSTS, ADDRS, 29500, 52000) == [
        {"name": "n2", "host": "10.0.0.2", "port": 52000},
        {"name": "n3", "host": "10.0.0.3", "port": 52000},
    ]


def test_probe_plan_refuses_mismatched_lists():
    with pytest.raises(AnsibleFilterError, match="3 host"):
        probe_plan("n1", HOSTS, ADDRS[:2], 29500, 52000)


def test_probe_matrix_names_pair_port_and_reason():
    hostvars = {
        "n1": {"probe": {"results": [{"name": "n2", "host": "10.0.0.2", "port": 52000, "ok": True, "reason": "connected"},
                                     {"name": "n3", "host": "10.0.0.3", "port": 52000, "ok": True, "reason": "connected"}]}},
        "n2": {"probe": {"results": [
            {"name": "n1", "host": "10.0.0.1", "port": 29500, "ok": False, "reason": "timed out"},
            {"name": "n1", "host": "10.0.0.1", "port": 52000, "ok": False, "reason": "refused"},
            {"name": "n3", "host": "10.0.0.3", "port": 52000, "ok": True, "reason": "connected"},
        ]}},
        "n3": {},
    }
    matrix = probe_matrix(["n1", "n2", "n3"], hostvars, "probe")
    assert matrix["failures"] == ["n2 -> n1 10.0.0.1:29500 timed out", "n2 -> n1 10.0.0.1:52000 refused"]
    assert matrix["cells"]["n2"] == {"n1": "29500 timed out, 52000 refused", "n2": "-", "n3": "ok"}
    assert matrix["cells"]["n3"] == {"n1": "?", "n2": "?", "n3": "-"}
    assert matrix["table"] == [
        "from \\ to  n1                              n2  n3",
        "n1         -                               ok  ok",
        "n2         29500 timed out, 52000 refused  -   ok",
        "n3         ?                               ?   -",
    ]


def test_probe_matrix_all_ok_has_no_failures():
    results = {"n1": {"p": {"results": [{"name": "n2", "host": "a", "port": 1, "ok": True, "reason": "connected"}]}},
               "n2": {"p": {"results": [{"name": "n1", "host": "b", "port": 1, "ok": True, "reason": "connected"}]}}}
    matrix = probe_matrix(["n1", "n2"], results, "p")
    assert matrix["failures"] == [] and matrix["cells"] == {"n1": {"n1": "-", "n2": "ok"}, "n2": {"n1": "ok", "n2": "-"}}


def test_cluster_addresses_refuse_ipv6_like_the_validator():
    with pytest.raises(AnsibleFilterError) as err:
        cluster_addresses(["n1"], {"n1": {"torchrun_address": "fd00::11"}})
    assert str(err.value).startswith("n1: torchrun_address=fd00::11 is an IPv6 address")


def probes(nodes, down=(), cut=()):
    """What every node's probe reads in a group where nodes ``down`` answer nothing and the links ``cut`` drop."""
    found = {}
    for source in nodes:
        results = []
        for target in nodes:
            if target == source:
                continue
            bad = source in down or target in down or (source, target) in cut or (target, source) in cut
            results.append({"name": target, "host": "10.0.%d.%d" % (nodes.index(target) // 250, nodes.index(target) % 250), "port": 52000,
                            "ok": not bad, "reason": "timed out" if bad else "connected"})
        found[source] = {"probe": {"results": results}}
    return found


def test_probe_matrix_at_scale_sums_up_and_names_the_node_every_failure_involves():
    nodes = ["n%d" % i for i in range(1, 201)]
    matrix = probe_matrix(nodes, probes(nodes, down={"n77"}), "probe", shown=5)
    assert matrix["checked"] == 200 * 199 and len(matrix["failures"]) == 2 * 199
    assert matrix["culprits"] == ["n77"]
    assert matrix["summary"][:2] == [
        "connectivity: 398 of 39800 connection(s) failed",
        "n77: every failed connection is to it (199) or from it (199); look at n77 first (down, its firewall, its address)"]
    assert len(matrix["summary"]) == 2 + 5 + 1 and matrix["summary"][-1] == "... and 393 more"
    link = probe_matrix(nodes, probes(nodes, cut={("n3", "n9")}), "probe")
    assert link["culprits"] == [] and link["summary"][1] == (
        "every failed connection is between n3 and n9: the link between them, or either one's firewall")
    scattered = probe_matrix(nodes, probes(nodes, cut={("n3", "n9"), ("n4", "n10")}), "probe")
    assert scattered["culprits"] == [] and len(scattered["summary"]) == 1 + 4
    assert probe_matrix(nodes[:3], probes(nodes[:3]), "probe")["summary"] == []
