# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The validator's shared parts: the collection's facts the rules need, Problem, Cluster and the path rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from ansible_collections.onprem.torchrun.plugins.module_utils import contract
from ansible_collections.onprem.torchrun.plugins.module_utils import ports as port_model


PORT_MIN, PORT_MAX, MIN_COLLECTIVE_PORTS = port_model.PORT_MIN, port_model.PORT_MAX, port_model.MIN_COLLECTIVE_PORTS
# Job names reach file names (/etc/torchrun/<job>.env), unit names (torchrun-<job>.service), nft
# sets, firewalld ipsets (31 characters at most: "torchrun-" + 22) and ufw rule comments. One
# short lowercase alphabet with single hyphens maps every job to its own name everywhere.
JOB_PATTERN = re.compile(r"\A[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
JOB_MAX = 22
# The collection's own units and folders that a job name must not shadow:
# torchrun-firewall.service (the nftables loader), torchrun-healthcheck-<job>.service (the health
# check), torchrun-probe-<port>.service (connectivity listeners).
RESERVED_JOB_PREFIXES = ("firewall", "healthcheck", "probe")
USER_PATTERN = re.compile(r"\A[a-z_][a-z0-9_-]{0,30}\Z")
RESERVED_USERS = {"root", "daemon", "bin", "sys", "nobody", "sshd", "systemd-network", "messagebus"}
UID_MAX = 4294967294  # (uid_t)-1 means "no uid"
NOBODY = 65534
TABLE_PATTERN = re.compile(r"\A[a-z][a-z0-9_]{0,31}\Z")
ZONE_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{1,17}\Z")  # firewalld zone names: at most 17 characters
ENV_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
RDZV_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
NNODES = re.compile(r"\A([0-9]+)(?::([0-9]+))?\Z")
VERSION = re.compile(r"\A[0-9][0-9A-Za-z.+!*_-]{0,63}\Z")
DRIVER_BRANCH = re.compile(r"\A[0-9]{3,4}\Z")
TOOLKIT = re.compile(r"\A[0-9]+-[0-9]+\Z")
NCCL_KEY = re.compile(r"\ANCCL_[A-Z0-9_]+\Z")
URL = re.compile(r"\A(?:https?|file)://[^\s\"'\\]+\Z")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Folders a hardened job unit cannot see (ProtectHome=yes, PrivateTmp=yes).
HIDDEN_FOLDERS = ("/root", "/home", "/tmp", "/var/tmp", "/run/user")
BACKENDS = ("auto", "nftables", "firewalld", "ufw", "none")
# Settings every node of the group must share; anything else may differ per host.
PER_HOST = {"torchrun_address", "torchrun_nproc_per_node", "torchrun_gpus", "torchrun_fabric_hcas"}
CLUSTER_WIDE_PREFIXES = ("torchrun_", "launcher_", "healthcheck_", "connectivity_")
CLUSTER_WIDE = {"pytorch_torch_version", "pytorch_lightning_version", "pytorch_requirements", "pytorch_tools",
                "firewall_peers"}
SECRETS = {"torchrun_secret_env"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (a host, ``inventory`` or ``controller``), which variable, and the line to print."""

    host: str
    var: str
    message: str

    def __str__(self) -> str:
        return self.message


def shown(value: Any) -> str:
    """A value as the report prints it: plain for scalars, repr for strings with odd characters."""
    if isinstance(value, str):
        return repr(value) if (CONTROL.search(value) or value != value.strip() or value == "") else value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Cluster:
    """The training group as the validator sees it.

    ``values[host][name]`` holds each role variable in effect on ``host``, already converted to its
    spec type (a value that cannot be converted is left out after the types area reports it).
    ``facts[host]`` is what node_probe read on the node (node stage only). ``script_on_controller`` tells whether torchrun_script was found on the controller.
    """

    group: str
    hosts: list[str]
    values: dict[str, dict[str, Any]]
    specs: dict[str, dict] = field(default_factory=dict)  # option name -> spec (type, choices, elements)
    facts: dict[str, dict] | None = None
    script_on_controller: bool | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    given: dict[str, list[str]] | None = None  # host -> the variable names its inventory and extra vars set

    @property
    def master(self) -> str:
        return self.hosts[0]

    def get(self, host: str, name: str, default: Any = None) -> Any:
        return self.values.get(host, {}).get(name, default)

    def cluster(self, name: str, default: Any = None) -> Any:
        """A cluster-wide setting, as the master has it."""
        return self.get(self.master, name, default)

    def node_facts(self, host: str) -> dict | None:
        return None if self.facts is None else self.facts.get(host)


def problem(host: str, var: str, message: str) -> Problem:
    return Problem(host, var, "%s: %s" % (host, message))


PATH_RULE = "must be an absolute path without spaces, '..' or control characters, and not /"


def bad_path(value: str) -> bool:
    return bool(CONTROL.search(value) or " " in value or not value.startswith("/") or "/../" in value + "/" or value.rstrip("/") == "")


def absolute_path(host: str, name: str, value: str) -> list[Problem]:
    return [problem(host, name, "%s=%s %s" % (name, shown(value), PATH_RULE))] if bad_path(value) else []


def lies_under(path: str, folders: Iterable[str]) -> str | None:
    """The first of ``folders`` that ``path`` is or lies inside, else None."""
    clean = path.rstrip("/")
    return next((f for f in folders if clean == f or clean.startswith(f + "/")), None)


RANK_VARIABLES = contract.RANK_VARIABLES


# Where the unit cannot give a job a folder: the system itself, and what its hardening hides
# (ProtectHome, PrivateTmp) or keeps for others (other jobs' folders, the venv).
SYSTEM_FOLDERS = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev", "/proc", "/sys",
                  "/run", "/var/lib", "/var/cache", "/var/log", "/var/spool", "/efi") + HIDDEN_FOLDERS


def system_folder(path: str, hidden: list[str]) -> str | None:
    """The system folder (or hidden one) ``path`` lies in, "top" for a top-level folder such as /srv, else None."""
    found_under = lies_under(path, SYSTEM_FOLDERS + tuple(h.rstrip("/") for h in hidden if h))
    if found_under:
        return found_under
    return "top" if path.rstrip("/") in ("/var", "/opt", "/srv", "/mnt", "/media") else None
