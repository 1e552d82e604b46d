#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what preflight checks on a node before anything changes: listeners, GPUs, preset variables."""

from __future__ import annotations

DOCUMENTATION = r"""
module: node_probe
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: What the preflight checks need to know about a node, read without changing it
description:
  - Lists the TCP sockets listening on the node, each with the process (its name, and the executable
    and uid the kernel knows), PID and systemd unit that
    holds it (from C(/proc/net/tcp), C(/proc/net/tcp6) and the processes' file descriptors), so a
    port in use can be named together with its owner.
  - Counts the NVIDIA GPUs on the PCI bus (C(/sys/bus/pci/devices)), which needs no driver, so the
    count is known before the nvidia role installs one. NVSwitches and other non-display NVIDIA
    functions are not counted.
  - Finds variables that torchrun sets for every worker (C(NODE_RANK), C(MASTER_ADDR)...) when
    something on the node pre-sets them, in the systemd manager's environment, which every unit
    inherits, and C(/etc/environment), which login shells read.
  - Tells whether a file exists on the node (the training script, when it lives there).
  - Reads the account named O(user) and whether the collection created it (its comment is
    O(marker)), so an existing account is never taken over.
  - Lists the firewall managers that are active (firewalld, ufw), the nftables tables that are
    live or declared in C(/etc/nftables.conf), and the tables the collection's own rule set
    C(/etc/torchrun/firewall.nft) declares.
  - Lists the torchrun jobs installed on the node (C(/etc/torchrun/<job>.env)) with their master
    port and collective range, so jobs sharing a node can be checked against each other.
options:
  names:
    description: Environment variable names to look for; by default the variables torchrun sets for every worker.
    type: list
    elements: str
    default: [NODE_RANK, RANK, LOCAL_RANK, GROUP_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT]
  path:
    description: A file whose existence to report in RV(path_exists). Empty reports C(true).
    type: str
    default: ""
  folders:
    description: Folders to report in RV(folders) - whether each exists, and whether O(user) may read and write it.
    type: list
    elements: str
    default: []
  project:
    description: A project folder (the node's copy of torchrun_project_dir) to hash in RV(project_hash). Empty hashes none.
    type: str
    default: ""
  project_excludes:
    description: Patterns left out of O(project), as the controller leaves them out.
    type: list
    elements: str
    default: []
  files:
    description: Files whose content hash, owner and mode to report in RV(files) (what a launch compares with what its settings install).
    type: list
    elements: str
    default: []
    version_added: 0.3.0
  programs:
    description: Programs whose presence on the node's PATH to report in RV(programs) (what setup would install first).
    type: list
    elements: str
    default: []
    version_added: 0.3.0
  job:
    description: A job whose unit to read in RV(job) (before a launch - whether it runs, and with older settings). Empty reads none.
    type: str
    default: ""
    version_added: 0.3.0
  user:
    description: An account to read in RV(account). Empty reads none.
    type: str
    default: ""
  uid:
    description: The uid (and gid) O(user) is to have; RV(account) names another account or group holding it. 0 reads none.
    type: int
    default: 0
  interface:
    description: The cluster interface, whose firewalld zone RV(firewall_site) reports. Empty skips it.
    type: str
    default: ""
  address:
    description:
      - The node's cluster address, for a run that has not gathered the node's network facts - the module
        reads the interfaces itself, returns them as network facts (RV(ansible_facts)) and takes the
        interface that carries O(address) for RV(firewall_site) (O(interface) unset). Empty reads none.
    type: str
    default: ""
    version_added: 0.3.0
  marker:
    description: The comment (GECOS) of accounts the collection created.
    type: str
    default: onprem.torchrun jobs
  venv:
    description:
      - A Python environment that root runs programs of (the requirements check, py-spy); RV(venv_untrusted)
        names the first part of it, or folder above it, that an account other than root can change. Empty reads none.
    type: str
    default: ""
    version_added: 0.2.0
  cluster:
    description: The cluster this run is for (the contract's __torchrun_cluster_id), returned as RV(cluster) for the validator to compare with each job's.
    type: str
    default: ""
    version_added: 0.2.0
  nofollow:
    description: Folders root sets the owner and mode of; RV(links) names those that are symbolic links.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  stack:
    description:
      - The job's venv to read as M(onprem.torchrun.stack_info) does, in RV(stack) - C(venv), C(runner) (its image's,
        where the job runs in one), C(requirements) (specifiers its own Python checks). Every distribution of the
        venv is listed, so that the stack report compares any of them without asking again. Empty reads none.
      - Root runs the venv's Python for it only when no account other than root can change the venv (RV(venv_untrusted)
        of its C(venv)); else RV(stack) is null and preflight's checks refuse the venv.
    type: dict
    default: {}
    version_added: 0.3.0
  lock:
    description:
      - The job's launch lock to take on this node (the master) in the same call, as M(onprem.torchrun.job_lock)
        takes it - C(job), C(token), C(owner). Fails, naming who holds it, when another run does. Empty takes none.
    type: dict
    default: {}
    version_added: 0.3.0
extends_documentation_fragment:
  - onprem.torchrun.cluster.read_only
"""

