"""The sandbox tool's pure parts, and its refusals of bad input before anything is created."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sandbox

TOOL = Path(sandbox.__file__)


def write_etc(tmp_path, files):
    etc = tmp_path / "etc"
    (etc / "apt" / "sources.list.d").mkdir(parents=True)
    (etc / "os-release").write_text('VERSION_CODENAME=%s\n' % files.pop("codename", "bookworm"))
    for name, text in files.items():
        (etc / "apt" / name).write_text(text)
    return etc


def test_deb822_sources_keep_debian_archives_only(tmp_path):
    etc = write_etc(tmp_path, {
        "sources.list.d/debian.sources": (
            "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
            "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n"),
        "sources.list.d/vendor.sources": "Types: deb\nURIs: https://vendor.example/apt\nSuites: stable\nComponents: stuff\n",
    })
    sources = sandbox.apt_sources(etc)
    assert sources == [
        {"uris": ["http://mirror.example/debian"], "suites": ["bookworm", "bookworm-updates"], "components": ["main"]},
        {"uris": ["http://mirror.example/debian-security"], "suites": ["bookworm-security"], "components": ["main"]},
    ]
    assert sandbox.archive_mirror(sources) == "http://mirror.example/debian"
    # The APT proxy serves exactly these archives, on the bridge, with no tunnel.
    conf = sandbox.acng_config(sources)
    assert "NetworkTimeout: 60\n" in conf  # the proxy's own upstream is bounded too
    assert [line for line in conf.splitlines() if line.startswith("Remap-")] == [
        "Remap-source0: mirror.example/debian ; http://mirror.example/debian",
        "Remap-source1: mirror.example/debian-security ; http://mirror.example/debian-security"]
    assert "BindAddress: 198.18.0.1\n" in conf and "ForceManaged: 1\n" in conf and "PassThroughPattern: ^$\n" in conf


def test_an_https_source_is_asked_for_over_http_and_fetched_over_https():
    sources = [{"uris": ["https://secure.example/debian/"], "suites": ["bookworm"], "components": ["main"]}]
    assert "URIs: http://secure.example/debian/\n" in sandbox.render_sources(sources)
    assert "Remap-source0: secure.example/debian ; https://secure.example/debian\n" in sandbox.acng_config(sources)


def test_one_line_sources_and_a_newer_host_map_to_bookworm(tmp_path):
    etc = write_etc(tmp_path, {
        "codename": "trixie",
        "sources.list": "deb [arch=amd64] http://m.example/debian trixie main contrib\n"
                        "deb-src http://m.example/debian trixie main\n# deb http://x.example/debian trixie main\n",
    })
    assert sandbox.apt_sources(etc) == [{"uris": ["http://m.example/debian"], "suites": ["bookworm"], "components": ["main"]}]


def test_no_debian_source_is_an_error(tmp_path):
    etc = write_etc(tmp_path, {"sources.list": "deb http://vendor.example/apt stable extras\n"})
    with pytest.raises(sandbox.SandboxError, match="no Debian archive found"):
        sandbox.apt_sources(etc)


@pytest.mark.parametrize(("name", "addr"), [("node1", "198.18.0.11"), ("node32", "198.18.0.42"), ("outsider", "198.18.0.250")])
def test_addresses_are_static(name, addr):
    assert sandbox.address_of(name) == addr


def test_hosts_file_keeps_the_debian_loopback_trap():
    text = sandbox.hosts_file("node2", ["node1", "node2"])
    assert "127.0.1.1\tnode2\n" in text
    assert "198.18.0.11\tnode1\n" in text and "198.18.0.12\tnode2\n" in text


@pytest.mark.parametrize(("mounts", "roots"), [
    # cgroup v1 with the hybrid v2 tree (this machine), and v2 only (a current distribution)
    ("tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
     "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\ncgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0\n",
     ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"]),
    ("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n", ["/sys/fs/cgroup"]),
])
def test_each_node_gets_its_own_cgroup_in_the_trees_systemd_uses(tmp_path, mounts, roots):
    (tmp_path / "mounts").write_text(mounts)
    dirs = sandbox.cgroup_dirs("node3", str(tmp_path / "mounts"))
    assert dirs == [Path(r) / sandbox.CGROUP_GROUP / "node3" for r in roots]
    wrapped = sandbox.in_own_cgroups([tmp_path / "g1", tmp_path / "g2"], ["systemd-nspawn", "-M", "node3"])
    assert wrapped[-3:] == ["systemd-nspawn", "-M", "node3"] and (tmp_path / "g2").is_dir()
    subprocess.run(wrapped[:-3] + ["true"], check=True)
    assert (tmp_path / "g1" / "cgroup.procs").read_text().strip().isdigit()


def run_tool(tmp_path, args, env_extra=None, preexec=None, python=sys.executable):
    env = dict(os.environ, SANDBOX_STATE=str(tmp_path / "state"), SANDBOX_CACHE=str(tmp_path / "cache"))
    env.update(env_extra or {})
    proc = subprocess.run([python, str(TOOL)] + args, capture_output=True, text=True, env=env,
                          preexec_fn=preexec, cwd=tmp_path)
    return proc


def assert_nothing_created(tmp_path):
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ("abc", "sandbox: error: NODES must be a whole number from 1 to 32, got 'abc'"),
        ("2.5", "sandbox: error: NODES must be a whole number from 1 to 32, got '2.5'"),
        ("-1", "sandbox: error: NODES must be a whole number from 1 to 32, got '-1'"),
        ("0", "sandbox: error: NODES must be from 1 to 32, got 0"),
        ("33", "sandbox: error: NODES must be from 1 to 32, got 33"),
    ],
)
def test_bad_node_count_is_one_line_and_creates_nothing(tmp_path, nodes, message):
    proc = run_tool(tmp_path, ["up", "--nodes", nodes])
    assert proc.returncode == 2
    assert proc.stderr == message + "\n"
    assert proc.stdout == ""
    assert_nothing_created(tmp_path)


def test_missing_tool_is_named(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("systemd-nspawn", "ip", "ssh", "ssh-keygen", "mount", "umount", "chroot"):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    proc = run_tool(tmp_path, ["up", "--nodes", "2"], env_extra={"PATH": str(bindir)})
    assert proc.returncode == 2
    assert proc.stderr.startswith("sandbox: error: missing tools: debootstrap")
    assert proc.stderr.count("\n") == 1
    assert_nothing_created(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
@pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="needs the system python3")
def test_not_root_is_refused(tmp_path):
    tmp_path.chmod(0o777)

    def drop():
        os.setgid(65534)
        os.setuid(65534)

    # The system interpreter: the project venv may sit where the other user cannot read.
    proc = run_tool(tmp_path, ["up", "--nodes", "2"], preexec=drop, python="/usr/bin/python3")
    assert proc.returncode == 2
    assert proc.stderr == "sandbox: error: must run as root (systemd-nspawn, mounts and bridges need it)\n"
    assert_nothing_created(tmp_path)


def test_wait_gone_returns_only_when_no_matching_process_is_left():
    needle = "sandbox-wait-gone-%d" % os.getpid()
    # exec -a names the process; it ignores SIGTERM, as a machine busy tearing down would.
    proc = subprocess.Popen(["bash", "-c", "trap '' TERM; exec -a %s sleep 60" % needle])
    try:
        deadline = time.monotonic() + 5
        while not sandbox.live_processes([needle]) and time.monotonic() < deadline:
            pass
        assert list(sandbox.live_processes([needle])) == [proc.pid]
        sandbox.wait_gone([needle], timeout=0.2)  # still there at the deadline: killed, then gone
        assert sandbox.live_processes([needle]) == {}
    finally:
        proc.kill()
        proc.wait()


def test_the_inotify_limit_is_raised_for_the_nodes_and_never_lowered(tmp_path, capsys):
    # At the kernel's default of 128 the 21st node's systemd failed: "Failed to allocate manager object".
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    sandbox.ensure_inotify(32, limit)
    assert int(limit.read_text()) == 128 + 12 * 33 and "from 128 to 524" in capsys.readouterr().out
    sandbox.ensure_inotify(2, limit)
    assert int(limit.read_text()) == 524  # enough already: left as it is
    limit.write_text("8192\n")
    sandbox.ensure_inotify(32, limit)
    assert int(limit.read_text()) == 8192 and capsys.readouterr().out == ""


def test_a_recap_is_read_with_or_without_colour_codes():
    import harness  # beside sandbox.py, on the same path

    plain = "PLAY RECAP ***\nnode1                      : ok=31   changed=0    unreachable=0\nnode2 : ok=3 changed=2\n"
    coloured = "\x1b[0;32mnode1\x1b[0m                      : \x1b[0;32mok=31  \x1b[0m \x1b[0;33mchanged=4\x1b[0m\n"
    assert harness.recap_changed(plain) == 0 and harness.recap_changed(plain, "node2") == 2
    assert harness.recap_changed(coloured) == 4
