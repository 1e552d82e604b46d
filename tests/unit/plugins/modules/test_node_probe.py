"""node_probe's readers: /proc/net/tcp, socket owners, PCI GPUs, preset variables."""

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from ansible_collections.onprem.torchrun.plugins.module_utils import firmware, pcie, site_firewall, sockets, stack
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
    assert sockets.listening_sockets(TCP) == {"1001": ("0.0.0.0", 22), "1002": ("127.0.0.1", 29497)}
    assert sockets.listening_sockets(TCP6) == {"2001": ("0:0:0:0:0:0:0:1", 8080)}


def test_unit_of_reads_v2_and_hybrid_cgroup_files():
    assert sockets.unit_of("0::/system.slice/torchrun-train.service\n") == "torchrun-train.service"
    assert sockets.unit_of("1:name=systemd:/user.slice/user-0.slice/session-3.scope\n0::/\n") == "session-3.scope"
    assert sockets.unit_of("0::/\n") == ""


def test_listeners_names_this_process():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        mine = [e for e in sockets.listeners() if e["port"] == port]
    assert len(mine) == 1, mine
    assert mine[0]["pid"] == os.getpid() and mine[0]["address"] == "127.0.0.1"
    assert mine[0]["process"] == open("/proc/self/comm").read().strip()
    # The kernel's executable and uid, whatever the process calls itself.
    assert mine[0]["exe"] == os.path.realpath("/proc/self/exe") and mine[0]["uid"] == os.getuid()


@pytest.mark.parametrize(("entries", "ports"), [
    ([{"port": 22, "process": "sshd", "exe": "/usr/sbin/sshd", "uid": 0}], [22]),
    # A user's listener that calls itself sshd (exec -a, prctl) is not SSH: its port stays closed.
    ([{"port": 2222, "process": "sshd", "exe": "/usr/bin/python3.11", "uid": 1001}], []),
    # The real sshd binary started by a user on its own port is not the node's SSH either.
    ([{"port": 2200, "process": "sshd", "exe": "/usr/sbin/sshd", "uid": 1001}], []),
    ([{"port": 2022, "process": "anything", "exe": "/usr/sbin/sshd", "uid": 0},
      {"port": 22, "process": "sshd", "exe": "/usr/sbin/sshd", "uid": 0}, {"port": 22, "process": "sshd", "exe": "/usr/sbin/sshd", "uid": 0}],
     [22, 2022]),
    ([{"port": 22, "process": "sshd", "exe": "", "uid": None}], []),  # a process root could not read is not trusted
])
def test_ssh_ports_are_known_by_executable_and_uid_not_by_name(entries, ports):
    assert node_probe.ssh_ports(entries) == ports


def test_a_path_another_account_can_change_is_named_with_the_first_such_place(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to other accounts")
    top = tmp_path / "opt"
    venv = top / "env"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    os.chmod(tmp_path, 0o755)
    for path in (top, venv, venv / "bin", venv / "lib", venv / "lib" / "python3.11", venv / "lib" / "python3.11" / "site-packages"):
        os.chown(path, 0, 0)
        os.chmod(path, 0o755)
    base = stack.writable_by_others(str(tmp_path))
    if base is not None:  # the test's own temp folder is above: only what lies below it is under test
        pytest.skip("the temp folder %s is not root's alone" % base["path"])
    assert stack.venv_trust(str(venv)) is None
    assert stack.writable_by_others(str(venv / "missing" / "deeper")) is None  # what root would create there
    os.chmod(venv / "lib" / "python3.11" / "site-packages", 0o777)
    assert stack.venv_trust(str(venv))["path"] == str(venv / "lib" / "python3.11" / "site-packages")
    os.chmod(venv / "lib" / "python3.11" / "site-packages", 0o755)
    os.chown(venv / "bin" / "python", 65534, 65534)
    assert stack.venv_trust(str(venv)) == {"path": str(venv / "bin" / "python"), "owner": "nobody", "mode": "0644"}
    os.chown(venv / "bin" / "python", 0, 0)
    os.chmod(top, 0o1777)  # sticky, like /tmp: others cannot replace what root owns in it
    assert stack.venv_trust(str(venv)) is None
    os.chmod(top, 0o775)
    assert stack.venv_trust(str(venv))["path"] == str(top)


def test_links_names_the_folders_that_are_symbolic_links(tmp_path):
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "checkpoints").symlink_to("/etc")
    (tmp_path / "job" / "healthcheck").mkdir()
    wanted = [str(tmp_path / "job"), str(tmp_path / "job" / "checkpoints"), str(tmp_path / "job" / "healthcheck"), str(tmp_path / "none")]
    assert node_probe.links(wanted) == {str(tmp_path / "job" / "checkpoints"): "/etc"}


