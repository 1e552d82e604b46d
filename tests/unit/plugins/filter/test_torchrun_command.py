"""The torchrun_command filter: the one definition of how torchrun runs on a node."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.torchrun_command import FilterModule, torchrun_command

NODE = {"venv": "/opt/torchrun/venv", "nproc_per_node": "2", "nnodes": "2", "node_rank": 1, "master_addr": "10.0.0.1",
        "master_port": 29500, "local_addr": "10.0.0.2", "interface": "eth1", "max_restarts": 0, "join_timeout": 120}


def test_static_gives_the_rank_the_master_and_the_store_timeout():
    out = torchrun_command(NODE)
    assert out["argv"] == ["/opt/torchrun/venv/bin/torchrun", "--nproc-per-node=2", "--rdzv-backend=static", "--nnodes=2",
                           "--node-rank=1", "--master-addr=10.0.0.1", "--master-port=29500", "--rdzv-conf=timeout=120",
                           "--local-addr=10.0.0.2", "--max-restarts=0"]


def test_c10d_gives_the_endpoint_and_its_timeouts_and_is_host_on_the_endpoint_only():
    node = dict(NODE, backend="c10d", nnodes="1:4", max_restarts=3, last_call_timeout=5, close_timeout=6, read_timeout=7)
    out = torchrun_command(node)
    assert out["argv"][2:6] == ["--rdzv-backend=c10d", "--nnodes=1:4", "--rdzv-endpoint=10.0.0.1:29500",
                                "--rdzv-conf=join_timeout=120,last_call_timeout=5,close_timeout=6,read_timeout=7"]
    assert "--node-rank=1" not in out["argv"] and out["argv"][-1] == "--max-restarts=3"
    assert torchrun_command(dict(node, is_host=True))["argv"][5].endswith(",is_host=1")


def test_an_ipv6_endpoint_is_bracketed():
    out = torchrun_command(dict(NODE, backend="c10d", master_addr="fd00::11"))
    assert "--rdzv-endpoint=[fd00::11]:29500" in out["argv"]


def test_the_workers_environment_names_the_interface_exactly_and_unsets_the_rank_variables():
    out = torchrun_command(NODE)
    assert out["env"] == {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "eth1", "NCCL_SOCKET_IFNAME": "=eth1"}
    assert out["assignments"] == ["GLOO_SOCKET_IFNAME=eth1", "NCCL_SOCKET_IFNAME==eth1", "OMP_NUM_THREADS=1", "PYTHONUNBUFFERED=1"]
    assert {"RANK", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE"} <= set(out["unset"])


@pytest.mark.parametrize(("change", "message"), [
    ({"interface": ""}, "missing interface"),
    ({"node_rank": None}, "missing node_rank"),
    ({"backend": "etcd"}, "backend 'etcd' is neither static, c10d nor standalone"),
])
def test_incomplete_or_unknown_settings_are_refused(change, message):
    with pytest.raises(AnsibleFilterError, match=message):
        torchrun_command(dict(NODE, **change))


def test_registered():
    assert FilterModule().filters()["torchrun_command"] is torchrun_command


def test_standalone_runs_one_host_with_the_jobs_environment():
    # gpu_check.yml: NCCL on every GPU of one host, with the job's interface variables when given.
    one = torchrun_command({"venv": "/opt/torchrun/venv/", "nproc_per_node": "8", "backend": "standalone", "interface": "ib0"})
    assert one["argv"] == ["/opt/torchrun/venv/bin/torchrun", "--nproc-per-node=8", "--standalone", "--max-restarts=0"]
    assert "NCCL_SOCKET_IFNAME==ib0" in one["assignments"] and "GLOO_SOCKET_IFNAME=ib0" in one["assignments"]
    assert "MASTER_ADDR" in one["unset"]
    bare = torchrun_command({"venv": "/v", "nproc_per_node": "gpu", "backend": "standalone"})
    assert bare["env"] == {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def test_rank_lines_tee_the_workers_with_their_global_rank_quoted_for_the_env_file():
    out = torchrun_command(dict(NODE, rank_lines=True))
    assert "--tee=3" in out["argv"]
    assert out["env"]["TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE"] == "[rank${rank}]: "
    # Single quotes: systemd reads the value literally (the brackets, the space and ${rank}, which
    # torchrun fills in per worker).
    assert "TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE='[rank${rank}]: '" in out["assignments"]
    assert "--tee=3" not in torchrun_command(NODE)["argv"] and "TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE" not in torchrun_command(NODE)["env"]


def test_a_value_an_environment_file_cannot_hold_is_refused():
    with pytest.raises(AnsibleFilterError, match="GLOO_SOCKET_IFNAME=\"it's\" cannot be written"):
        torchrun_command(dict(NODE, interface="it's"))
