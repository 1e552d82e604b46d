"""The nvidia role for real, on the sandbox's NVIDIA-shaped repository (sandbox/nvidia_repo.py, what
`make sandbox NVIDIA_REPO=1` serves): signed like NVIDIA's, NVIDIA's package names for two branches,
stand-in packages whose driver "loads" at the node's next boot and whose nvidia-smi answers from a
real H200 capture. Check mode writes nothing; the install pins branch 580 with the open modules,
loads, reports and is idempotent; moving the pin to 590 upgrades every node, the drift report names
the node left on the old driver, and nvidia_reboot reboots only that one.

Needs root (`make integration`). A real GPU server is `make gpu-check`.
"""

import json
import os
import re

import harness
import pytest
import sandbox
from conftest import run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")
WRITTEN = ("/etc/apt/sources.list.d/onprem-torchrun-nvidia-cuda.sources", "/etc/apt/preferences.d/onprem-torchrun-nvidia",
           "/etc/apt/keyrings/onprem-torchrun-nvidia-cuda.asc", "/etc/nccl.conf")
# The nodes' sysfs has no GPU (preflight would refuse CUDA there); the stand-in nvidia-smi has one.
CUDA = {"torchrun_accelerator": "cuda", "nvidia_require_gpus": False, "nvidia_cuda_toolkit": "12-9", "nvidia_nccl": True}
VERSIONS = {"580": "580.159.04", "590": "590.48.01"}


@pytest.fixture(scope="module")
def two_nodes():
    with harness.cluster(2, nvidia_repo=True):
        yield


def setup(extra=None, *args):
    return run_playbook("setup", "-e", json.dumps(dict(CUDA, **(extra or {}))), "--tags", "nvidia", *args)


def report(extra=None):
    return run_playbook("report", "-e", json.dumps(dict(CUDA, **(extra or {}))))


def passed(proc):
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


def driver(node):
    """The node's NVIDIA packages, the module modinfo reads, and what nvidia-smi answers."""
    out = harness.on(node, "dpkg-query -W -f '${Package}=${Version}\\n' 'nvidia-*' 2>/dev/null | grep -v '=$'; echo modinfo=$(modinfo -F version nvidia);"
                           " nvidia-smi --query-gpu=driver_version,name --format=csv,noheader").stdout
    return out


def test_check_mode_shows_the_repository_pin_and_nccl_settings_and_writes_nothing(two_nodes):
    out = passed(run_playbook("tests/integration/playbooks/nvidia.yml", "--check", "--diff"))
    # deb822_repository has no diff: the play shows the source it would write (python3-debian is not there yet).
    assert "deb822_repository would write" in out and "- %snvidia/debian12/x86_64/" % sandbox.WHEEL_URL in out, out[-4000:]
    assert "+Pin: version 580.*" in out and "+NCCL_IB_HCA=mlx5" in out, out[-4000:]
    ls = harness.on("node1", "ls -d %s 2>/dev/null; true" % " ".join(WRITTEN))
    assert ls.stdout == ""
    assert harness.on("node1", "dpkg-query -W -f '${Status}' python3-debian 2>/dev/null").stdout != "install ok installed"


def test_the_driver_installs_pinned_with_open_modules_loads_reports_and_a_second_run_changes_nothing(two_nodes):
    passed(setup())
    for node in ("node1", "node2"):
        found = driver(node)
        assert "nvidia-driver-cuda=580.159.04-1" in found and "nvidia-kernel-open-dkms=580.159.04-1" in found, found
        assert "nvidia-kernel-dkms=" not in found and "modinfo=580.159.04" in found, found
        assert "580.159.04, NVIDIA H200" in found, found  # loaded at once: a fresh node had none loaded
        assert harness.on(node, "systemctl is-active nvidia-persistenced").stdout.strip() == "active"
    second = passed(setup())
    assert harness.recap_changed(second, "node1") == 0 and harness.recap_changed(second, "node2") == 0, second[-3000:]
    out = " ".join(passed(report()).split())
    assert "- node1 580.159.04 12.9.86 2.27.7-1+cuda12.9" in out and "- node2 580.159.04 12.9.86" in out, out[-3000:]
    # The launch's GPU health gate reads the stand-in's nvidia-smi -q -x: one healthy H200 per node.
    gate = " ".join(passed(run_playbook("tests/integration/playbooks/gpu_gate.yml", "-e", "torchrun_nproc_per_node=1")).split())
    assert "NVIDIA H200" in gate, gate[-3000:]
    too_many = run_playbook("tests/integration/playbooks/gpu_gate.yml")  # the sandbox job's two processes
    assert too_many.returncode != 0 and "node2: GPU health gate: 1 GPU(s) for 2 processes" in " ".join(too_many.stdout.split())


@pytest.mark.slow  # make test-slow: two upgrades and a reboot (the driver plan and the pin are unit-tested: test_nvidia_packages, test_nvidia_render)
def test_moving_the_pin_upgrades_every_node_names_the_one_left_behind_and_reboots_only_it(two_nodes):
    out = " ".join(passed(setup({"nvidia_driver_branch": "590"})).split())
    for node in ("node1", "node2"):
        assert "nvidia-driver-cuda=590.48.01-1" in driver(node)
        assert re.search(r"WARNING: %s runs [^;]* but 590\.48\.01 is installed; reboot it" % node, out), out[-3000:]
    harness.tool("reboot", "node1")  # the operator reboots one node
    left = " ".join(report({"nvidia_driver_branch": "590"}).stdout.split())
    assert "driver: node1 590.48.01, node2 none" in left, left[-3000:]
    out = passed(setup({"nvidia_driver_branch": "590", "nvidia_reboot": True}))
    rebooted = out.split("Reboot the nodes whose new driver is not loaded, a few at a time]")[1].split("TASK [")[0]
    assert "changed: [node2]" in rebooted and "changed: [node1]" not in rebooted, out[-3000:]
    assert "590.48.01, NVIDIA H200" in driver("node2")
    passed(report({"nvidia_driver_branch": "590"}))


@pytest.mark.slow  # make test-slow (the refusal's message is unit-tested; make test keeps the install above)
def test_a_node_without_gpus_is_refused_by_name(two_nodes):
    # The site's own driver on a node that has none: the role only reads the GPUs, and finds none.
    harness.on("node2", "systemctl stop nvidia-persistenced; rm -f /usr/bin/nvidia-smi")
    proc = run_playbook("tests/integration/playbooks/nvidia.yml", "-e", json.dumps(
        {"nvidia_driver_source": "none", "nvidia_cuda_toolkit": "", "nvidia_nccl": False, "nvidia_nccl_conf": {}, "nvidia_require_gpus": True}))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "node2: torchrun_nproc_per_node=2 but nvidia-smi lists 0 GPU(s) (is the driver loaded?" in out, out[-3000:]
    assert "node1: torchrun_nproc_per_node" in out  # the stand-in has one GPU, the job two processes