EXAMPLES = r"""
- name: Read the node
  onprem.torchrun.node_probe:
    path: /srv/train/train.py
  register: probe
"""

RETURN = r"""
ephemeral:
  description:
    - The node's ephemeral port range now (C(range)), how many TCP connections hold a port of it (C(total)),
      and the destination most of them go to (C(busiest_peer), C(busiest) connections).
  returned: always
  type: dict
  sample: {"range": [32768, 60999], "total": 412, "busiest_peer": "10.0.0.5:443", "busiest": 96}
cluster:
  description: O(cluster), as given (null when empty).
  returned: always
  type: str
  sample: "trainers:0123456789ab"
ssh_ports:
  description: The ports sshd listens on, known by its executable and its uid (root), not by its name.
  returned: always
  type: list
  elements: int
  sample: [22]
venv_untrusted:
  description: Where O(venv) can be changed by an account other than root (C(path), C(owner), C(mode)); null when it cannot.
  returned: always
  type: dict
  sample: {"path": "/srv/envs/torch", "owner": "alice", "mode": "0755"}
links:
  description: Each of O(nofollow) that is a symbolic link, with its target.
  returned: always
  type: dict
  sample: {"/var/lib/torchrun/train/checkpoints": "/etc"}
listeners:
  description: The node's listening TCP sockets (IPv4 and IPv6), one entry per port and owner.
  returned: always
  type: list
  elements: dict
  sample: [{"port": 22, "address": "0.0.0.0", "process": "sshd", "pid": 210, "unit": "ssh.service", "exe": "/usr/sbin/sshd", "uid": 0}]
ansible_facts:
  description:
    - With O(address) - the node's network interfaces in the shape of the setup module's network facts
      (C(interfaces), and per interface C(device), C(active), C(mtu), C(macaddress), C(ipv4),
      C(ipv4_secondaries), C(ipv6)), so a launch finds the cluster interface without gathering facts.
  returned: when O(address) is set
  type: dict
  sample: {"interfaces": ["lo", "eth0"], "eth0": {"device": "eth0", "ipv4": {"address": "10.0.0.11", "prefix": "24"}}}
stack:
  description:
    - With O(stack) - what M(onprem.torchrun.stack_info) returns (C(versions), C(driver_installed), C(gpus),
      C(requirements_missing)) and C(distributions), every distribution of the venv (name normalized) and its version.
  returned: when O(stack) is set and the venv is root's alone; else null
  type: dict
  sample: {"versions": {"torch": "2.13.0+cpu"}, "requirements_missing": [], "distributions": {"numpy": "2.1.3"}}
lock:
  description: With O(lock) - whether this call took the lock (C(taken); false when the run held it already).
  returned: always
  type: dict
  sample: {"taken": true}
files:
  description: For each of O(files) - whether it is a regular file (C(exists)), its C(sha1), C(owner), C(group) and C(mode); a link is no file.
  returned: always
  type: dict
  sample: {"/etc/torchrun/train.env": {"exists": true, "sha1": "0a4d...", "owner": "root", "group": "torchrun-train", "mode": "0640"}}
programs:
  description: For each of O(programs), whether the node has it.
  returned: always
  type: dict
  sample: {"rsync": true}
job:
  description: O(job)'s unit - C(exists), C(state), C(sub_state) and C(stale) as M(onprem.torchrun.job_info) has them; null without O(job).
  returned: always
  type: dict
  sample: {"exists": true, "state": "active", "sub_state": "running", "stale": false}
gpus:
  description: NVIDIA GPUs (PCI display and 3D controllers of vendor 0x10de) on the node.
  returned: always
  type: int
  sample: 8
gpu_ids:
  description: The PCI device IDs of those GPUs (the nvidia role takes the open kernel modules only where every one is Turing or newer).
  returned: always
  type: list
  elements: str
  sample: ["0x2335", "0x2335"]
cdi_gpus:
  description:
    - The GPU devices (C(nvidia.com/gpu=<name>)) the node's CDI specifications in /etc/cdi and /var/run/cdi
      name - indices, UUIDs and C(all) - which a job in its image gets its GPUs through; empty without one.
  returned: always
  type: list
  elements: str
  sample: ["0", "1", "all"]
gpu_hook:
  description:
    - Whether the NVIDIA container toolkit's hook (C(nvidia-container-runtime-hook)) is on the node, which
      docker's C(--gpus) needs to give a job in its image its GPUs.
  returned: always
  type: bool
secure_boot:
  description:
    - The node's Secure Boot state - C(enabled), C(disabled) or C(unknown) - from C(mokutil --sb-state) where
      mokutil is installed, else the firmware's SecureBoot EFI variable (C(disabled) on a node booted without EFI).
    - C(dkms_key_enrolled) - whether DKMS's signing key (/var/lib/dkms/mok.pub) is an enrolled Machine Owner Key
      (C(mokutil --test-key)), so that the modules DKMS builds load with Secure Boot on.
  returned: always
  type: dict
  sample: {"state": "enabled", "dkms_key_enrolled": false}
nvswitches:
  description: NVIDIA NVSwitch bridges (PCI class 0x0680 of vendor 0x10de); the fabric manager runs where there are any.
  returned: always
  type: int
  sample: 6
fabric:
  description:
    - The RDMA devices of /sys/class/infiniband (InfiniBand and RoCE), each with its network interfaces and ports
      (state, physical state, rate, link layer, and the IPv4 RoCE v2 GIDs with their index and interface), and the
      character devices under /dev/infiniband. Empty lists on a node without RDMA.
  returned: always
  type: dict
  sample: {"devices": [{"name": "mlx5_0", "netdevs": ["ib0"], "ports": [{"port": 1, "state": "ACTIVE",
           "phys_state": "LinkUp", "rate": "200 Gb/sec (4X HDR)", "link_layer": "InfiniBand", "roce_v2": []}]}],
           "char_devices": ["/dev/infiniband/rdma_cm", "/dev/infiniband/uverbs0"]}
pcie_notes:
  description:
    - PCIe settings known to slow or break GPU peer-to-peer, as sentences - ACS redirection on a PCIe
      switch's downstream port above the NVIDIA GPUs (read from config space; needs root), an IOMMU that
      translates DMA (no C(iommu=pt)). Shown by preflight; nothing is refused.
  returned: always
  type: list
  elements: str
preset:
  description: Each watched variable that is pre-set, with where and its value.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "NODE_RANK", "value": "0", "where": "the systemd manager environment"}]
folders:
  description: For each of O(folders) - C(exists) (a folder), C(readable) and C(writable) by O(user) from the mode bits,
    owner and groups (null while the user does not exist), C(owner) and C(mode).
  returned: always
  type: dict
  sample: {"/srv/data": {"exists": true, "readable": true, "writable": false, "owner": "root", "mode": "0755"}}
project_hash:
  description: The hash of O(project) (as the filter onprem.torchrun.project_hash computes it on the controller); null when
    O(project) is empty or not a folder.
  returned: always
  type: str
path_exists:
  description: Whether O(path) is a file on the node.
  returned: always
  type: bool
account:
  description: >-
    The account O(user) - whether it exists, its uid and home, whether the collection made it, whether its group
    exists and its gid, and the other account (C(uid_holder)) and group (C(gid_holder)) that hold O(uid), if any.
  returned: always
  type: dict
  sample: {"name": "torchrun", "exists": true, "uid": 998, "home": "/var/lib/torchrun", "ours": true, "group_exists": true,
           "gid": 998, "uid_holder": "", "gid_holder": ""}
firewall_active:
  description: The firewall managers active on the node, of C(firewalld) and C(ufw).
  returned: always
  type: list
  elements: str
firewall_site:
  description:
    - How the active manager treats traffic the job's rules do not name. firewalld - the zone of
      O(interface) (else the default zone) and its target (C(ACCEPT) lets everything in). ufw -
      the default input policy and whether IPv6 is filtered (from /etc/default/ufw).
  returned: always
  type: dict
  sample: {"firewalld_zone": "public", "firewalld_target": "default", "ufw_default_input": "DROP", "ufw_ipv6": true}
nft_tables:
  description: nftables tables, live or declared in /etc/nftables.conf, as C(<family> <name>).
  returned: always
  type: list
  elements: str
  sample: ["inet filter", "inet torchrun"]
nft_own_tables:
  description: Names of the tables the collection's own rule set (/etc/torchrun/firewall.nft) declares.
  returned: always
  type: list
  elements: str
package_manager:
  description: The node's package manager (apt, dnf, yum, zypper or unknown); the collection installs with apt only.
  returned: always
  type: str
  sample: apt
os_release:
  description: The node's PRETTY_NAME from /etc/os-release.
  returned: always
  type: str
  sample: Debian GNU/Linux 12 (bookworm)
os_id:
  description: The node's ID and VERSION_ID from /etc/os-release (what the nvidia role's package plan reads).
  returned: always
  type: dict
  sample: {"id": "debian", "version": "12"}
uname:
  description: The running kernel's release and the machine's hardware name (C(uname -r), C(uname -m)).
  returned: always
  type: dict
  sample: {"kernel": "6.1.0-28-amd64", "machine": "x86_64"}
jobs:
  description:
    - The torchrun jobs installed on the node, from /etc/torchrun/<job>.env.
    - C(user) is null for jobs set up by versions before per-job users; C(gpus) is null for a job that uses every GPU.
    - C(backend) is the job's rendezvous (static or c10d); C(cluster) the cluster that installed it (null before 0.2.0).
  returned: always
  type: list
  elements: dict
  sample: [{"job": "train", "master_port": 29500, "collective_port_range": [52000, 53999], "user": "torchrun-train",
            "accelerator": "cuda", "gpus": ["0", "1"], "backend": "static", "cluster": "trainers:0123456789ab"}]
"""

