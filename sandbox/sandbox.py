#!/usr/bin/env python3
"""The sandbox cluster: real Debian 12 nodes on this machine, without Docker or a GPU.

Each node is a systemd-nspawn machine booting real systemd as PID 1 on its own overlay of one
cached debootstrap image, attached to a private bridge with a static address in the RFC 2544
benchmarking range (198.18.0.0/24), which cannot collide with a site's real networks. Nodes have
no route out: they get Debian packages and Python wheels from the host over the bridge, the way an
air-gapped site does: apt-cacher-ng (bound to the bridge, serving only this machine's own APT
sources) and Python's stock HTTP server for the wheelhouse.

    sandbox.py up --nodes N     boot node1..nodeN plus ``outsider``; a no-op when already so
    sandbox.py down             stop everything; no process, mount, link or proxy is left
    sandbox.py status           one line per node; exit 1 when a node is not up
    sandbox.py image            build (or rebuild) the cached image only
    sandbox.py wheelhouse -r F  download the wheels in requirements file F for the nodes
    sandbox.py seed NODE        keep NODE's changes to the image as a seed layer (benchmarks)
    sandbox.py up --seed ...    boot the nodes on the image plus that layer: what NODE installed
                                (--seed-if-current: only when that layer is the current image's)
                                (packages, the venv) is there on every node without a download

`up` raises the host's fs.inotify.max_user_instances where the nodes need more than it allows
(about 10 each; the kernel's default of 128 stops at 20 nodes) and says so; `down` leaves it.
Standard library only: it runs with the host's python3 before any venv exists.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SANDBOX_CACHE", "/var/cache/onprem-torchrun-sandbox"))
STATE = Path(os.environ.get("SANDBOX_STATE", "/var/lib/onprem-torchrun-sandbox"))
DEFAULT_INVENTORY = REPO / "inventories" / "sandbox" / "hosts.yml"

BRIDGE = "trbr0"
PREFIX = "198.18.0"
HOST_ADDR = PREFIX + ".1"
OUTSIDER_ADDR = PREFIX + ".250"
PROXY_PORT = 3142  # apt-cacher-ng, the nodes' APT proxy
WHEEL_PORT = 3143  # python3 -m http.server over the wheelhouse (pip --find-links)
WHEEL_URL = "http://%s:%d/" % (HOST_ADDR, WHEEL_PORT)
# Shared storage, as a site's NFS export with root_squash (the NFS server's default): a host folder
# (SHARED_DISK), seen through a FUSE file system (squashfs.py) that does every operation as its caller
# and makes root nobody, mounted at SHARED_DIR and bound into every cluster node (not the outsider).
# Root on a node has no more rights there than nobody: the job's own user writes its files.
SHARED_DISK = STATE / "shared-disk"
SHARED_DIR = STATE / "shared"
SHARED_MOUNT = "/srv/shared"
SQUASHFS = REPO / "sandbox" / "squashfs.py"
SQUASHFS_PID = STATE / "squashfs.pid"
MAX_NODES = 32
# Every node's systemd (its manager, logind, dbus) holds about ten inotify instances, all counted
# against root on the host: at the kernel's default of 128 per user the 21st node's systemd fails
# with "Failed to allocate manager object". `up` raises the limit to this per node (never lowers it).
INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_BASE, INOTIFY_PER_NODE = 128, 12
SUITE = "bookworm"  # Debian 12
IMAGE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "openssh-server", "python3",
    "python3-apt", "iproute2", "procps", "ca-certificates",
    "crun",  # the OCI runtime of the site's docker configuration (DOCKER_CONF); podman brings its own
)
REQUIRED_TOOLS = ("debootstrap", "systemd-nspawn", "ip", "ssh", "ssh-keygen", "mount", "umount", "chroot", "apt-cacher-ng")
BOOT_TIMEOUT = 90
CGROUP_GROUP = "onprem-torchrun-sandbox"


class SandboxError(Exception):
    """A problem reported to the user as one line, without a traceback."""


def log(msg: str) -> None:
    print("sandbox: " + msg, flush=True)


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise SandboxError("'%s' failed: %s" % (" ".join(cmd), detail[-1] if detail else proc.returncode))
    return proc


# ---- naming -----------------------------------------------------------------------------------
def node_names(count: int) -> list[str]:
    return ["node%d" % i for i in range(1, count + 1)]


def address_of(name: str) -> str:
    if name == "outsider":
        return OUTSIDER_ADDR
    return "%s.%d" % (PREFIX, 10 + int(name[len("node"):]))


def parse_nodes(value: str) -> int:
    if not re.fullmatch(r"[0-9]+", value.strip()):
        raise SandboxError("NODES must be a whole number from 1 to %d, got %r" % (MAX_NODES, value))
    count = int(value)
    if not 1 <= count <= MAX_NODES:
        raise SandboxError("NODES must be from 1 to %d, got %d" % (MAX_NODES, count))
    return count


# ---- the machine's own package sources ------------------------------------------------------
def host_codename(etc: Path = Path("/etc")) -> str:
    text = (etc / "os-release").read_text()
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    return match.group(1) if match else SUITE


def apt_sources(etc: Path = Path("/etc")) -> list[dict]:
    """Debian archive entries of this machine's APT configuration, as deb822 stanzas.

    Both formats are read (one-line ``sources.list`` and deb822 ``*.sources``); disabled
    entries, deb-src and non-Debian repositories (no ``main`` component) are left out. The
    host's codename is mapped to the nodes' suite so a Debian 13 host still builds Debian 12.
    """
    files = [etc / "apt" / "sources.list"] + sorted((etc / "apt" / "sources.list.d").glob("*"))
    stanzas: list[dict] = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for block in re.split(r"\n\s*\n", text):
                fields = {}
                for line in block.splitlines():
                    if line.startswith("#") or ":" not in line or line[0].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no" or "uris" not in fields:
                    continue
                stanzas.append({
                    "types": fields.get("types", "deb").split(),
                    "uris": fields["uris"].split(),
                    "suites": fields.get("suites", "").split(),
                    "components": fields.get("components", "").split(),
                })
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(line) >= 4 and line[0] in ("deb", "deb-src"):
                    stanzas.append({"types": [line[0]], "uris": [line[1]], "suites": [line[2]], "components": line[3:]})
    codename = host_codename(etc)
    result = []
    for stanza in stanzas:
        if "deb" not in stanza["types"] or "main" not in stanza["components"]:
            continue
        suites = [s.replace(codename, SUITE) for s in stanza["suites"]]
        if not any(s.startswith(SUITE) for s in suites):
            continue
        result.append({"uris": stanza["uris"], "suites": suites, "components": ["main"]})
    if not result:
        raise SandboxError("no Debian archive found in this machine's APT sources (%s)" % (etc / "apt"))
    return result


def archive_mirror(sources: list[dict]) -> str:
    for stanza in sources:
        if SUITE in stanza["suites"]:
            return stanza["uris"][0]
    raise SandboxError("no APT source for suite %s in this machine's APT configuration" % SUITE)


def node_uri(uri: str) -> str:
    """The URI a node asks the APT proxy for: plain HTTP (the proxy fetches an https:// source over HTTPS)."""
    return re.sub(r"^https://", "http://", uri)


def render_sources(sources: list[dict]) -> str:
    blocks = []
    for stanza in sources:
        blocks.append("Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" % (
            " ".join(node_uri(u) for u in stanza["uris"]), " ".join(stanza["suites"]), " ".join(stanza["components"])))
    return "# Written by the sandbox from the host's APT sources; fetched through the host's proxy.\n" + "\n".join(blocks)


def acng_config(sources: list[dict]) -> str:
    """apt-cacher-ng's configuration: on the bridge only, no tunnels, and only this machine's own sources.

    ForceManaged refuses every URL that no Remap- line names, so the nodes reach the archives this
    machine uses and nothing else (403); PassThroughPattern ^$ refuses every CONNECT tunnel.
    """
    uris = sorted({u.rstrip("/") for stanza in sources for u in stanza["uris"] if re.match(r"https?://", u)})
    lines = [
        "# Written by sandbox/sandbox.py; the sandbox's own apt-cacher-ng, not the system's service.",
        "CacheDir: %s" % (CACHE / "apt-cacher-ng"),
        "LogDir: %s" % (STATE / "apt-cacher-ng"),
        "PidFile: %s" % (STATE / "apt-cacher-ng" / "pid"),
        "SocketPath: %s" % (STATE / "apt-cacher-ng" / "socket"),
        "BindAddress: %s" % HOST_ADDR,
        "Port: %d" % PROXY_PORT,
        "ForeGround: 1",
        "ForceManaged: 1",
        "PassThroughPattern: ^$",
        "ExThreshold: 4",
        # Bounded upstream: a mirror that stops sending fails the node's fetch in a minute, not never.
        "NetworkTimeout: 60",
    ]
    lines += ["Remap-source%d: %s ; %s" % (i, re.sub(r"^https?://", "", uri), uri) for i, uri in enumerate(uris)]
    return "\n".join(lines) + "\n"


# ---- preflight --------------------------------------------------------------------------------
def ensure_inotify(count: int, path: Path = INOTIFY) -> None:
    """Raise fs.inotify.max_user_instances to what ``count`` nodes and the outsider need."""
    need = INOTIFY_BASE + INOTIFY_PER_NODE * (count + 1)
    have = int(path.read_text().strip())
    if have < need:
        path.write_text("%d\n" % need)
        log("raised fs.inotify.max_user_instances from %d to %d (%d nodes: about 10 each)" % (have, need, count))


def preflight() -> None:
    if os.geteuid() != 0:
        raise SandboxError("must run as root (systemd-nspawn, mounts and bridges need it)")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise SandboxError("missing tools: %s (apt-get install debootstrap systemd-container iproute2 openssh-client)" % ", ".join(missing))


@contextlib.contextmanager
def locked():
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# ---- the cached image -------------------------------------------------------------------------
# The site's podman configuration on every node, for torchrun_runtime=podman (a site sets its own):
# inside systemd-nspawn the cgroup controllers are read-only, the session keyring is refused
# (seccomp) and the root is an overlay (no overlay driver on top), so containers run in the unit's
# own cgroup, without a keyring, on the vfs driver; with crun, and rlimits the nodes already have
# (raising them needs CAP_SYS_RESOURCE, which the nodes lack).
PODMAN_CONF = {
    "containers.conf": "# Sandbox nodes are systemd-nspawn machines (sandbox/sandbox.py).\n[containers]\nkeyring = false\n"
                       'cgroups = "disabled"\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
                       '[engine]\nruntime = "crun"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
    "storage.conf": '# Sandbox nodes are systemd-nspawn machines on an overlay root (sandbox/sandbox.py).\n[storage]\ndriver = "vfs"\n'
                    'runroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n',
}

# The site's docker configuration, for torchrun_runtime=docker, on the same grounds: crun without
# cgroups, through a wrapper that asks it for no new session keyring (docker has no setting for
# either), the vfs driver, and no bridge or iptables rules of docker's own (the job uses the host's
# network; the node's firewall is the collection's). Written before docker.io is installed, as a
# site's configuration management would.
DOCKER_CONF = {
    "etc/docker/daemon.json": json.dumps({"storage-driver": "vfs", "iptables": False, "ip6tables": False, "bridge": "none",
                                          "default-runtime": "crun-nspawn",
                                          "runtimes": {"crun-nspawn": {"path": "/usr/local/bin/crun-nspawn"}}}, indent=2) + "\n",
    "usr/local/bin/crun-nspawn": "#!/bin/sh\n# Sandbox nodes are systemd-nspawn machines (sandbox/sandbox.py): crun without cgroups and\n"
                                 "# without a new session keyring, which docker cannot ask for.\n"
                                 "for arg; do\n  shift\n"
                                 '  case "$arg" in create|run) set -- "$@" "$arg" --no-new-keyring ;; *) set -- "$@" "$arg" ;; esac\n'
                                 'done\nexec /usr/bin/crun --cgroup-manager=disabled "$@"\n',
}


def image_recipe(sources: list[dict]) -> str:
    recipe = {"suite": SUITE, "packages": IMAGE_PACKAGES, "sources": sources, "proxy": HOST_ADDR, "podman": PODMAN_CONF,
              "docker": DOCKER_CONF, "v": 4}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def image_dir() -> Path:
    return CACHE / "image"


def image_current(sources: list[dict]) -> bool:
    stamp = image_dir() / ".sandbox-recipe"
    return stamp.is_file() and stamp.read_text().strip() == image_recipe(sources)


def build_image(sources: list[dict]) -> None:
    tmp = CACHE / "image.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    CACHE.mkdir(parents=True, exist_ok=True)
    mirror = archive_mirror(sources)
    log("building the Debian 12 image with debootstrap (once; about a minute)")
    logfile = CACHE / "debootstrap.log"
    with open(logfile, "w") as out:
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=" + ",".join(IMAGE_PACKAGES), SUITE, str(tmp), mirror],
            stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SandboxError("debootstrap failed; see %s" % logfile)
    run(["chroot", str(tmp), "systemctl", "enable", "systemd-networkd"])
    for key in (tmp / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (tmp / "etc" / "ssh" / "sshd_config.d" / "10-sandbox.conf").write_text(
        "# Sandbox: one host key per node, made when the node is created.\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nUseDNS no\n")
    (tmp / "etc" / "apt" / "apt.conf.d" / "01sandbox-proxy").write_text(
        "// Sandbox nodes have no route out: packages come from the host over the bridge.\n"
        'Acquire::http::Proxy "http://%s:%d/";\nAcquire::https::Proxy "http://%s:%d/";\n'
        % (HOST_ADDR, PROXY_PORT, HOST_ADDR, PROXY_PORT))
    (tmp / "etc" / "containers").mkdir(exist_ok=True)
    for name, text in PODMAN_CONF.items():
        (tmp / "etc" / "containers" / name).write_text(text)
    for name, text in DOCKER_CONF.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)
        (tmp / name).chmod(0o755 if name.startswith("usr/local/bin/") else 0o644)
    with contextlib.suppress(FileNotFoundError):
        (tmp / "etc" / "apt" / "sources.list").unlink()
    (tmp / "etc" / "apt" / "sources.list.d" / "debian.sources").write_text(render_sources(sources))
    shutil.rmtree(tmp / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (tmp / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)
    # No package lists yet, and an old date on the folder, so `apt update_cache cache_valid_time=...`
    # knows the cache is stale, as on a machine that has not been updated in a long time.
    run(["chroot", str(tmp), "apt-get", "clean"])
    os.utime(tmp / "var" / "lib" / "apt" / "lists", (0, 0))
    (tmp / "etc" / "machine-id").write_text("")
    (tmp / ".sandbox-recipe").write_text(image_recipe(sources) + "\n")
    if image_dir().exists():
        shutil.rmtree(image_dir())
    tmp.rename(image_dir())
    log("image ready in %s" % image_dir())


# ---- processes and mounts ---------------------------------------------------------------------
def pid_alive(pidfile: Path, needle: str) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if needle in cmdline else None


def terminate(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path("/proc/%d" % pid).exists() or Path("/proc/%d/status" % pid).read_text().find("State:\tZ") >= 0:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def live_processes(needles: list[str]) -> dict[int, str]:
    """Processes (not zombies) whose command line holds any of needles, by PID."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            zombie = "State:\tZ" in (entry / "status").read_text()
        except OSError:
            continue
        if not zombie and any(needle in cmdline for needle in needles):
            found[int(entry.name)] = cmdline.strip()
    return found


def wait_gone(needles: list[str], timeout: float) -> None:
    """Return once no live process matches needles: SIGKILL what is left at the deadline, and fail
    naming what even that did not end."""
    deadline = time.monotonic() + timeout
    while (left := live_processes(needles)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while (left := live_processes(needles)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        raise SandboxError("still running after down: " + "; ".join("%d %s" % item for item in sorted(left.items())))


def mounts_under(path: Path) -> list[str]:
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target == str(path) or target.startswith(str(path) + "/"):
            found.append(target)
    return sorted(found, key=len, reverse=True)


def unmount_all(path: Path) -> None:
    for target in mounts_under(path):
        if subprocess.run(["umount", target], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", target], capture_output=True)


def port_open(addr: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(8).startswith(b"SSH-") if port == 22 else True
    except OSError:
        return False


# ---- bridge and package proxy -----------------------------------------------------------------
def ensure_bridge() -> None:
    if run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addrs = run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE]).stdout
    if HOST_ADDR + "/24" not in addrs:
        run(["ip", "addr", "add", HOST_ADDR + "/24", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


# The host-side services the nodes use: name -> (pidfile, what its command line holds, port).
SERVICES = {
    "apt-cacher-ng": (STATE / "apt-cacher-ng.pid", "apt-cacher-ng", PROXY_PORT),
    "wheelhouse": (STATE / "wheelhouse.pid", "http.server %d" % WHEEL_PORT, WHEEL_PORT),
}


def service_commands(sources: list[dict]) -> dict[str, list[str]]:
    conf = STATE / "apt-cacher-ng" / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (CACHE / "apt-cacher-ng").mkdir(parents=True, exist_ok=True)
    (CACHE / "wheels").mkdir(parents=True, exist_ok=True)
    (conf / "acng.conf").write_text(acng_config(sources))
    return {
        "apt-cacher-ng": [shutil.which("apt-cacher-ng") or "/usr/sbin/apt-cacher-ng", "-c", str(conf)],
        "wheelhouse": [sys.executable, "-m", "http.server", str(WHEEL_PORT), "--bind", HOST_ADDR, "--directory", str(CACHE / "wheels")],
    }


def squashfs_python() -> str:
    """A Python with fusepy: the checkout's toolchain (make venv), else this one."""
    for python in (REPO / ".venv" / "bin" / "python", Path(sys.executable)):
        if python.exists() and subprocess.run([str(python), "-c", "import fuse"], capture_output=True).returncode == 0:
            return str(python)
    raise SandboxError("the shared storage needs fusepy and libfuse2 (make venv deps installs them)")


def shared_mounted() -> bool:
    return any(line.split()[1] == str(SHARED_DIR) and line.split()[2].startswith("fuse")
               for line in Path("/proc/mounts").read_text().splitlines())


def ensure_shared() -> None:
    """Mount the root-squashed shared storage unless it is mounted (world-writable and sticky like /tmp:
    every job's user may make its folder there, whatever its uid)."""
    if shared_mounted():
        return
    if not Path("/dev/fuse").exists():
        raise SandboxError("the shared storage is a FUSE file system and this host has no /dev/fuse (modprobe fuse)")
    SHARED_DISK.mkdir(parents=True, exist_ok=True)
    SHARED_DISK.chmod(0o1777)
    SHARED_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE / "squashfs.log", "a") as out:
        proc = subprocess.Popen([squashfs_python(), str(SQUASHFS), str(SHARED_DISK), str(SHARED_DIR)], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, start_new_session=True)
    SQUASHFS_PID.write_text("%d\n" % proc.pid)
    deadline = time.monotonic() + 10
    while not shared_mounted():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SandboxError("the shared storage did not mount on %s; see %s" % (SHARED_DIR, STATE / "squashfs.log"))
        time.sleep(0.1)


def stop_shared() -> None:
    if shared_mounted() and subprocess.run(["umount", str(SHARED_DIR)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(SHARED_DIR)], capture_output=True)
    pid = pid_alive(SQUASHFS_PID, "squashfs.py")
    if pid:
        terminate(pid, 5)
    SQUASHFS_PID.unlink(missing_ok=True)


def ensure_proxy(sources: list[dict]) -> None:
    """Start the APT proxy and the wheelhouse server unless they run (a changed source list restarts the proxy)."""
    before = (STATE / "apt-cacher-ng" / "conf" / "acng.conf").read_text() if (STATE / "apt-cacher-ng" / "conf" / "acng.conf").exists() else ""
    commands = service_commands(sources)
    for name, (pidfile, needle, port) in SERVICES.items():
        pid = pid_alive(pidfile, needle)
        fresh = name != "apt-cacher-ng" or before == acng_config(sources)
        if pid and fresh and port_open(HOST_ADDR, port):
            continue
        if pid:
            terminate(pid, 5)
        with open(STATE / ("%s.log" % name), "a") as out:
            proc = subprocess.Popen(commands[name], stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        pidfile.write_text("%d\n" % proc.pid)
        deadline = time.monotonic() + 10
        while not port_open(HOST_ADDR, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SandboxError("%s did not start on %s:%d; see %s" % (name, HOST_ADDR, port, STATE / ("%s.log" % name)))
            time.sleep(0.1)


# What an earlier version ran in their place, stopped by down as well.
LEGACY_SERVICES = ((STATE / "pkgproxy.pid", "pkgproxy.py", PROXY_PORT),)


def stop_proxy() -> None:
    for pidfile, needle, _port in list(SERVICES.values()) + list(LEGACY_SERVICES):
        pid = pid_alive(pidfile, needle)
        if pid:
            terminate(pid, 5)
        pidfile.unlink(missing_ok=True)


# ---- nodes ------------------------------------------------------------------------------------
def node_dir(name: str) -> Path:
    return STATE / "nodes" / name


def node_running(name: str) -> bool:
    root = node_dir(name) / "root"
    return (pid_alive(node_dir(name) / "pid", "-M " + name + " ") is not None
            and str(root) in mounts_under(root) and port_open(address_of(name), 22))


def stop_node(name: str) -> None:
    pid = pid_alive(node_dir(name) / "pid", "-M " + name + " ")
    if pid:
        terminate(pid, 30)
    remove_cgroups(cgroup_dirs(name))
    unmount_all(node_dir(name))
    if run(["ip", "link", "show", "vb-" + name], check=False).returncode == 0:
        run(["ip", "link", "del", "vb-" + name], check=False)
    shutil.rmtree(node_dir(name), ignore_errors=True)


def cgroup_dirs(name: str, mounts: str = "/proc/self/mounts") -> list[Path]:
    """The node's own cgroup in each hierarchy systemd keeps its units in (v2, and v1 name=systemd).

    nspawn puts the machine in a "payload" cgroup beside its own; were every node started from the
    same cgroup, all would share one tree, and one node's systemd would remove another's unit
    cgroups under it (seen: "Failed to attach to cgroup ... No such file or directory", 219/CGROUP).
    """
    found = []
    with open(mounts) as table:
        for line in table:
            _, where, kind, options = line.split()[:4]
            if kind == "cgroup2" or (kind == "cgroup" and "name=systemd" in options.split(",")):
                found.append(Path(where) / CGROUP_GROUP / name)
    return found


def in_own_cgroups(dirs: list[Path], cmd: list[str]) -> list[str]:
    """cmd, run by a shell that first moves itself into each of dirs (made here)."""
    for group in dirs:
        group.mkdir(parents=True, exist_ok=True)
    # A reboot inside the node (systemd's reboot, as ansible.builtin.reboot asks) ends nspawn with 133,
    # as systemd-nspawn@.service restarts on: the shell boots the node again on the same disk. A
    # SIGTERM to the shell (stop, down, the sandbox's own reboot) reaches nspawn, a clean poweroff.
    enter = ('for g in %s; do echo $$ > "$g/cgroup.procs" || exit 1; done; '
             'trap \'kill -TERM $child 2>/dev/null; wait $child; exit 0\' TERM INT; '
             'while :; do "$@" & child=$!; wait $child; rc=$?; [ $rc -eq 133 ] || exit $rc; done') % " ".join(
        shlex.quote(str(g)) for g in dirs)
    return ["sh", "-c", enter, "sh", *cmd]


def cgroup_nodes() -> list[str]:
    """Nodes that still have a cgroup here, their state gone or not (a killed run)."""
    roots = {group.parent for group in cgroup_dirs("any")}
    return sorted({p.name for root in roots if root.is_dir() for p in root.iterdir() if p.is_dir()})


def cgroup_pids(dirs: list[Path]) -> set[int]:
    pids = set()
    for group in dirs:
        for procs in group.rglob("cgroup.procs") if group.is_dir() else ():
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs.read_text().split())
    return pids - {os.getpid()}


def remove_cgroups(dirs: list[Path], timeout: float = 10) -> None:
    """Kill what is left in the node's cgroups and remove them.

    A SIGKILLed nspawn leaves the machine's own processes (its systemd, sshd...) running: only its
    cgroup still knows them.
    """
    deadline = time.monotonic() + timeout
    while (pids := cgroup_pids(dirs)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for group in dirs:
        for sub in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                sub.rmdir()
        for parent in (group, group.parent):
            with contextlib.suppress(OSError):
                parent.rmdir()


def hosts_file(name: str, names: list[str]) -> str:
    lines = ["127.0.0.1\tlocalhost",
             "# Debian's installer maps the host's own name to 127.0.1.1; the sandbox keeps that trap.",
             "127.0.1.1\t%s" % name,
             "::1\tlocalhost ip6-localhost ip6-loopback",
             "%s\tsandbox-host" % HOST_ADDR]
    lines += ["%s\t%s" % (address_of(peer), peer) for peer in names]
    return "\n".join(lines) + "\n"


def seed_dir() -> Path:
    return CACHE / "seed"


# What makes a node itself: left out of a seed, written again when each node is created.
SEED_EXCLUDES = ("/etc/hostname", "/etc/hosts", "/etc/machine-id", "/etc/ssh/ssh_host_*", "/root/.ssh",
                 "/etc/systemd/network/10-host0.network", "/var/log/journal", "/var/lib/systemd/random-seed")


def lower_layers(name: str) -> str:
    """The read-only layers of the node's root, top first: the seed when the node was made with one."""
    layers = [image_dir()]
    if (node_dir(name) / "seeded").exists():
        layers.insert(0, seed_dir())
    return ":".join(str(layer) for layer in layers)


def mount_root(name: str) -> Path:
    base = node_dir(name)
    for sub in ("upper", "work", "root"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "overlay", "overlay", "-o",
         "lowerdir=%s,upperdir=%s,workdir=%s" % (lower_layers(name), base / "upper", base / "work"), str(base / "root")])
    return base / "root"


def start_node(name: str, names: list[str], pubkey: str, seeded: bool = False) -> subprocess.Popen:
    if seeded:
        node_dir(name).mkdir(parents=True, exist_ok=True)
        (node_dir(name) / "seeded").write_text("")
    root = mount_root(name)
    (root / "etc" / "hostname").write_text(name + "\n")
    (root / "etc" / "hosts").write_text(hosts_file(name, names))
    # The package host's own server (wheels, the NVIDIA-shaped repository) is on the node's LAN, as a
    # site's mirror is: reached directly, not through the APT proxy.
    (root / "etc" / "apt" / "apt.conf.d" / "02sandbox-package-host").write_text(
        '// The sandbox package host serves its own files directly.\nAcquire::http::Proxy::%s "DIRECT";\n' % HOST_ADDR)
    (root / "etc" / "systemd" / "network" / "10-host0.network").write_text(
        "[Match]\nName=host0\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n" % address_of(name))
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(pubkey)
    (ssh_dir / "authorized_keys").chmod(0o600)
    hostkey = root / "etc" / "ssh" / "ssh_host_ed25519_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@" + name, "-f", str(hostkey)])
    return boot_node(name)


def boot_node(name: str) -> subprocess.Popen:
    base = node_dir(name)
    root = base / "root"
    cmd = ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit", "-D", str(root), "-M", name,
           "--network-bridge=" + BRIDGE, "--console=read-only", "--link-journal=no", "--resolv-conf=off",
           "--timezone=off"]
    if name != "outsider":
        ensure_shared()
        cmd.append("--bind=%s:%s" % (SHARED_DIR, SHARED_MOUNT))
    with open(base / "console.log", "w") as out:
        proc = subprocess.Popen(in_own_cgroups(cgroup_dirs(name), cmd), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, start_new_session=True)
    (base / "pid").write_text("%d\n" % proc.pid)
    return proc