def test_gpu_count_counts_display_and_3d_controllers_of_nvidia(tmp_path):
    for name, vendor, cls in (("0000:17:00.0", "0x10de", "0x030200"), ("0000:18:00.0", "0x10de", "0x030000"),
                              ("0000:19:00.0", "0x10de", "0x068000"),  # an NVSwitch
                              ("0000:1a:00.0", "0x8086", "0x030000")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "vendor").write_text(vendor + "\n")
        (tmp_path / name / "class").write_text(cls + "\n")
        (tmp_path / name / "device").write_text("0x2335\n")
    assert node_probe.gpu_count(str(tmp_path)) == 2
    assert [pcie.device_id(name, str(tmp_path)) for name in pcie.nvidia_devices(pcie.GPU_CLASSES, str(tmp_path))] == ["0x2335", "0x2335"]
    assert node_probe.gpu_count(str(tmp_path / "absent")) == 0
    assert node_probe.pci_count(node_probe.NVSWITCH_CLASSES, str(tmp_path)) == 1


def test_preset_names_where_each_variable_comes_from():
    manager = "LANG=C.UTF-8\nNODE_RANK=0\nPATH=/usr/bin\n"
    etc = '# comment\nexport MASTER_ADDR="10.0.0.1"\nMASTER_PORTS=1\n'
    found = node_probe.preset(["NODE_RANK", "MASTER_ADDR", "MASTER_PORT"], manager, etc)
    assert found == [{"name": "NODE_RANK", "value": "0", "where": node_probe.MANAGER},
                     {"name": "MASTER_ADDR", "value": "10.0.0.1", "where": "/etc/environment"}]


def test_declared_tables_reads_ruleset_files_and_nft_output():
    conf = "#!/usr/sbin/nft -f\nflush ruleset\n\ntable inet filter {\n  chain input { }\n}\ntable ip nat {\n}\n"
    assert site_firewall.declared_tables(conf) == ["inet filter", "ip nat"]
    ours = "table inet torchrun\ndelete table inet torchrun\n\ntable inet torchrun {\n}\n"
    assert sorted(set(site_firewall.declared_tables(ours))) == ["inet torchrun"]


def test_installed_jobs_reads_each_job_env_file_and_skips_the_others(tmp_path):
    (tmp_path / "train.env").write_text("TORCHRUN_MASTER_PORT=29500\nTORCHRUN_COLLECTIVE_PORT_RANGE=52000-53999\nTORCHRUN_USER=torchrun-train\n"
                                        "TORCHRUN_ACCELERATOR=cuda\nCUDA_VISIBLE_DEVICES=0,3\nTORCHRUN_RDZV_BACKEND=c10d\n"
                                        "TORCHRUN_CLUSTER=trainers:0123456789ab\n")
    (tmp_path / "eval.env").write_text("TORCHRUN_MASTER_PORT=29600\n")
    (tmp_path / "train.secret.env").write_text("TORCHRUN_MASTER_PORT=1\n")
    (tmp_path / "train.run.env").write_text("TORCHRUN_RDZV_ID=x\n")
    assert node_probe.installed_jobs(str(tmp_path)) == [
        {"job": "eval", "master_port": 29600, "collective_port_range": None, "user": None, "accelerator": None, "gpus": None,
         "backend": None, "cluster": None},
        {"job": "train", "master_port": 29500, "collective_port_range": [52000, 53999], "user": "torchrun-train",
         "accelerator": "cuda", "gpus": ["0", "3"], "backend": "c10d", "cluster": "trainers:0123456789ab"},
    ]


