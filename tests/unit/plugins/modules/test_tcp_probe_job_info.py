"""The probing and job-reading logic of the modules, on loopback and on this process's own children."""

import os
import socket
import subprocess
import sys
import threading
import time

from ansible_collections.onprem.torchrun.plugins.module_utils import unit_state
from ansible_collections.onprem.torchrun.plugins.modules import tcp_probe


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_probe_connects_to_a_listener():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        result = tcp_probe.probe({"name": "lo", "host": "127.0.0.1", "port": port}, "127.0.0.1", 2)
    assert result["ok"] and result["reason"] == "connected"


def test_probe_reports_refused_after_the_timeout():
    port = free_port()
    start = time.monotonic()
    result = tcp_probe.probe({"name": "lo", "host": "127.0.0.1", "port": port}, "", 0.6)
    assert not result["ok"] and result["reason"] == "refused"
    assert time.monotonic() - start >= 0.5  # refused is retried until the time is up


def test_probe_waits_for_a_listener_that_starts_late():
    port = free_port()
    holder = {}

    def late_listener():
        time.sleep(0.4)
        holder["server"] = socket.create_server(("127.0.0.1", port))

    thread = threading.Thread(target=late_listener)
    thread.start()
    try:
        result = tcp_probe.probe({"name": "lo", "host": "127.0.0.1", "port": port}, "", 3)
    finally:
        thread.join()
        holder["server"].close()
    assert result["ok"], result


def test_children_lists_a_process_workers_with_their_ranks():
    parent = subprocess.Popen([sys.executable, "-c", "import os,subprocess,sys,time; "
                               "[subprocess.Popen(['sleep', '30'], env=dict(os.environ, RANK=str(r))) for r in range(3)]; "
                               "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while len(unit_state.children(parent.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = unit_state.children(parent.pid)
        assert len(workers) == 3
        assert sorted(unit_state.rank_of(pid) for pid in workers) == ["0", "1", "2"]
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)], check=False)
        parent.kill()
        parent.wait()
    assert unit_state.children(0) == []
    assert unit_state.rank_of(0) == ""


def test_a_workers_pid_inside_its_container_is_the_last_of_nspid(tmp_path):
    # A worker of a job in its image: PID 2419 on the host, 4 in the container's PID namespace.
    (tmp_path / "2419").mkdir()
    (tmp_path / "2419" / "status").write_text("Name:\tpython\nTgid:\t2419\nNSpid:\t2419\t4\nNStgid:\t2419\t4\n")
    assert unit_state.pid_inside(2419, proc=str(tmp_path)) == 4
    (tmp_path / "77").mkdir()  # on the host: one PID namespace, the same PID
    (tmp_path / "77" / "status").write_text("Name:\tpython\nNSpid:\t77\n")
    assert unit_state.pid_inside(77, proc=str(tmp_path)) == 77
    assert unit_state.pid_inside(78, proc=str(tmp_path)) == 78  # gone: the PID it had
    assert unit_state.pid_inside(os.getpid()) > 0


def test_to_int_tolerates_systemd_blanks():
    assert unit_state.to_int("17") == 17
    assert unit_state.to_int("") == 0
    assert unit_state.to_int("[not set]") == 0


def test_job_info_reports_when_what_it_waits_for_happens():
    done = unit_state.done_waiting
    # Waiting for workers: a joined agent, one waiting to restart, an ended run, or the time up.
    assert not done("active", "running", [], now=1, deadline=5, until_end=False)
    assert done("active", "running", [101], now=1, deadline=5, until_end=False)
    assert done("activating", "auto-restart", [], now=1, deadline=5, until_end=False)
    assert done("failed", "failed", [], now=1, deadline=5, until_end=False)
    assert done("active", "running", [], now=5, deadline=5, until_end=False)
    # Waiting for the end: workers or a pending restart are not the end; an inactive or failed unit is.
    assert not done("active", "running", [101], now=1, deadline=5, until_end=True)
    assert not done("activating", "auto-restart", [], now=1, deadline=5, until_end=True)
    assert done("inactive", "dead", [], now=1, deadline=5, until_end=True)
    assert done("active", "running", [101], now=5, deadline=5, until_end=True)


class Journal:
    """journalctl as job_info runs it: answers with the lines after a cursor and the cursor of the last."""

    def __init__(self, out, rc=0):
        self.out, self.rc, self.cmds = out, rc, []

    def run_command(self, cmd):
        self.cmds.append(cmd)
        return self.rc, self.out, ""