import glob
import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.onprem.torchrun.plugins.module_utils import (
    cdi, fabric, firmware, installed, interfaces, launch_lock, pcie, ports, project, stack, unit_state)
from ansible_collections.onprem.torchrun.plugins.module_utils.envfile import assignments
from ansible_collections.onprem.torchrun.plugins.module_utils.site_firewall import declared_tables, firewall_managers, firewall_site, nft_tables
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import RANK_VARIABLES
from ansible_collections.onprem.torchrun.plugins.module_utils.sockets import listeners, read, read_ephemeral

NVSWITCH_CLASSES = pcie.NVSWITCH_CLASSES
MANAGER = "the systemd manager environment (systemctl show-environment)"
ETC_ENVIRONMENT = "/etc/environment"


def pci_count(classes: tuple, devices: str = pcie.PCI_DEVICES) -> int:
    """NVIDIA PCI devices whose class begins with one of classes (module_utils.pcie.nvidia_devices)."""
    return len(pcie.nvidia_devices(classes, devices))


def gpu_count(devices: str = pcie.PCI_DEVICES) -> int:
    return pci_count(pcie.GPU_CLASSES, devices)


def preset(names: list[str], manager: str, etc_environment: str) -> list[dict]:
    found = []
    for where, text in ((MANAGER, manager), (ETC_ENVIRONMENT, etc_environment)):
        values = assignments(text)
        found += [{"name": name, "value": values[name], "where": where} for name in names if name in values]
    return found