def console_tail(name: str, lines: int = 5) -> str:
    log_file = node_dir(name) / "console.log"
    with contextlib.suppress(OSError):
        tail = log_file.read_text(errors="replace").splitlines()[-lines:]
        if tail:
            return "; its console ends:\n  " + "\n  ".join(tail)
    return "; %s is empty" % log_file


def wait_ready(name: str, proc: subprocess.Popen, deadline: float) -> None:
    """Wait for the node's systemd to finish booting; fail at once if its nspawn exits.

    The handle, not /proc/PID/cmdline, tells whether nspawn lives: right after the Popen the
    wrapper shell is in the middle of exec'ing nspawn, and its cmdline reads empty for an instant
    (seen: a healthy node reported as "exited while booting", one start in about ten).
    """
    ssh = ssh_command(name) + ["systemctl is-system-running --wait >/dev/null; true"]
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError("%s exited while booting (status %s)%s" % (name, proc.returncode, console_tail(name)))
        if port_open(address_of(name), 22):
            with contextlib.suppress(subprocess.TimeoutExpired):
                if subprocess.run(ssh, capture_output=True, timeout=60).returncode == 0:
                    return
        time.sleep(0.5)
    raise SandboxError("%s did not answer on SSH within %ds%s" % (name, BOOT_TIMEOUT, console_tail(name)))