def test_a_follower_reads_the_lines_after_its_cursor_and_gets_the_next_cursor():
    first = Journal("[rank0]: epoch 1\n[rank1]: epoch 1\n-- cursor: s=abc;i=2\n")
    assert unit_state.journal_after(first, "torchrun-train.service", "", 5) == (["[rank0]: epoch 1", "[rank1]: epoch 1"], "s=abc;i=2")
    assert "--lines=5" in first.cmds[0] and "_SYSTEMD_UNIT=torchrun-train.service" in first.cmds[0]
    later = Journal("-- No entries --\n")  # nothing new: the cursor stays
    assert unit_state.journal_after(later, "torchrun-train.service", "s=abc;i=2", 5) == ([], "s=abc;i=2")
    assert "--after-cursor=s=abc;i=2" in later.cmds[0] and not any(c.startswith("--lines") for c in later.cmds[0])
    assert unit_state.journal_after(Journal("", rc=1), "torchrun-train.service", "s=x", 5) == ([], "s=x")


class FakeModule:
    """run_command as the module calls podman inspect."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def run_command(self, argv):
        self.calls.append(argv)
        return self.answers.get(tuple(argv), (125, "", "no such container"))


def test_the_agent_of_a_job_in_its_image_is_torchrun_below_the_containers_init(monkeypatch):
    links = {"/proc/40/exe": "/usr/bin/podman", "/proc/50/exe": "/opt/torchrun/venv/bin/python3.11"}
    monkeypatch.setattr(unit_state.os, "readlink", lambda path: links[path])
    monkeypatch.setattr(unit_state, "children", lambda pid: {70: [71], 80: [81, 82]}.get(pid, []))
    inspect = ("/usr/bin/podman", "inspect", "--format", "{{.State.Pid}}", "torchrun-train")
    # torchrun_runtime=podman: the unit's main process is podman; the agent is the init's one child.
    module = FakeModule({inspect: (0, "70\n", "")})
    assert unit_state.agent(module, 40, "train") == 71 and module.calls == [list(inspect)]
    # No init in the container (its main process is the agent), and a container not up yet.
    assert unit_state.agent(FakeModule({inspect: (0, "80\n", "")}), 40, "train") == 80
    assert unit_state.agent(FakeModule({}), 40, "train") == 0
    # On the host the main process is the agent, and nothing is asked of podman.
    module = FakeModule({})
    assert unit_state.agent(module, 50, "train") == 50 and module.calls == []
    assert unit_state.agent(module, 0, "train") == 0


def test_a_start_is_watched_in_proc_and_systemd_asked_only_when_the_agent_is_new_gone_or_has_joined(monkeypatch):
    # Two nodes share the cores while torchrun starts: each look at a living agent reads /proc, not systemd.
    shown, looks = [], iter([[], [], [], [5001, 5002]])
    props = {"ActiveState": "active", "SubState": "running", "MainPID": "4242", "LoadState": "loaded", "Result": "success"}
    monkeypatch.setattr(unit_state, "show", lambda module, unit: shown.append(unit) or dict(props))
    monkeypatch.setattr(unit_state, "agent", lambda module, pid, job: pid)
    monkeypatch.setattr(unit_state, "children", lambda pid: next(looks))
    monkeypatch.setattr(unit_state.os.path, "exists", lambda path: path == "/proc/4242")
    monkeypatch.setattr(unit_state.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(unit_state, "journal", lambda *args: [])
    report = unit_state.report(object(), "train", wait_for_workers=5)
    assert report["workers"] == 2 and report["state"] == "active"
    assert len(shown) == 2  # the first look, and the unit as it is once the workers run - not once per look
    # The agent gone: systemd is asked at the next look (the run may be over, or waiting to restart).
    shown.clear()
    looks = iter([[], []])
    monkeypatch.setattr(unit_state, "children", lambda pid: next(looks))
    monkeypatch.setattr(unit_state.os.path, "exists", lambda path: False)
    props.update(ActiveState="failed", SubState="failed", Result="exit-code")
    monkeypatch.setattr(unit_state, "start_limit_hit", lambda module, unit: False)
    assert unit_state.report(object(), "train", wait_for_workers=5)["state"] == "failed" and len(shown) == 1