def account(name: str, marker: str, uid: int = 0) -> dict:
    """The account ``name``, and whether the collection made it (its comment is ``marker``); with a
    ``uid``, which other account and group (by gid) already hold that number."""
    found = {"name": name, "exists": False, "uid": None, "home": "", "ours": False, "group_exists": False, "gid": None,
             "uid_holder": "", "gid_holder": ""}
    if not name:
        return found
    try:
        entry = pwd.getpwnam(name)
        found.update(exists=True, uid=entry.pw_uid, home=entry.pw_dir, ours=entry.pw_gecos.split(",")[0] == marker)
    except KeyError:
        pass
    try:
        found.update(group_exists=True, gid=grp.getgrnam(name).gr_gid)
    except KeyError:
        pass
    if uid > 0:
        try:
            holder = pwd.getpwuid(uid).pw_name
            found["uid_holder"] = "" if holder == name else holder
        except KeyError:
            pass
        try:
            holder = grp.getgrgid(uid).gr_name
            found["gid_holder"] = "" if holder == name else holder
        except KeyError:
            pass
    return found


def ssh_ports(found: list[dict]) -> list[int]:
    """The ports the node's real sshd listens on: by its executable and root's uid, as the kernel
    reports them, never by the name a process gives itself (any user can call a listener sshd)."""
    return sorted({e["port"] for e in found if os.path.basename(e.get("exe") or "") == "sshd" and e.get("uid") == 0})


