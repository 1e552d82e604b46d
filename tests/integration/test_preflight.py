"""Bad settings are refused by preflight with a message naming host and variable, before any node changes.

Runs playbooks/setup.yml against a fresh 2-node sandbox for each case and compares a fingerprint
of every node (files under /etc, /opt, /var/lib; installed packages; firewall rules; units)
before and after. Needs root (`make integration`).
"""

import json
import os
import subprocess
import sys

import pytest
import sandbox
from conftest import run_playbook

NODES = ["node1", "node2"]
FINGERPRINT = (
    "find /etc /opt /var/lib -xdev \\( -path /var/lib/systemd -o -path /var/lib/apt/lists \\) -prune "
    "-o -printf '%p %s %m %u %T@\\n' | sort | sha256sum; sha256sum /var/lib/dpkg/status; "
    "nft -s list ruleset 2>/dev/null | sha256sum; systemctl list-unit-files --no-legend 'torchrun*' | sha256sum"
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")

# (extra vars, message the run must print). Each message names the host (or "inventory"/
# "controller") and the variable.
CASES = {
    "missing group": ({"torchrun_group": "gpus"}, "inventory: group 'gpus' (torchrun_group) is missing or empty"),
    "zero processes": ({"torchrun_nproc_per_node": 0}, 'node2: torchrun_nproc_per_node=0 must be a positive integer or "gpu"'),
    "word processes": ({"torchrun_nproc_per_node": "two"}, 'node1: torchrun_nproc_per_node=two must be a positive integer or "gpu"'),
    "port too high": ({"torchrun_master_port": 70000}, "node1: torchrun_master_port=70000 must be a port from 1024 to 65535"),
    "port in range": ({"torchrun_master_port": 52500}, "node1: torchrun_master_port=52500 lies inside torchrun_collective_port_range [52000, 53999]"),
    "range reversed": ({"torchrun_collective_port_range": [60000, 50000]},
                       "node1: torchrun_collective_port_range=[60000, 50000] must be [first, last] with 1024 <= first <= last <= 65535"),
    "cuda without a repository": ({"torchrun_accelerator": "cuda"},
                                  "node1: nvidia_driver_source=cuda_repo needs nvidia_cuda_repo_url, the base URL of NVIDIA's CUDA repository"),
    "cuda: toolkit version": ({"torchrun_accelerator": "cuda", "nvidia_cuda_repo_url": "http://198.18.0.1:3142/cuda",
                               "nvidia_cuda_toolkit": "12.4"},
                              "node2: nvidia_cuda_toolkit=12.4 must be MAJOR-MINOR as the repository names it, such as 12-4, or distro"),
    "cuda: driver branch": ({"torchrun_accelerator": "cuda", "nvidia_driver_source": "none", "nvidia_driver_branch": "latest"},
                            "node1: nvidia_driver_branch=latest must be a driver branch number such as 550"),
    "cuda: nccl.conf key": ({"torchrun_accelerator": "cuda", "nvidia_driver_source": "none", "nvidia_nccl_conf": {"IB_HCA": "mlx5"}},
                            "node1: nvidia_nccl_conf has the key IB_HCA, which is not an NCCL_ setting"),
    "unknown accelerator": ({"torchrun_accelerator": "tpu"}, "value of torchrun_accelerator must be one of: cuda, cpu, got: tpu"),
    "static nnodes": ({"torchrun_nnodes": "3"},
                      "node1: torchrun_nnodes=3 but group trainers has 2 node(s); the static rendezvous needs exactly the group"),
    "c10d range misses": ({"torchrun_rdzv_backend": "c10d", "torchrun_nnodes": "3:4"},
                          "node1: torchrun_nnodes=3:4 does not admit the 2 node(s) of group trainers"),
    "c10d range reversed": ({"torchrun_rdzv_backend": "c10d", "torchrun_nnodes": "4:2"},
                            "node1: torchrun_nnodes=4:2 must be N or MIN:MAX with 1 <= MIN <= MAX"),
    "c10d node rank": ({"torchrun_rdzv_backend": "c10d", "torchrun_node_rank": 1},
                       "node2: torchrun_node_rank is set, but the c10d rendezvous assigns ranks itself; remove it"),
    "stale NODE_RANK": ({"torchrun_env": {"NODE_RANK": "0"}},
                        "node1: torchrun_env sets NODE_RANK, which torchrun sets for every worker; remove it"),
    "shared address": ({"torchrun_address": "198.18.0.11"}, "node1, node2: share the cluster address 198.18.0.11"),
    "name not address": ({"torchrun_address": "gpu1.lab"}, "node1: torchrun_address='gpu1.lab' is not an IP address"),
    "loopback address": ({"torchrun_address": "127.0.0.1"},
                         "node1: torchrun_address=127.0.0.1 is a loopback address, which the other nodes cannot reach"),
    "peers: the world": ({"firewall_peers": ["0.0.0.0/0"]}, "node1: firewall_peers holds 0.0.0.0/0, a network, not a node"),
    "peers: the v6 world": ({"firewall_peers": ["198.18.0.11", "::/0"]}, "node2: firewall_peers holds ::/0, a network, not a node"),
    "peers: outsider": ({"firewall_peers": ["198.18.0.11", "198.18.0.250"]},
                        "node1: firewall_peers holds 198.18.0.250, which is not a node of group trainers (198.18.0.11, 198.18.0.12)"),
    "peers: none": ({"firewall_peers": []}, "node2: firewall_peers is empty; the job's own nodes could not reach it"),
    "backend unknown": ({"firewall_backend": "iptables"}, "node1: firewall_backend=iptables must be auto, nftables, firewalld, ufw or none"),
    "backend not running": ({"firewall_backend": "firewalld"},
                            "node1: firewall_backend=firewalld but firewalld is not active on the node; the collection never turns a firewall manager on"),
    "missing script": ({"torchrun_script": "/nonexistent/train.py"},
                       "controller: torchrun_script=/nonexistent/train.py does not exist on the controller"),
}


def playbook(*args):
    return run_playbook("setup", *args)


def fingerprints():
    prints = {}
    for name in NODES:
        proc = subprocess.run(sandbox.ssh_command(name) + [FINGERPRINT], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        prints[name] = proc.stdout
    return prints


@pytest.fixture(scope="module")
def fresh_cluster():
    subprocess.run([sys.executable, sandbox.__file__, "down"], capture_output=True, check=False)
    up = subprocess.run([sys.executable, sandbox.__file__, "up", "--nodes", "2"], capture_output=True, text=True, check=False)
    assert up.returncode == 0, up.stderr
    yield fingerprints()
    subprocess.run([sys.executable, sandbox.__file__, "down"], capture_output=True, check=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_any_change(fresh_cluster, case):
    extra, message = CASES[case]
    proc = playbook("-e", json.dumps(extra))
    out = " ".join((proc.stdout + proc.stderr).split())  # undo Ansible's line wrapping
    assert proc.returncode != 0, out[-3000:]
    assert message in out, out[-3000:]
    assert fingerprints() == fresh_cluster


def test_every_problem_is_reported_at_once(fresh_cluster):
    proc = playbook("-e", json.dumps({"torchrun_nproc_per_node": 0, "torchrun_master_port": 52500, "torchrun_nnodes": "3"}))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "preflight found 4 problem(s); nothing was changed" in out, out[-3000:]
    for problem in ('node1: torchrun_nproc_per_node=0', 'node2: torchrun_nproc_per_node=0',
                    'node1: torchrun_master_port=52500 lies inside', 'node1: torchrun_nnodes=3 but'):
        assert problem in out
    assert fingerprints() == fresh_cluster


def test_good_inventory_passes_preflight_and_changes_nothing(fresh_cluster):
    proc = playbook("--tags", "preflight")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "preflight: 2 node(s) in group trainers, master node1 (198.18.0.11:29500)" in proc.stdout
    assert fingerprints() == fresh_cluster