def ssh_command(name: str) -> list[str]:
    return ["ssh", "-i", str(STATE / "id_ed25519"), "-o", "UserKnownHostsFile=%s" % (STATE / "known_hosts"),
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "root@" + address_of(name)]


def ensure_key() -> str:
    key = STATE / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "onprem-torchrun-sandbox", "-f", str(key)])
    return (STATE / "id_ed25519.pub").read_text()


def write_known_hosts(names: list[str]) -> None:
    lines = []
    for name in names:
        pub = (node_dir(name) / "root" / "etc" / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
        lines.append("%s,%s %s %s" % (name, address_of(name), pub[0], pub[1]))
    (STATE / "known_hosts").write_text("\n".join(lines) + "\n")


# The training image (sandbox/container_image.py) the nodes load for torchrun_runtime=podman.
CONTAINER_ARCHIVE = CACHE / "torchrun-sandbox-image.tar"
NVIDIA_REPO_URL = WHEEL_URL + "nvidia/"  # the sandbox's NVIDIA-shaped repository (sandbox/nvidia_repo.py)


def ensure_nvidia_repo() -> None:
    """Build the NVIDIA-shaped APT repository into the package host's folder, unless it is current
    (same builder, fixture and kernel)."""
    import nvidia_repo  # beside this file

    stamp_text = hashlib.sha256(Path(nvidia_repo.__file__).read_bytes() + nvidia_repo.FIXTURE.read_bytes()
                                + os.uname().release.encode()).hexdigest()
    stamp = CACHE / "wheels" / "nvidia" / ".stamp"
    if stamp.exists() and stamp.read_text() == stamp_text:
        return
    for tool in ("dpkg-deb", "dpkg-scanpackages", "gpg", "objcopy"):
        if not shutil.which(tool):
            raise SandboxError("the NVIDIA repository needs %s on this machine (dpkg-dev, gnupg, binutils)" % tool)
    folder = nvidia_repo.build(CACHE / "wheels" / "nvidia", STATE / "nvidia-key")
    stamp.write_text(stamp_text)
    log("NVIDIA repository: %s at %s%s" % (folder, NVIDIA_REPO_URL, nvidia_repo.DISTRO))


def write_inventory(path: Path, nodes: list[str], nvidia: bool = False) -> None:
    def hosts(names: list[str]) -> str:
        return "".join("        %s:\n          ansible_host: %s\n" % (n, address_of(n)) for n in names)

    text = (
        "# Generated by sandbox/sandbox.py; do not edit (make sandbox rewrites it).\n"
        "all:\n"
        "  vars:\n"
        "    ansible_user: root\n"
        "    ansible_python_interpreter: /usr/bin/python3\n"
        "    ansible_ssh_private_key_file: %s\n"
        "    ansible_ssh_common_args: >-\n"
        "      -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes\n"
        "    sandbox_package_host: \"%s:%d\"\n"
        "    sandbox_wheelhouse_url: \"%s\"\n"
        "%s"
        "  children:\n"
        "    trainers:\n"
        "      hosts:\n%s"
        "    outsiders:\n"
        "      hosts:\n%s"
    ) % (STATE / "id_ed25519", STATE / "known_hosts", HOST_ADDR, PROXY_PORT, WHEEL_URL,
         ('    # make sandbox NVIDIA_REPO=1: the NVIDIA-shaped repository (sandbox/nvidia_repo.py)\n'
          '    nvidia_cuda_repo_url: "%s"\n' % NVIDIA_REPO_URL) if nvidia else "", hosts(nodes), hosts(["outsider"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def existing_nodes() -> list[str]:
    base = STATE / "nodes"
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


# ---- commands ---------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    count = parse_nodes(args.nodes)
    preflight()
    sources = apt_sources()
    nodes = node_names(count)
    wanted = nodes + ["outsider"]
    with locked():
        if not image_current(sources):
            for name in existing_nodes():
                stop_node(name)
            build_image(sources)
        if args.seed_if_current:
            args.seed = seed_current(sources)
            log("booting new nodes on the %s" % ("seed layer" if args.seed else "bare image (no seed layer for it)"))
        if args.seed and not seed_current(sources):
            raise SandboxError("no seed layer for the current image; `seed NODE` makes one from a set-up node")
        pubkey = ensure_key()
        ensure_inotify(count)
        ensure_bridge()
        ensure_proxy(sources)
        ensure_shared()
        for name in existing_nodes():
            if name not in wanted:
                log("stopping %s (not in a %d-node sandbox)" % (name, count))
                stop_node(name)
        started = {}
        for name in wanted:
            if node_running(name):
                continue
            stop_node(name)  # leftovers of a crash or a killed run
            started[name] = start_node(name, nodes, pubkey, seeded=args.seed and name != "outsider")
        write_known_hosts(wanted)
        deadline = time.monotonic() + BOOT_TIMEOUT + 3 * len(started)  # two cores boot 17 nodes slowly
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: wait_ready(n, started[n], deadline), started))
        if args.nvidia_repo:
            ensure_nvidia_repo()
        write_inventory(Path(args.inventory), nodes, nvidia=args.nvidia_repo)
    if started:
        log("up: %s (%s)" % (", ".join("%s=%s" % (n, address_of(n)) for n in wanted), "started " + ", ".join(started)))
    else:
        log("already up with %d nodes and the outsider; nothing to do" % count)
    log("inventory: %s" % args.inventory)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    preflight()
    with locked():
        names = sorted(set(existing_nodes()) | set(cgroup_nodes()))
        pids = [pid_alive(node_dir(n) / "pid", "-M " + n + " ") for n in names]
        for pid in filter(None, pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for name in names:
            stop_node(name)
        stop_proxy()
        stop_shared()
        # nspawn and the proxy can still be exiting (tearing down the machine's namespaces): down
        # returns only when no process of the sandbox is left.
        wait_gone(["-M %s " % name for name in names] + [needle for _pidfile, needle, _port in SERVICES.values()], 30)
        if run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            run(["ip", "link", "del", BRIDGE])
        unmount_all(STATE)
        for leftover in ("nodes", "known_hosts", "shared", "shared-disk"):
            path = STATE / leftover
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        Path(args.inventory).unlink(missing_ok=True)
    log("down: no node, mount, link or proxy left" if names else "down: nothing was running")
    return 0


def cmd_reboot(args: argparse.Namespace) -> int:
    """Power a node off cleanly and boot it again on the same disk, as a real reboot would."""
    preflight()
    with locked():
        if args.node not in existing_nodes() or not node_running(args.node):
            raise SandboxError("%s is not running; `up` starts it" % args.node)
        pid = pid_alive(node_dir(args.node) / "pid", "-M " + args.node + " ")
        terminate(pid, 60)  # nspawn turns SIGTERM into a clean poweroff of the machine
        remove_cgroups(cgroup_dirs(args.node))
        unmount_all(node_dir(args.node))
        mount_root(args.node)
        wait_ready(args.node, boot_node(args.node), time.monotonic() + BOOT_TIMEOUT)
    log("rebooted %s" % args.node)
    return 0


def cmd_fail(args: argparse.Namespace) -> int:
    """A server dies for good: the node is cut off at once and its disk is gone. `up` then boots
    a blank replacement under the same name and address, with a new SSH host key."""
    preflight()
    with locked():
        if args.node not in existing_nodes():
            raise SandboxError("%s is not a node of the sandbox" % args.node)
        pid = pid_alive(node_dir(args.node) / "pid", "-M " + args.node + " ")
        if pid:
            os.kill(pid, signal.SIGKILL)  # no clean poweroff: the machine's processes die with their cgroups
        stop_node(args.node)
    log("%s failed: powered off, disk gone; `up` boots a blank replacement" % args.node)
    return 0


def seed_current(sources: list[dict]) -> bool:
    stamp = seed_dir() / ".sandbox-recipe"
    return stamp.is_file() and stamp.read_text().strip() == image_recipe(sources)


def cmd_seed(args: argparse.Namespace) -> int:
    """Copy what a node changed on the image (its overlay's upper layer) into the seed layer.

    Whiteouts and opaque folders are kept (rsync -aHAX as root), so the seed stacks between the
    image and a new node's own layer as the node's upper layer did. The node keeps running; copy
    it when it is idle (after a converge).
    """
    preflight()
    sources = apt_sources()
    with locked():
        if args.node not in existing_nodes() or not node_running(args.node):
            raise SandboxError("%s is not running" % args.node)
        if (node_dir(args.node) / "seeded").exists():
            raise SandboxError("%s was itself made from the seed; seed from a node made without it" % args.node)
        tmp = CACHE / "seed.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        excludes = [arg for path in SEED_EXCLUDES for arg in ("--exclude", path)]
        run(["rsync", "-aHAX", *excludes, str(node_dir(args.node) / "upper") + "/", str(tmp) + "/"])
        (tmp / ".sandbox-recipe").write_text(image_recipe(sources) + "\n")
        shutil.rmtree(seed_dir(), ignore_errors=True)
        tmp.rename(seed_dir())
    log("seed layer from %s in %s" % (args.node, seed_dir()))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    names = existing_nodes()
    if not names:
        log("no sandbox nodes")
        return 1
    healthy = True
    for name in names:
        up = node_running(name)
        healthy &= up
        print("%-10s %-14s %s" % (name, address_of(name), "up" if up else "DOWN"))
    for name, (pidfile, needle, port) in SERVICES.items():
        up = pid_alive(pidfile, needle) is not None
        healthy &= up
        print("%-14s %-16s %s" % (name, "%s:%d" % (HOST_ADDR, port), "up" if up else "DOWN"))
    return 0 if healthy else 1


def cmd_image(args: argparse.Namespace) -> int:
    preflight()
    sources = apt_sources()
    with locked():
        if args.force or not image_current(sources):
            for name in existing_nodes():
                stop_node(name)
            build_image(sources)
        else:
            log("image is current: %s" % image_dir())
    return 0


def cmd_wheelhouse(args: argparse.Namespace) -> int:
    """Fill the wheelhouse with the wheels of a requirements file, using this machine's pip config."""
    target = CACHE / "wheels"
    target.mkdir(parents=True, exist_ok=True)
    stamp = target / (".req-" + hashlib.sha256(Path(args.requirements).read_bytes()).hexdigest()[:16])
    if stamp.exists():
        log("wheelhouse is current: %s" % target)
        return 0
    log("downloading wheels for %s into %s" % (args.requirements, target))
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                           "--dest", str(target), "-r", args.requirements])
    if proc.returncode != 0:
        raise SandboxError("pip download failed for %s" % args.requirements)
    stamp.write_text("")
    return 0


def cmd_container_image(args: argparse.Namespace) -> int:
    """The training image for torchrun_runtime=podman or docker (sandbox/container_image.py), from the node image and the wheelhouse."""
    import container_image  # pylint: disable=import-outside-toplevel

    preflight()
    sources = apt_sources()
    with locked():
        if not image_current(sources):
            build_image(sources)
        image_id = container_image.build(image_dir(), CACHE / "wheels", container_image.requirements(Path(args.requirements)),
                                         CONTAINER_ARCHIVE, log=log)
    if args.vars:
        Path(args.vars).parent.mkdir(parents=True, exist_ok=True)
        Path(args.vars).write_text(json.dumps({"torchrun_runtime": args.runtime, "torchrun_image": container_image.reference(),
                                               "torchrun_image_archive": str(CONTAINER_ARCHIVE)}, indent=2) + "\n")
    print("%s %s" % (CONTAINER_ARCHIVE, image_id))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="boot node1..nodeN and the outsider")
    up.add_argument("--nodes", default="2", help="number of cluster nodes (1..%d)" % MAX_NODES)
    up.add_argument("--inventory", default=str(DEFAULT_INVENTORY))
    up.add_argument("--seed", action="store_true", help="boot new nodes on the seed layer as well (see `seed`)")
    up.add_argument("--seed-if-current", action="store_true",
                    help="--seed when the seed layer is the current image's (make test's launch tests keep one), else the bare image")
    up.add_argument("--nvidia-repo", action="store_true", help="serve the NVIDIA-shaped repository and name it in the inventory")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop every node, the proxy and the bridge")
    down.add_argument("--inventory", default=str(DEFAULT_INVENTORY))
    down.set_defaults(func=cmd_down)
    reboot = sub.add_parser("reboot", help="power a node off and boot it again, keeping its disk")
    reboot.add_argument("node")
    reboot.set_defaults(func=cmd_reboot)
    fail = sub.add_parser("fail", help="kill a node and drop its disk, as a dead server (up replaces it)")
    fail.add_argument("node")
    fail.set_defaults(func=cmd_fail)
    seed = sub.add_parser("seed", help="keep a set-up node's changes as a layer new nodes can boot on")
    seed.add_argument("node")
    seed.set_defaults(func=cmd_seed)
    sub.add_parser("status", help="show the nodes").set_defaults(func=cmd_status)
    image = sub.add_parser("image", help="build the cached image")
    image.add_argument("--force", action="store_true")
    image.set_defaults(func=cmd_image)
    wheels = sub.add_parser("wheelhouse", help="download wheels for the nodes")
    wheels.add_argument("-r", "--requirements", required=True)
    wheels.set_defaults(func=cmd_wheelhouse)
    container = sub.add_parser("container-image", help="build the training image archive for torchrun_runtime=podman or docker")
    container.add_argument("--runtime", choices=("podman", "docker"), default="podman", help="the torchrun_runtime --vars names")
    container.add_argument("-r", "--requirements", default=str(REPO / "sandbox" / "wheelhouse.txt"))
    container.add_argument("--vars", help="write the job's torchrun_runtime, torchrun_image and torchrun_image_archive to this file (-e @FILE)")
    container.set_defaults(func=cmd_container_image)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SandboxError as err:
        print("sandbox: error: %s" % err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