def take_lock(module, asked: dict, folder: str = launch_lock.FOLDER) -> bool:
    """Take the job's launch lock as job_lock does; fail, naming the holder, where another run holds it."""
    try:
        path = launch_lock.lock_path(str(asked.get("job") or ""), folder)
    except ValueError as error:
        module.fail_json(msg=str(error))
    taken, holder = launch_lock.take(path, str(asked.get("token") or ""), str(asked.get("owner") or ""), module.check_mode)
    if holder is not None:
        module.fail_json(msg=launch_lock.busy_message(asked["job"], holder, path), holder=launch_lock.shown(holder))
    return taken


def links(paths: list[str]) -> dict[str, str]:
    """Those of ``paths`` (folders root sets the owner and mode of) that are symbolic links, with their targets."""
    return {path: os.readlink(path) for path in paths if os.path.islink(path)}


def folder_access(path: str, user: str) -> dict:
    """Whether ``path`` is a folder, and whether ``user`` may read (r-x) and write (-wx) it, from its mode bits.

    Root's view of a path the job's user cannot traverse counts as not readable; ACLs are not read.
    """
    found = {"exists": os.path.isdir(path), "readable": None, "writable": None, "owner": None, "mode": None}
    if not found["exists"]:
        return found
    info = os.stat(path)
    try:
        found["owner"] = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        found["owner"] = str(info.st_uid)
    found["mode"] = "%04o" % (info.st_mode & 0o7777)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return found
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}

    def allowed(stat, bits: int) -> bool:
        if entry.pw_uid == 0:
            return True
        if stat.st_uid == entry.pw_uid:
            shift = 6
        elif stat.st_gid in groups:
            shift = 3
        else:
            shift = 0
        return (stat.st_mode >> shift) & bits == bits

    # Every folder above must let the user pass (x), the folder itself read (r-x) or write (-wx).
    passable = all(allowed(os.stat(parent), 0o1) for parent in _parents(path))
    found["readable"] = passable and allowed(info, 0o5)
    found["writable"] = passable and allowed(info, 0o3)
    return found


def _parents(path: str) -> list[str]:
    parts, found = os.path.abspath(path).split("/")[1:-1], []
    for index in range(len(parts) + 1):
        found.append("/" + "/".join(parts[:index]))
    return found


PACKAGE_MANAGERS = (("apt", "/usr/bin/apt-get"), ("dnf", "/usr/bin/dnf"), ("yum", "/usr/bin/yum"), ("zypper", "/usr/bin/zypper"))


def platform(root: str = "/") -> dict:
    """The node's package manager (the first of PACKAGE_MANAGERS found), its os-release name, kernel and machine."""
    manager = next((name for name, path in PACKAGE_MANAGERS if os.path.exists(os.path.join(root, path.lstrip("/")))), "unknown")
    release = assignments(read(os.path.join(root, "etc/os-release")))
    uname = os.uname()
    return {"package_manager": manager, "os_release": release.get("PRETTY_NAME", "").strip('"') or "unknown",
            "os_id": {"id": release.get("ID", "").strip('"').lower(), "version": release.get("VERSION_ID", "").strip('"')},
            "uname": {"kernel": uname.release, "machine": uname.machine}}