def test_account_tells_ours_from_an_existing_one():
    assert node_probe.account("", "onprem.torchrun jobs")["exists"] is False
    root = node_probe.account("root", "onprem.torchrun jobs")
    assert root["exists"] and root["uid"] == 0 and not root["ours"] and root["group_exists"]
    missing = node_probe.account("no-such-user-here", "onprem.torchrun jobs")
    assert not missing["exists"] and not missing["ours"]


def test_ufw_defaults_reads_the_input_policy_and_the_ipv6_switch():
    assert site_firewall.ufw_defaults('IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n') == {"ufw_default_input": "DROP", "ufw_ipv6": True}
    assert site_firewall.ufw_defaults('IPV6=no\nDEFAULT_INPUT_POLICY="ACCEPT"\n') == {"ufw_default_input": "ACCEPT", "ufw_ipv6": False}


def test_platform_names_the_package_manager_and_the_release(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text('NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n')
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    assert node_probe.platform(str(tmp_path)) == {"package_manager": "unknown", "os_release": "Rocky Linux 9.3 (Blue Onyx)",
                                                  "os_id": {"id": "rocky", "version": "9.3"},
                                                  "uname": {"kernel": os.uname().release, "machine": os.uname().machine}}
    (tmp_path / "usr" / "bin" / "dnf").write_text("")
    assert node_probe.platform(str(tmp_path))["package_manager"] == "dnf"
    (tmp_path / "usr" / "bin" / "apt-get").write_text("")
    assert node_probe.platform(str(tmp_path))["package_manager"] == "apt"


@pytest.fixture()
def passable_tmp():
    """A folder every user may pass through (pytest's own tmp_path sits below a 0700 folder)."""
    path = Path(tempfile.mkdtemp(dir="/var/tmp"))
    yield path
    shutil.rmtree(path)


def test_folder_access_reads_the_mode_bits_for_the_user(passable_tmp):
    # nobody is neither owner nor in root's group: the "other" bits decide, and every folder above counts.
    tmp_path = passable_tmp
    open_dir, closed_dir, locked_parent = tmp_path / "open", tmp_path / "closed", tmp_path / "locked"
    for folder, mode in ((open_dir, 0o777), (closed_dir, 0o755), (locked_parent, 0o700)):
        folder.mkdir()
        folder.chmod(mode)
    (locked_parent / "inside").mkdir(mode=0o777)
    tmp_path.chmod(0o755)
    assert node_probe.folder_access(str(open_dir), "nobody")["writable"] is True
    closed = node_probe.folder_access(str(closed_dir), "nobody")
    assert closed["readable"] is True and closed["writable"] is False and closed["mode"] == "0755"
    assert node_probe.folder_access(str(locked_parent / "inside"), "nobody")["readable"] is False
    assert node_probe.folder_access(str(tmp_path / "absent"), "nobody")["exists"] is False
    # A user that does not exist yet (preflight before the first setup): exists, access unknown.
    assert node_probe.folder_access(str(open_dir), "no-such-user-here")["writable"] is None


def test_account_names_who_else_holds_the_uid_asked_for():
    taken = node_probe.account("no-such-user-here", "onprem.torchrun jobs", 1)  # uid and gid 1: daemon on Debian
    assert (taken["uid_holder"], taken["gid_holder"]) == ("daemon", "daemon")
    own = node_probe.account("daemon", "onprem.torchrun jobs", 1)
    assert (own["uid"], own["gid"], own["uid_holder"], own["gid_holder"]) == (1, 1, "", "")
    free = node_probe.account("no-such-user-here", "onprem.torchrun jobs", 4242424)
    assert (free["uid_holder"], free["gid_holder"]) == ("", "")


def test_ephemeral_use_counts_the_connections_holding_ports_of_the_range_and_the_busiest_destination():
    # 52017 -> 10.0.0.5:443 twice (one TIME_WAIT), 33000 -> outside the range, a listener on 52100: not counted.
    table = TCP.splitlines()[0] + """
   0: 0B0012C6:CB31 0500000A:01BB 01 00000000:00000000 00:00000000 00000000  2000        0 11 1 0 100 0 0 10 0
   1: 0B0012C6:CB32 0500000A:01BB 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0 100 0 0 10 0
   2: 0B0012C6:80E8 0600000A:0050 01 00000000:00000000 00:00000000 00000000     0        0 12 1 0 100 0 0 10 0
   3: 00000000:CB94 00000000:0000 0A 00000000:00000000 00:00000000 00000000  2000        0 13 1 0 100 0 0 10 0
"""
    assert sockets.ephemeral_use([table], 52000, 53999) == {"range": [52000, 53999], "total": 2, "busiest_peer": "10.0.0.5:443",
                                                                "busiest": 2}
    assert sockets.ephemeral_use([""], 52000, 53999)["busiest"] == 0


def test_secure_boot_from_mokutil_else_the_efi_variable_else_off_without_efi():
    state = firmware.secure_boot_state
    assert state("SecureBoot enabled\n", None, True) == "enabled"
    assert state("SecureBoot disabled\nPlatform is in Setup Mode\n", b"\x06\x00\x00\x00\x01", True) == "disabled"
    assert state("EFI variables are not supported on this system\n", None, False) == "disabled"
    # No mokutil: the firmware's variable - four bytes of attributes, then the value.
    assert state(None, b"\x06\x00\x00\x00\x01", True) == "enabled"
    assert state(None, b"\x06\x00\x00\x00\x00", True) == "disabled"
    assert state(None, None, True) == "unknown"
    assert state(None, None, False) == "disabled"  # booted without EFI: no Secure Boot
    assert state("garbled", b"\x06\x00\x00\x00\x01", True) == "enabled"


class Failed(Exception):
    pass


class LockModule:
    def __init__(self, check_mode=False):
        self.check_mode = check_mode

    def fail_json(self, **kwargs):
        raise Failed(kwargs)


def test_the_launch_lock_is_taken_in_the_probe_and_another_run_s_is_refused_naming_it(tmp_path):
    asked = {"job": "train", "token": "run-a", "owner": "alice@ctl (Launch the torchrun job)"}
    assert node_probe.take_lock(LockModule(check_mode=True), asked, str(tmp_path)) is True
    assert not (tmp_path / "train").exists()  # check mode takes nothing
    assert node_probe.take_lock(LockModule(), asked, str(tmp_path)) is True
    assert node_probe.take_lock(LockModule(), asked, str(tmp_path)) is False  # this run's own: held already
    with pytest.raises(Failed) as refused:
        node_probe.take_lock(LockModule(), dict(asked, token="run-b", owner="bob@ctl"), str(tmp_path))
    msg = refused.value.args[0]["msg"]
    assert msg.startswith("job train is being launched by alice@ctl (Launch the torchrun job) since ")
    assert msg.endswith("remove %s on this node" % (tmp_path / "train")) and "token" not in refused.value.args[0]["holder"]
    with pytest.raises(Failed, match="is not a job name"):
        node_probe.take_lock(LockModule(), dict(asked, job="../etc"), str(tmp_path))


def test_the_stack_is_not_read_from_a_venv_another_account_can_change(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to other accounts")
    assert stack.read_trusted(LockModule(), {"venv": ""}) is None
    venv = tmp_path / "env"
    (venv / "bin").mkdir(parents=True)
    os.chmod(venv, 0o777)  # anyone may replace its python: root must not run it
    assert stack.read_trusted(LockModule(), {"venv": str(venv), "requirements": ["numpy"]}) is None
