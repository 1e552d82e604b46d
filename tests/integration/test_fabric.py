"""The job's NCCL network on a real node: with RDMA ports the unit gets a drop-in that opens
/dev/infiniband to it and lifts its memlock limit, and its environment NCCL_IB_HCA; socket mode
takes both away again. Idempotent both ways.

The sandbox has no RDMA hardware: the node gets the sysfs tree of an InfiniBand node (two HDR ports,
as the kernel lays out /sys/class/infiniband) mounted over its /sys/class, and the character
devices of /dev/infiniband. Everything else is real: node_probe reads the tree, systemd loads the
drop-in, `systemctl show` reports the unit's properties.

Needs root (`make integration`).
"""

import json
import os
import re

import harness
import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")

UNIT = "torchrun-train.service"
DROPIN = "/etc/systemd/system/%s.d/fabric.conf" % UNIT
ENV = "/etc/torchrun/train.fabric.env"
# Two ACTIVE InfiniBand ports (mlx5_0:1, mlx5_1:1) and a DOWN one (mlx5_2:1); the node's own
# /sys/class entries are kept (copied as the links they are).
INFINIBAND = r"""
set -e
mkdir -p /run/sysclass
mountpoint -q /run/sysclass || mount -t tmpfs -o mode=755 sysclass /run/sysclass
cp -a /sys/class/. /run/sysclass/ 2>/dev/null || true
for dev in mlx5_0:4:ACTIVE mlx5_1:4:ACTIVE mlx5_2:1:DOWN; do
  name=${dev%%:*}; state=${dev#*:}; p=/run/sysclass/infiniband/$name/ports/1
  mkdir -p $p/gids $p/gid_attrs/types $p/gid_attrs/ndevs /run/sysclass/infiniband/$name/device/net
  echo "${state%%:*}: ${state#*:}" > $p/state; echo "5: LinkUp" > $p/phys_state
  echo "200 Gb/sec (4X HDR)" > $p/rate; echo InfiniBand > $p/link_layer
  echo fe80:0000:0000:0000:0e42:a1ff:fe3c:5d10 > $p/gids/0
done
mountpoint -q /sys/class/infiniband 2>/dev/null || mount --bind /run/sysclass /sys/class
mkdir -p /dev/infiniband
for n in uverbs0:231:192 uverbs1:231:193 rdma_cm:10:58; do
  f=/dev/infiniband/${n%%:*}; rest=${n#*:}; [ -e $f ] || mknod $f c ${rest%%:*} ${rest#*:}
done
"""


@pytest.fixture(scope="module")
def rdma_node():
    with harness.cluster(1, seed=True):
        done = harness.on("node1", INFINIBAND)
        assert done.returncode == 0, done.stderr
        yield "node1"


def setup(*args):
    proc = harness.playbook("setup", "--skip-tags", "connectivity", *args)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout


def changed(out):
    """node1's changed count in the play recap."""
    return int(re.search(r"^node1\s+: ok=\d+\s+changed=(\d+)", out, re.M).group(1))


def show(node, name):
    return harness.on(node, "systemctl show -p %s --value %s" % (name, UNIT)).stdout.strip()


def read(node, path):
    found = harness.on(node, "cat %s" % path)
    return found.stdout if found.returncode == 0 else None


def test_rdma_ports_open_the_unit_to_them_and_socket_closes_it_again(rdma_node):
    setup()
    assert show(rdma_node, "LimitMEMLOCK") == "infinity"
    allowed = show(rdma_node, "DeviceAllow")
    for device in ("/dev/infiniband/rdma_cm rw", "/dev/infiniband/uverbs0 rw", "/dev/infiniband/uverbs1 rw"):
        assert device in allowed, allowed
    env = read(rdma_node, ENV)
    assert "NCCL_IB_HCA==mlx5_0:1,mlx5_1:1\n" in env and "mlx5_2" not in env.split("NCCL_IB_HCA")[1], env  # the DOWN port left out
    assert "RDMA ports mlx5_0:1, mlx5_1:1 (InfiniBand, 200 Gb/sec (4X HDR))" in env
    assert changed(setup()) == 0  # idempotent

    narrowed = setup("-e", json.dumps({"torchrun_fabric_hcas": ["mlx5_1"]}))
    assert "NCCL_IB_HCA==mlx5_1:1\n" in read(rdma_node, ENV)
    assert changed(narrowed) > 0

    setup("-e", "torchrun_fabric=socket")
    assert read(rdma_node, DROPIN) is None
    assert show(rdma_node, "LimitMEMLOCK") != "infinity" and "infiniband" not in show(rdma_node, "DeviceAllow")
    assert "NCCL_IB_DISABLE=1\n" in read(rdma_node, ENV) and "NCCL_IB_HCA" not in read(rdma_node, ENV)


def test_rdma_forced_on_a_port_the_node_lacks_is_refused_before_any_change(rdma_node):
    before = harness.on(rdma_node, "sha256sum %s 2>&1; ls /etc/systemd/system/%s.d 2>&1" % (ENV, UNIT)).stdout
    proc = harness.playbook("setup", "-e", json.dumps({"torchrun_fabric": "rdma", "torchrun_fabric_hcas": ["mlx5_2"]}))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert ("node1: torchrun_fabric=rdma but the node has no ACTIVE RDMA port among torchrun_fabric_hcas=mlx5_2 "
            "(mlx5_0:1 ACTIVE, mlx5_1:1 ACTIVE, mlx5_2:1 DOWN)") in out, out[-3000:]
    assert harness.on(rdma_node, "sha256sum %s 2>&1; ls /etc/systemd/system/%s.d 2>&1" % (ENV, UNIT)).stdout == before
