"""The fabric reader on sysfs trees laid out as the kernel's /sys/class/infiniband is (an
InfiniBand node, a RoCE node, a node without RDMA) and the NCCL plan made of what it read."""

import pytest

from ansible_collections.onprem.torchrun.plugins.module_utils import fabric

LINK_LOCAL = "fe80:0000:0000:0000:0e42:a1ff:fe3c:5d10"


def port(root, device, number, state="4: ACTIVE", rate="200 Gb/sec (4X HDR)", layer="InfiniBand", gids=()):
    folder = root / "class" / device / "ports" / str(number)
    (folder / "gids").mkdir(parents=True)
    (folder / "gid_attrs" / "types").mkdir(parents=True)
    (folder / "gid_attrs" / "ndevs").mkdir(parents=True)
    for name, text in (("state", state), ("phys_state", "5: LinkUp" if "ACTIVE" in state else "3: Disabled"),
                       ("rate", rate), ("link_layer", layer)):
        (folder / name).write_text(text + "\n")
    for index, (gid, kind, ndev) in enumerate(gids):
        (folder / "gids" / str(index)).write_text(gid + "\n")
        if kind:  # the kernel refuses to read the type of an unset GID (EINVAL): no file here
            (folder / "gid_attrs" / "types" / str(index)).write_text(kind + "\n")
            (folder / "gid_attrs" / "ndevs" / str(index)).write_text(ndev + "\n")


def node(tmp_path, devices, char_devices=("uverbs0", "uverbs1", "rdma_cm")):
    for device, ports in devices.items():
        (tmp_path / "class" / device / "device" / "net").mkdir(parents=True)
        for number, options in ports.items():
            port(tmp_path, device, number, **options)
    (tmp_path / "dev").mkdir()
    for name in char_devices:
        (tmp_path / "dev" / name).write_text("")
    return fabric.read(str(tmp_path / "class"), str(tmp_path / "dev"))


def roce_gids(address_hex, ndev):
    mapped = "0000:0000:0000:0000:0000:ffff:" + address_hex
    return [(LINK_LOCAL, "IB/RoCE v1", ndev), (LINK_LOCAL, "RoCE v2", ndev), (mapped, "IB/RoCE v1", ndev), (mapped, "RoCE v2", ndev),
            ("0000:0000:0000:0000:0000:0000:0000:0000", "", "")]


def test_an_infiniband_node(tmp_path):
    found = node(tmp_path, {"mlx5_0": {1: {}}, "mlx5_1": {1: {}}, "mlx5_2": {1: {"state": "1: DOWN"}}})
    assert [d["name"] for d in found["devices"]] == ["mlx5_0", "mlx5_1", "mlx5_2"]
    assert found["devices"][0]["ports"][0] == {"port": 1, "state": "ACTIVE", "phys_state": "LinkUp", "rate": "200 Gb/sec (4X HDR)",
                                               "link_layer": "InfiniBand", "roce_v2": []}
    plan = fabric.nccl_plan(found)
    assert plan["rdma"] and plan["problems"] == []
    assert plan["env"] == {"NCCL_IB_HCA": "=mlx5_0:1,mlx5_1:1"}  # the DOWN port is left out
    assert plan["char_devices"] == [str(tmp_path / "dev" / n) for n in ("rdma_cm", "uverbs0", "uverbs1")]
    # What a hardened process (DevicePolicy=closed) needs to use them: the job's unit, the health check, gpu-check.
    assert plan["unit_settings"] == ["LimitMEMLOCK=infinity"] + ["DeviceAllow=%s rw" % (tmp_path / "dev" / n)
                                                                  for n in ("rdma_cm", "uverbs0", "uverbs1")]
    assert (plan["link_layer"], plan["rate"]) == ("InfiniBand", "200 Gb/sec (4X HDR)")


def test_a_roce_node_gets_the_index_of_its_ipv4_roce_v2_gid(tmp_path):
    found = node(tmp_path, {"mlx5_0": {1: {"layer": "Ethernet", "rate": "100 Gb/sec (4X EDR)", "gids": roce_gids("c0a8:3207", "enp65s0f0")}}})
    assert found["devices"][0]["ports"][0]["roce_v2"] == [{"index": 3, "ipv4": "192.168.50.7", "ndev": "enp65s0f0"}]
    plan = fabric.nccl_plan(found, address="192.168.50.7")
    assert plan["env"] == {"NCCL_IB_HCA": "=mlx5_0:1", "NCCL_IB_GID_INDEX": "3"} and plan["problems"] == []


