"""node_probe's readers: /proc/net/tcp, socket owners, PCI GPUs, preset variables."""

import os
import socket

from ansible_collections.onprem.torchrun.plugins.modules import node_probe

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:7339 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0
   2: 0B0012C6:0016 0C0012C6:D6A2 01 00000000:00000000 02:000A1B2C 00000000     0        0 1003 2 0000000000000000 20 4 30 10 -1
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
"""


def test_listening_sockets_keeps_listen_lines_only():
    assert node_probe.listening_sockets(TCP) == {"1001": ("0.0.0.0", 22), "1002": ("127.0.0.1", 29497)}
    assert node_probe.listening_sockets(TCP6) == {"2001": ("0:0:0:0:0:0:0:1", 8080)}


def test_unit_of_reads_v2_and_hybrid_cgroup_files():
    assert node_probe.unit_of("0::/system.slice/torchrun-train.service\n") == "torchrun-train.service"
    assert node_probe.unit_of("1:name=systemd:/user.slice/user-0.slice/session-3.scope\n0::/\n") == "session-3.scope"
    assert node_probe.unit_of("0::/\n") == ""


def test_listeners_names_this_process():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        mine = [e for e in node_probe.listeners() if e["port"] == port]
    assert len(mine) == 1, mine
    assert mine[0]["pid"] == os.getpid() and mine[0]["address"] == "127.0.0.1"
    assert mine[0]["process"] == open("/proc/self/comm").read().strip()


def test_gpu_count_counts_display_and_3d_controllers_of_nvidia(tmp_path):
    for name, vendor, cls in (("0000:17:00.0", "0x10de", "0x030200"), ("0000:18:00.0", "0x10de", "0x030000"),
                              ("0000:19:00.0", "0x10de", "0x068000"),  # an NVSwitch
                              ("0000:1a:00.0", "0x8086", "0x030000")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "vendor").write_text(vendor + "\n")
        (tmp_path / name / "class").write_text(cls + "\n")
    assert node_probe.gpu_count(str(tmp_path)) == 2
    assert node_probe.gpu_count(str(tmp_path / "absent")) == 0


def test_preset_names_where_each_variable_comes_from():
    manager = "LANG=C.UTF-8\nNODE_RANK=0\nPATH=/usr/bin\n"
    etc = '# comment\nexport MASTER_ADDR="10.0.0.1"\nMASTER_PORTS=1\n'
    found = node_probe.preset(["NODE_RANK", "MASTER_ADDR", "MASTER_PORT"], manager, etc)
    assert found == [{"name": "NODE_RANK", "value": "0", "where": node_probe.MANAGER},
                     {"name": "MASTER_ADDR", "value": "10.0.0.1", "where": "/etc/environment"}]