def installed_jobs(folder: str = "/etc/torchrun") -> list[dict]:
    """Each job's master port, collective range and user from its environment file (other names are not jobs)."""
    jobs = []
    for path in sorted(glob.glob(os.path.join(folder, "*.env"))):
        job = os.path.basename(path)[:-len(".env")]
        if "." in job:  # <job>.secret.env, <job>.run.env
            continue
        values = assignments(read(path))
        gpus = values.get("CUDA_VISIBLE_DEVICES")
        jobs.append(dict(job=job, user=values.get("TORCHRUN_USER") or None, accelerator=values.get("TORCHRUN_ACCELERATOR") or None,
                         backend=values.get("TORCHRUN_RDZV_BACKEND") or None, cluster=values.get("TORCHRUN_CLUSTER") or None,
                         gpus=[g for g in gpus.split(",") if g] if gpus is not None else None, **ports.from_env(values)))
    return jobs


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str", "default": list(RANK_VARIABLES)},
            "path": {"type": "str", "default": ""},
            "folders": {"type": "list", "elements": "str", "default": []},
            "project": {"type": "str", "default": ""},
            "project_excludes": {"type": "list", "elements": "str", "default": []},
            "files": {"type": "list", "elements": "str", "default": []},
            "job": {"type": "str", "default": ""},
            "programs": {"type": "list", "elements": "str", "default": []},
            "user": {"type": "str", "default": ""},
            "uid": {"type": "int", "default": 0},
            "marker": {"type": "str", "default": "onprem.torchrun jobs"},
            "interface": {"type": "str", "default": ""},
            "address": {"type": "str", "default": ""},
            "venv": {"type": "str", "default": ""},
            "cluster": {"type": "str", "default": ""},
            "nofollow": {"type": "list", "elements": "str", "default": []},
            "stack": {"type": "dict", "default": {}},
            "lock": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    taken = take_lock(module, module.params["lock"]) if module.params["lock"] else None
    manager = ""
    systemctl = module.get_bin_path("systemctl")
    if systemctl:
        rc, out, _err = module.run_command([systemctl, "show-environment"])
        manager = out if rc == 0 else ""
    try:
        with open(ETC_ENVIRONMENT) as handle:
            etc_environment = handle.read()
    except OSError:
        etc_environment = ""
    path = module.params["path"]
    network = interfaces.read(module) if module.params["address"] else {}
    interface = module.params["interface"]
    if network and not interface:
        try:
            interface = interfaces.interface_of(network, module.params["address"])
        except ValueError:
            interface = ""  # the contract's cluster_interface names the fault where the interface is used
    active = firewall_managers(module)
    gpu_devices = pcie.nvidia_devices(pcie.GPU_CLASSES)
    sockets = listeners()
    module.exit_json(
        changed=False,
        listeners=sockets,
        ssh_ports=ssh_ports(sockets),
        ephemeral=read_ephemeral(),
        gpus=len(gpu_devices),
        gpu_ids=[pcie.device_id(name) for name in gpu_devices],
        cdi_gpus=cdi.gpu_devices(),
        gpu_hook=cdi.toolkit_hook(),
        secure_boot=firmware.secure_boot(module),
        nvswitches=pci_count(NVSWITCH_CLASSES),
        fabric=fabric.read(),
        pcie_notes=pcie.notes(pcie.read(gpu_devices), len(gpu_devices)),
        preset=preset(module.params["names"], manager, etc_environment),
        path_exists=not path or os.path.isfile(path),
        folders={folder: folder_access(folder, module.params["user"]) for folder in module.params["folders"]},
        project_hash=(project.project_hash(module.params["project"], module.params["project_excludes"])
                      if module.params["project"] and os.path.isdir(module.params["project"]) else None),
        files=installed.file_facts(module.params["files"]),
        job=unit_state.before(module, module.params["job"]) if module.params["job"] else None,
        programs={name: module.get_bin_path(name) is not None for name in module.params["programs"]},
        account=account(module.params["user"], module.params["marker"], module.params["uid"]),
        firewall_active=active,
        firewall_site=firewall_site(module, active, interface),
        nft_tables=nft_tables(module),
        nft_own_tables=[name.split()[1] for name in declared_tables(read("/etc/torchrun/firewall.nft")) if name.startswith("inet ")],
        jobs=installed_jobs(),
        venv_untrusted=stack.venv_trust(module.params["venv"]) if module.params["venv"] else None,
        stack=stack.read_trusted(module, module.params["stack"]) if module.params["stack"] else None,
        lock={"taken": taken} if taken is not None else None,
        links=links(module.params["nofollow"]),
        cluster=module.params["cluster"] or None,
        **dict(platform(), **({"ansible_facts": network} if network else {})),
    )


if __name__ == "__main__":
    main()