def test_roce_without_an_ipv4_gid_and_gids_at_different_indexes_are_named(tmp_path):
    found = node(tmp_path, {"mlx5_0": {1: {"layer": "Ethernet", "gids": [(LINK_LOCAL, "RoCE v2", "eth2")]}},
                            "mlx5_1": {1: {"layer": "Ethernet", "gids": roce_gids("0a00:0002", "eth3")}}})
    plan = fabric.nccl_plan(found)
    assert plan["problems"] == ["mlx5_0:1 is RoCE without an IPv4 RoCE v2 GID (give its interface an IPv4 address)"]
    assert plan["env"] == {"NCCL_IB_HCA": "=mlx5_0:1,mlx5_1:1", "NCCL_IB_GID_INDEX": "3"}
    found["devices"][0]["ports"][0]["roce_v2"] = [{"index": 1, "ipv4": "10.0.0.1", "ndev": "eth2"}]
    plan = fabric.nccl_plan(found)
    assert "NCCL_IB_GID_INDEX" not in plan["env"]
    assert plan["problems"] == ["the IPv4 RoCE v2 GIDs sit at different indexes (mlx5_0:1 1, mlx5_1:1 3); NCCL_IB_GID_INDEX is "
                                "one number for every port: set it in torchrun_env, or narrow torchrun_fabric_hcas"]


def test_a_node_without_rdma(tmp_path):
    found = fabric.read(str(tmp_path / "absent"), str(tmp_path / "absent-dev"))
    assert found == {"devices": [], "char_devices": []}
    assert fabric.nccl_plan(found) == {"rdma": False, "env": {}, "char_devices": [], "unit_settings": [], "ports": [], "link_layer": "",
                                       "rate": "", "problems": []}
    assert fabric.nccl_plan(found, "rdma")["problems"] == [
        "torchrun_fabric=rdma but the node has no ACTIVE RDMA port (/sys/class/infiniband is empty: no HCA or no driver)"]


def test_socket_disables_ib_even_where_ports_are_active(tmp_path):
    found = node(tmp_path, {"mlx5_0": {1: {}}})
    assert fabric.nccl_plan(found, "socket") == {"rdma": False, "env": {"NCCL_IB_DISABLE": "1"}, "char_devices": [], "unit_settings": [],
                                                 "ports": [], "link_layer": "", "rate": "", "problems": []}


def test_the_hca_list_narrows_by_exact_name(tmp_path):
    found = node(tmp_path, {"mlx5_1": {1: {}}, "mlx5_10": {1: {}}, "mlx5_11": {1: {}, 2: {}}})
    assert fabric.nccl_plan(found, hcas=["mlx5_1", "mlx5_11:2"])["env"]["NCCL_IB_HCA"] == "=mlx5_1:1,mlx5_11:2"
    missing = fabric.nccl_plan(found, "rdma", hcas=["mlx5_4"])
    assert missing["problems"][0].startswith("torchrun_fabric=rdma but the node has no ACTIVE RDMA port among torchrun_fabric_hcas=mlx5_4 (")


def test_mixed_link_layers_and_missing_devices_are_problems(tmp_path):
    found = node(tmp_path, {"mlx5_0": {1: {}}, "mlx5_1": {1: {"layer": "Ethernet", "gids": roce_gids("0a00:0002", "eth3")}}}, char_devices=())
    problems = fabric.nccl_plan(found)["problems"]
    assert problems == ["the RDMA ports mix link layers (mlx5_0:1 InfiniBand, mlx5_1:1 Ethernet); narrow torchrun_fabric_hcas to one kind",
                        "no /dev/infiniband devices (load ib_uverbs and rdma_ucm)"]


@pytest.mark.parametrize("change, problem", [
    ({"rate": "100 Gb/sec (4X EDR)"}, "port rate 100 Gb/sec (4X EDR) where the others have 200 Gb/sec (4X HDR)"),
    ({"ports": ["mlx5_0:1"]}, "number of RDMA ports 1 where the others have 2"),
    ({"rdma": False}, "no ACTIVE RDMA port where node1, node2 have them (NCCL would fall back to sockets for the whole job)"),
])
def test_the_odd_node_out_is_named(change, problem):
    good = {"rdma": True, "ports": ["mlx5_0:1", "mlx5_1:1"], "link_layer": "InfiniBand", "rate": "200 Gb/sec (4X HDR)"}
    plans = {"node1": dict(good), "node2": dict(good), "node3": dict(good, **change)}
    assert fabric.cluster_problems(plans) == {"node3": problem}
    assert fabric.cluster_problems({"node1": dict(good, rdma=False)}) == {}
