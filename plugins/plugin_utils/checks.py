# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight validator: every rule about the inventory and the nodes, one function per area.

The action plugin ``onprem.torchrun.validate`` builds a :class:`Cluster` from the play's hostvars
(each role's variables, with that role's own defaults where the inventory sets nothing) and, in
the node stage, from what ``onprem.torchrun.node_probe`` read on each node. Each area function
returns every problem it finds as a :class:`Problem` naming the host, the variable, the value and
the fix. Nothing here touches a node; the unit tests drive it with fake hostvars and node facts.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ansible.module_utils.common.validation import check_type_bool, check_type_int
from ansible.template import trust_as_template
from ansible_collections.onprem.torchrun.plugins.module_utils import contract
from ansible_collections.onprem.torchrun.plugins.module_utils import fabric as fabric_model
from ansible_collections.onprem.torchrun.plugins.module_utils import ports as port_model
from ansible_collections.onprem.torchrun.plugins.plugin_utils import requirements

# ---- facts of the collection that the rules need (and the roles share) ---------------------------
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


# ---- types: every role option as its spec declares it --------------------------------------------
def _convert(value: Any, spec: dict) -> Any:
    """Convert ``value`` to the spec's type the way Ansible's argument specs accept it; raise TypeError."""
    kind = spec.get("type", "raw")
    if kind == "int":
        if isinstance(value, bool) or isinstance(value, float):
            raise TypeError("not a whole number")
        return check_type_int(value.strip() if isinstance(value, str) else value)
    if kind == "bool":
        return check_type_bool(value)
    if kind in ("str", "path"):
        if isinstance(value, (dict, list)):
            raise TypeError("a %s, not a string" % type(value).__name__)
        return value if isinstance(value, str) else ("true" if value is True else "false" if value is False else str(value))
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            raise TypeError("a %s, not a list" % ("string" if isinstance(value, str) else type(value).__name__))
        element = {"type": spec["elements"]} if spec.get("elements") else None
        return [_convert(item, element) if element else item for item in value]
    if kind == "dict":
        if not isinstance(value, dict):
            raise TypeError("a %s, not a mapping" % ("string" if isinstance(value, str) else type(value).__name__))
        return dict(value)
    return value


def _type_fix(name: str, spec: dict, value: Any) -> str:
    kind = spec.get("type")
    if kind == "int":
        return "must be a whole number"
    if kind == "bool":
        return "must be true or false"
    if kind == "list" and isinstance(value, str):
        return ("must be a list; -e name=value always gives a string, so pass lists as JSON: "
                "-e '{\"%s\": [...]}'" % name)
    if kind == "list":
        return "must be a list of %s" % {"int": "whole numbers", "str": "strings"}.get(spec.get("elements"), "values")
    if kind == "dict" and isinstance(value, str):
        return ("must be a mapping; -e name=value always gives a string, so pass mappings as JSON: "
                "-e '{\"%s\": {...}}'" % name)
    return "must be a %s" % {"dict": "mapping", "path": "path", "str": "string"}.get(kind, kind)


def types(c: Cluster) -> list[Problem]:
    """Convert each value to its spec type (``-e key=value`` gives strings); refuse what does not convert.

    Runs first: the other areas see converted values only, and a value refused here is left out.
    """
    found = []
    for host in c.hosts:
        for name, value in list(c.values[host].items()):
            spec = c.specs.get(name)
            if spec is None:
                continue
            secret = name in SECRETS
            try:
                converted = _convert(value, spec)
            except (TypeError, ValueError):
                del c.values[host][name]
                text = "(hidden)" if secret else shown(value)
                found.append(problem(host, name, "%s=%s %s" % (name, text, _type_fix(name, spec, value))))
                continue
            choices = spec.get("choices")
            if choices and converted not in choices:
                del c.values[host][name]
                found.append(problem(host, name, "%s=%s must be one of %s" % (name, shown(converted), ", ".join(map(str, choices)))))
                continue
            c.values[host][name] = converted
    return found


# ---- names and paths ------------------------------------------------------------------------------
def _job_name(host: str, job: str) -> list[Problem]:
    fix = ("torchrun_job=%s must be 1 to %d lowercase letters, digits and single hyphens, starting with a letter "
           "(it names the unit, the files, the firewall set and rules of the job)" % (shown(job), JOB_MAX))
    if not JOB_PATTERN.match(job) or len(job) > JOB_MAX:
        return [problem(host, "torchrun_job", fix)]
    for prefix in RESERVED_JOB_PREFIXES:
        if job == prefix or job.startswith(prefix + "-"):
            return [problem(host, "torchrun_job", "torchrun_job=%s is reserved: torchrun-%s... names the collection's own %s "
                                                  "units and folders; choose another name" % (job, prefix, prefix))]
    return []


PATH_RULE = "must be an absolute path without spaces, '..' or control characters, and not /"


def _bad_path(value: str) -> bool:
    return bool(CONTROL.search(value) or " " in value or not value.startswith("/") or "/../" in value + "/" or value.rstrip("/") == "")


def _absolute_path(host: str, name: str, value: str) -> list[Problem]:
    return [problem(host, name, "%s=%s %s" % (name, shown(value), PATH_RULE))] if _bad_path(value) else []


def _under(path: str, folders: Iterable[str]) -> str | None:
    """The first of ``folders`` that ``path`` is or lies inside, else None."""
    clean = path.rstrip("/")
    return next((f for f in folders if clean == f or clean.startswith(f + "/")), None)


def _env(host: str, var: str, env: dict) -> list[Problem]:
    found = []
    for key, value in sorted(env.items(), key=lambda kv: str(kv[0])):
        key = str(key)
        if key in RANK_VARIABLES:
            found.append(problem(host, var, "%s sets %s, which torchrun sets for every worker; remove it (a stale "
                                            "NODE_RANK or MASTER_* hangs the job)" % (var, key)))
        elif not ENV_NAME.match(key):
            found.append(problem(host, var, "%s has the name %s, which is not an environment variable name" % (var, shown(key))))
        elif isinstance(value, (dict, list)) or CONTROL.search(str(value)):
            found.append(problem(host, var, "%s.%s holds a line break, a control character or a structure, which an "
                                            "environment file cannot carry" % (var, key)))
    return found


def names_and_paths(c: Cluster) -> list[Problem]:
    """Job, user and table names, the run id, environment names, paths and the training script."""
    host = c.master
    found = []
    job = c.cluster("torchrun_job")
    if job is not None:
        found += _job_name(host, job)
    user = c.cluster("torchrun_user")
    if user is not None and not USER_PATTERN.match(user):
        found.append(problem(host, "torchrun_user", "torchrun_user=%s must be a system user name: lowercase letters, digits, "
                                                    "'_' and '-', at most 31 characters" % shown(user)))
    uid = c.cluster("torchrun_uid")
    if isinstance(uid, int) and (uid < 0 or uid > UID_MAX or uid == NOBODY):
        found.append(problem(host, "torchrun_uid", "torchrun_uid=%d must be 0 (each node picks) or a uid from 1 to %d, not %d (nobody)"
                             % (uid, UID_MAX, NOBODY)))
    rdzv_id = c.cluster("torchrun_rdzv_id")
    if rdzv_id and not RDZV_ID.match(rdzv_id):
        found.append(problem(host, "torchrun_rdzv_id", "torchrun_rdzv_id=%s must be letters, digits, '_', '.' or '-' "
                                                       "(it goes into the run's environment file)" % shown(rdzv_id)))
    for var in ("torchrun_env", "torchrun_secret_env"):
        env = c.cluster(var)
        if env:
            found += _env(host, var, env)
    for var in ("torchrun_venv", "torchrun_state_dir"):
        value = c.cluster(var)
        if value is not None:
            bad = _absolute_path(host, var, value)
            hidden = None if bad else _under(value, HIDDEN_FOLDERS)
            found += bad + ([problem(host, var, "%s=%s lies under %s, which the job's hardened unit cannot see (ProtectHome, "
                                                "PrivateTmp); put it under /opt or /srv" % (var, value, hidden))] if hidden else [])
    for arg in c.cluster("torchrun_script_args") or []:
        if CONTROL.search(arg):
            found.append(problem(host, "torchrun_script_args", "torchrun_script_args holds %s, with a line break or control "
                                                               "character, which a unit's command line cannot carry" % shown(arg)))
    found += _script(c) + _report_dir(c)
    for node in c.hosts:
        table = c.get(node, "firewall_table")
        if table is not None and not TABLE_PATTERN.match(table):
            found.append(problem(node, "firewall_table", "firewall_table=%s must be 1 to 32 lowercase letters, digits and '_', "
                                                         "starting with a letter" % shown(table)))
        zone = c.get(node, "firewall_firewalld_zone")
        if zone and not ZONE_PATTERN.match(zone):
            found.append(problem(node, "firewall_firewalld_zone", "firewall_firewalld_zone=%s must be a firewalld zone name: up to 17 "
                                                                  "letters, digits, '_' or '-'" % shown(zone)))
    return found


def _report_dir(c: Cluster) -> list[Problem]:
    """torchrun_report_dir: a folder on the controller that the playbooks can write their reports to."""
    folder = c.cluster("torchrun_report_dir")
    if folder is None:
        return []
    bad = _absolute_path(c.master, "torchrun_report_dir", folder)
    if bad:
        return bad
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        return [Problem("controller", "torchrun_report_dir", "controller: torchrun_report_dir=%s is not a folder the controller can "
                                                             "write to (%s); create it or give another (in an execution environment, "
                                                             "a mounted one)" % (folder, "missing" if not os.path.isdir(folder) else "not writable"))]
    return []


MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _project(c: Cluster) -> list[Problem]:
    """torchrun_project_dir: a folder on the controller holding torchrun_script, or torchrun_module to run."""
    host = c.master
    folder = c.cluster("torchrun_project_dir")
    module = c.cluster("torchrun_module")
    found = []
    if module and not MODULE_NAME.match(module):
        found.append(problem(host, "torchrun_module", "torchrun_module=%s must be a dotted Python module name, such as trainer.main"
                                                      % shown(module)))
    if module and not folder:
        found.append(problem(host, "torchrun_module", "torchrun_module needs torchrun_project_dir, the project it is a module of"))
    if not folder:
        return found
    found += _absolute_path(host, "torchrun_project_dir", folder)
    if found:
        return found
    if c.cluster("torchrun_script_on_node"):
        return [problem(host, "torchrun_script_on_node", "torchrun_script_on_node=true and torchrun_project_dir are set; a project's "
                                                         "script is a path inside the project: set torchrun_script_on_node=false")]
    if not os.path.isdir(folder):
        return [Problem("controller", "torchrun_project_dir", "controller: torchrun_project_dir=%s is not a folder on the controller; "
                                                              "give the project's folder" % folder)]
    script = c.cluster("torchrun_script") or ""
    if not module and (script.startswith("/") or "/../" in "/" + script + "/" or not os.path.isfile(os.path.join(folder, script))):
        found.append(Problem("controller", "torchrun_script", "controller: torchrun_script=%s is not a file inside torchrun_project_dir=%s; "
                                                              "give its path relative to the project, or torchrun_module" % (script, folder)))
    return found + _project_requirements(folder, c.cluster("torchrun_project_requirements") or "")


def _project_requirements(folder: str, name: str) -> list[Problem]:
    """torchrun_project_requirements: one file of the project, installable the same way on every node."""
    var = "torchrun_project_requirements"
    if name.startswith("/") or "/../" in "/" + name + "/" or CONTROL.search(name):
        return [Problem("controller", var, "controller: %s=%s must be a path inside torchrun_project_dir=%s, relative to it"
                        % (var, shown(name), folder))]
    try:
        path, found = requirements.read(folder, name)
    except FileNotFoundError:
        return [Problem("controller", var, "controller: %s=%s is not a file inside torchrun_project_dir=%s; give the project's "
                                           "requirements file relative to it, or an empty value to install none" % (var, name, folder))]
    except (OSError, UnicodeDecodeError) as error:
        return [Problem("controller", var, "controller: %s=%s cannot be read (%s); make it a readable UTF-8 file"
                        % (var, os.path.join(folder, name), error))]
    return [Problem("controller", var, "controller: %s=%s: %s" % (var, path, message)) for message in (found.problems if found else [])]


def _script(c: Cluster) -> list[Problem]:
    host = c.master
    script = c.cluster("torchrun_script")
    on_node = c.cluster("torchrun_script_on_node")
    if c.cluster("torchrun_project_dir") or c.cluster("torchrun_module"):
        return _project(c)
    if script is None or on_node is None:
        return []
    if CONTROL.search(script) or not script.strip():
        return [problem(host, "torchrun_script", "torchrun_script=%s must be a file path without control characters" % shown(script))]
    found = []
    if on_node:
        found += _absolute_path(host, "torchrun_script", script)
        hidden = _under(script, HIDDEN_FOLDERS)
        if not found and hidden:
            found.append(problem(host, "torchrun_script", "torchrun_script=%s lies under %s, which the job's hardened unit "
                                                          "cannot see (ProtectHome, PrivateTmp); put it under /opt or /srv" % (script, hidden)))
        for node in c.hosts:
            facts = c.node_facts(node)
            if facts is not None and not found and facts.get("path_exists") is False:
                found.append(problem(node, "torchrun_script", "torchrun_script=%s does not exist on the node "
                                                              "(torchrun_script_on_node=true); put it there, or set "
                                                              "torchrun_script_on_node=false to ship it from the controller" % script))
    elif c.script_on_controller is False:
        found.append(Problem("controller", "torchrun_script",
                             "controller: torchrun_script=%s does not exist on the controller; give a file path, or set "
                             "torchrun_script_on_node: true for a path on the nodes" % script))
    return found


# ---- consistency ----------------------------------------------------------------------------------
def _cluster_wide(name: str) -> bool:
    return name not in PER_HOST and (name.startswith(CLUSTER_WIDE_PREFIXES) or name in CLUSTER_WIDE)


def consistency(c: Cluster) -> list[Problem]:
    """Every cluster-wide setting is the same on every node of the group, or each node that differs is named."""
    found = []
    first = c.master
    names = sorted({name for host in c.hosts for name in c.values[host] if _cluster_wide(name)})
    for name in names:
        want = c.get(first, name, _MISSING)
        for host in c.hosts[1:]:
            have = c.get(host, name, _MISSING)
            if have == want:
                continue
            if name in SECRETS:
                text = "%s differs from %s's (values not shown)" % (name, first)
            else:
                theirs = "(unset)" if have is _MISSING else shown(have)
                ours = "(unset)" if want is _MISSING else shown(want)
                text = "%s=%s differs from %s=%s on %s" % (name, theirs, name, ours, first)
            found.append(problem(host, name, text + "; a cluster-wide setting must be the same on every node of group "
                                                    "%s: set it for the group, not per host" % c.group))
    return found


_MISSING = object()


# ---- ports ----------------------------------------------------------------------------------------
def ports(c: Cluster) -> list[Problem]:
    """The master port, the collective range and the ports inside it; with node facts, who holds them."""
    host = c.master
    found = []
    port = c.cluster("torchrun_master_port")
    span = c.cluster(port_model.RANGE_VAR)
    if span is not None:
        if len(span) != 2 or not PORT_MIN <= span[0] <= span[1] <= PORT_MAX:
            found.append(problem(host, port_model.RANGE_VAR, "%s=%s must be [first, last] with %d <= first <= last <= %d"
                                 % (port_model.RANGE_VAR, span, PORT_MIN, PORT_MAX)))
            span = None
        elif span[1] - span[0] + 1 < MIN_COLLECTIVE_PORTS:
            found.append(problem(host, port_model.RANGE_VAR, "%s=%s holds fewer than %d ports; gloo and NCCL need one per connection"
                                 % (port_model.RANGE_VAR, span, MIN_COLLECTIVE_PORTS)))
    # Every port of the model: a port number; outside the range or inside it, as PORTS says.
    for entry in port_model.PORTS:
        value = c.cluster(entry.var)
        if value is None:
            continue
        if not PORT_MIN <= value <= PORT_MAX:
            found.append(problem(host, entry.var, "%s=%s must be a port from %d to %d" % (entry.var, value, PORT_MIN, PORT_MAX)))
            if entry.var == "torchrun_master_port":
                port = None
        elif span is None:
            continue
        elif entry.inside and not span[0] <= value <= span[1]:
            found.append(problem(host, entry.var, "%s=%s lies outside %s %s, which is the only range the firewall opens "
                                                  "to the peers; leave it unset (the range's first port)" % (entry.var, value, port_model.RANGE_VAR, span)))
        elif not entry.inside and span[0] <= value <= span[1]:
            found.append(problem(host, entry.var, "%s=%s lies inside %s %s; move one of them" % (entry.var, value, port_model.RANGE_VAR, span)))
    for node in c.hosts:
        for ssh in c.get(node, "firewall_ssh_ports") or []:
            if not 1 <= ssh <= PORT_MAX:
                found.append(problem(node, "firewall_ssh_ports", "firewall_ssh_ports holds %s, which is not a TCP port" % ssh))
    if c.facts is not None and span is not None:
        found += _node_ports(c, port, span)
    return found


def _node_ports(c: Cluster, port: int | None, span: list[int]) -> list[Problem]:
    found = []
    job = c.cluster("torchrun_job")
    master = c.node_facts(c.master) or {}
    for entry in master.get("listeners", []):
        if port is not None and entry.get("port") == port and entry.get("unit") != "torchrun-%s.service" % job:
            owner = entry.get("process") or "an unknown process"
            if entry.get("pid"):
                owner += " (pid %s%s)" % (entry["pid"], ", " + entry["unit"] if entry.get("unit") else "")
            found.append(problem(c.master, "torchrun_master_port", "torchrun_master_port=%s is in use on the master node by %s; "
                                                                   "stop it or choose another port" % (port, owner)))
    for node in c.hosts:
        facts = c.node_facts(node)
        if facts is None:
            continue
        ssh_ports = {int(c.get(node, "ansible_port") or 22)}
        ssh_ports |= set(facts.get("ssh_ports", []))
        for ssh in sorted(ssh_ports):
            if span[0] <= ssh <= span[1]:
                found.append(problem(node, "torchrun_collective_port_range", "SSH listens on port %s, inside torchrun_collective_port_range %s, "
                                     "which becomes the kernel's ephemeral range; move the range off it" % (ssh, span)))
        use = facts.get("ephemeral") or {}
        size = span[1] - span[0] + 1
        if use.get("busiest", 0) >= size:
            found.append(problem(node, "torchrun_collective_port_range", "%d connections to %s hold ephemeral ports on this node now, and "
                                 "torchrun_collective_port_range %s-%s (%d ports) becomes its whole ephemeral range, for every "
                                 "program: a program holds at most about one connection per port to one destination, so they "
                                 "would not fit; widen the range" % (use["busiest"], use.get("busiest_peer"), span[0], span[1], size)))
        for other in facts.get("jobs", []):
            if other.get("job") == job:
                continue
            other_port = other.get("master_port")
            if port is not None and other_port == port:
                found.append(problem(node, "torchrun_master_port", "torchrun_master_port=%s is already the port of job %s on this node; "
                                                                   "give each job its own port" % (port, other["job"])))
            if other.get("collective_port_range") and list(other["collective_port_range"]) != list(span):
                found.append(problem(node, "torchrun_collective_port_range", "torchrun_collective_port_range=%s differs from %s of job %s "
                                     "on this node; the kernel has one ephemeral range, so jobs on a node share it"
                                     % ("-".join(map(str, span)), "-".join(map(str, other["collective_port_range"])), other["job"])))
            if other_port is not None and span[0] <= other_port <= span[1]:
                found.append(problem(node, "torchrun_collective_port_range", "port %s of job %s lies inside torchrun_collective_port_range %s; "
                                                                             "move the range off it" % (other_port, other["job"], span)))
    return found


# ---- addresses and peers ----------------------------------------------------------------------------
def address_of(host: str, hvars: dict) -> tuple[str, Any]:
    """Which variable gives a host its cluster address, and its value."""
    for var in ("torchrun_address", "ansible_host"):
        if hvars.get(var) not in (None, ""):
            return var, hvars[var]
    return "inventory name", host


def check_address(host: str, var: str, value: Any) -> tuple[str | None, Problem | None]:
    """The address in canonical form, or the problem with it."""
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None, problem(host, var, "%s=%r is not an IP address; set torchrun_address to the node's address on the "
                                        "cluster network" % (var, value))
    for trap, why in ((address.is_loopback, "a loopback address"), (address.is_unspecified, "the any-address"),
                      (address.is_multicast, "a multicast address"), (address.is_link_local, "a link-local address")):
        if trap:
            return None, problem(host, var, "%s=%s is %s, which the other nodes cannot reach; set torchrun_address to the "
                                            "node's address on the cluster network" % (var, address, why))
    if address.version == 6:
        return None, problem(host, var, "%s=%s is an IPv6 address; the collection's firewall rules, peer sets and connectivity "
                                        "probes are IPv4-only for now, so the job's store would not be guarded: give the "
                                        "node's IPv4 cluster address (torchrun_address)" % (var, address))
    return str(address), None


def addresses(c: Cluster) -> list[Problem]:
    """Each node's cluster address: an IP address of its own; firewall_peers only ever cluster nodes."""
    found = []
    for host in c.hosts:
        var, value = address_of(host, c.values[host])
        address, trouble = check_address(host, var, value)
        if trouble:
            found.append(trouble)
        else:
            c.addresses[host] = address
    by_address: dict[str, list[str]] = {}
    for host, address in c.addresses.items():
        by_address.setdefault(address, []).append(host)
    for address, hosts in by_address.items():
        if len(hosts) > 1:
            found.append(Problem(hosts[0], "torchrun_address", "%s: share the cluster address %s (torchrun_address / ansible_host); "
                                                               "each node needs its own" % (", ".join(hosts), address)))
    known = [c.addresses[h] for h in c.hosts if h in c.addresses]
    for host in c.hosts:
        peers = c.get(host, "firewall_peers")
        if peers is None:
            continue
        if len(peers) == 0:
            found.append(problem(host, "firewall_peers", "firewall_peers is empty; the job's own nodes could not reach it "
                                                         "(leave it unset for the cluster's addresses)"))
        for peer in peers:
            text = str(peer).strip()
            if "/" in text or text in ("0.0.0.0", "::", "any", "all"):
                found.append(problem(host, "firewall_peers", "firewall_peers holds %s, a network, not a node: it would open the job's "
                                                             "unauthenticated ports to every address in it; list cluster node "
                                                             "addresses only" % shown(peer)))
                continue
            try:
                canonical = str(ipaddress.ip_address(text))
            except ValueError:
                canonical = None
            if canonical not in known:
                found.append(problem(host, "firewall_peers", "firewall_peers holds %s, which is not a node of group %s (%s); only the "
                                                             "cluster's nodes may reach its ports" % (shown(peer), c.group, ", ".join(known))))
    return found


# ---- processes and GPUs -------------------------------------------------------------------------------
def processes(c: Cluster) -> list[Problem]:
    """Processes per node: a positive number or gpu; with node facts, against the GPUs on each node's PCI bus."""
    found = []
    counts: dict[str, int | None] = {}
    cuda = c.cluster("torchrun_accelerator") == "cuda"
    for host in c.hosts:
        nproc = c.get(host, "torchrun_nproc_per_node")
        if nproc is None:
            counts[host] = None
            continue
        text = str(nproc).strip()
        if not (text == "gpu" or (re.fullmatch(r"[0-9]+", text) and int(text) > 0)) or isinstance(nproc, bool):
            found.append(problem(host, "torchrun_nproc_per_node", 'torchrun_nproc_per_node=%s must be a positive integer or "gpu"' % shown(nproc)))
            counts[host] = None
            continue
        if text == "gpu" and not cuda:
            found.append(problem(host, "torchrun_nproc_per_node", "torchrun_nproc_per_node=gpu needs torchrun_accelerator=cuda; a CPU node "
                                                                  "needs a number of processes"))
            counts[host] = None
            continue
        facts = c.node_facts(host)
        gpus = None if facts is None else int(facts.get("gpus", 0))
        chosen, gpu_problems = _gpu_set(c, host, cuda, text, gpus)
        found += gpu_problems
        if cuda and gpus is not None and c.get(host, "nvidia_require_gpus", True):
            if gpus == 0:
                found.append(problem(host, "torchrun_accelerator", "torchrun_accelerator=cuda but the node has no NVIDIA GPU on its PCI bus; "
                                                                   "use torchrun_accelerator=cpu, or nvidia_require_gpus=false to install the stack anyway"))
            elif text != "gpu" and int(text) > gpus and not chosen:
                found.append(problem(host, "torchrun_nproc_per_node", "torchrun_nproc_per_node=%s but the node has %d NVIDIA GPU(s); give at "
                                                                      "most %d, or gpu for one process per GPU" % (text, gpus, gpus)))
        if chosen:  # the job's GPU set, which gpu counts
            gpus = len(chosen)
        counts[host] = int(text) if text != "gpu" else (gpus if gpus else None)
    known = {h: n for h, n in counts.items() if n is not None}
    if len(known) == len(c.hosts) and len(set(known.values())) > 1 and not c.cluster("torchrun_heterogeneous"):
        first = known[c.master]
        for host in c.hosts[1:]:
            if known[host] != first:
                found.append(problem(host, "torchrun_nproc_per_node", "runs %d process(es) per node (torchrun_nproc_per_node), %s runs %d; "
                                                                      "make them equal, or set torchrun_heterogeneous=true if the nodes "
                                                                      "really differ" % (known[host], c.master, first)))
    found += _lightning(c, known)
    return found


GPU_INDEX = re.compile(r"^[0-9]{1,3}$")
GPU_UUID = re.compile(r"^(GPU|MIG)-[0-9a-fA-F][0-9a-fA-F/-]{3,}$")


def _gpu_set(c: Cluster, host: str, cuda: bool, nproc: str, gpus: int | None) -> tuple[list[str], list[Problem]]:
    """torchrun_gpus of one node (CUDA_VISIBLE_DEVICES): its syntax, against the processes, the node's GPUs and other jobs."""
    chosen = [str(g).strip() for g in (c.get(host, "torchrun_gpus") or [])]
    if not chosen:
        return [], _gpu_overlap(c, host, cuda, None)
    var = "torchrun_gpus"
    if not cuda:
        return [], [problem(host, var, "torchrun_gpus is set, but torchrun_accelerator is not cuda; remove it")]
    bad = [g for g in chosen if not (GPU_INDEX.match(g) or GPU_UUID.match(g))]
    if bad:
        return [], [problem(host, var, "torchrun_gpus holds %s: each entry must be a GPU index (0, 1, ...) or a GPU or MIG UUID "
                                       "(GPU-..., MIG-..., as nvidia-smi -L prints them)" % ", ".join(shown(g) for g in bad))]
    if len(set(chosen)) != len(chosen):
        return [], [problem(host, var, "torchrun_gpus=%s names a GPU twice" % ",".join(chosen))]
    if len({bool(GPU_INDEX.match(g)) for g in chosen}) > 1:
        return [], [problem(host, var, "torchrun_gpus=%s mixes indices and UUIDs; use one kind" % ",".join(chosen))]
    found = []
    if nproc != "gpu" and int(nproc) > len(chosen):
        found.append(problem(host, "torchrun_nproc_per_node", "torchrun_nproc_per_node=%s but torchrun_gpus gives the job %d GPU(s); give at "
                                                              "most %d processes, or gpu for one per GPU of the set" % (nproc, len(chosen), len(chosen))))
    if gpus is not None:
        if len(chosen) > gpus:
            found.append(problem(host, var, "torchrun_gpus names %d GPU(s), but the node has %d" % (len(chosen), gpus)))
        else:
            beyond = [g for g in chosen if GPU_INDEX.match(g) and int(g) >= gpus]
            if beyond:
                found.append(problem(host, var, "torchrun_gpus holds %s, but the node's GPUs are 0 to %d" % (", ".join(beyond), gpus - 1)))
    return chosen, found + _gpu_overlap(c, host, cuda, chosen)


def _gpu_overlap(c: Cluster, host: str, cuda: bool, chosen: list[str] | None) -> list[Problem]:
    """Two CUDA jobs on a node must not share a GPU; a job without torchrun_gpus uses every GPU."""
    facts = c.node_facts(host)
    if not cuda or facts is None:
        return []
    job = c.cluster("torchrun_job")
    found = []
    for other in facts.get("jobs", []):
        if other.get("job") == job or other.get("accelerator") not in (None, "cuda"):
            continue
        theirs = other.get("gpus")
        if chosen is None or theirs is None:
            shared = "every GPU" if chosen is None and theirs is None else "the node's GPUs"
        else:
            common = sorted(set(chosen) & set(theirs))
            if not common:
                continue
            shared = "GPU(s) %s" % ", ".join(common)
        found.append(problem(host, "torchrun_gpus", "job %s on this node already uses %s (its torchrun_gpus: %s); give each job its own "
                                                    "GPUs with torchrun_gpus on this node" % (other["job"], shared, ",".join(theirs) if theirs else "all")))
    return found


def _lightning(c: Cluster, counts: dict[str, int]) -> list[Problem]:
    trainer = c.cluster("torchrun_lightning_trainer") or {}
    nnodes = c.cluster("torchrun_nnodes")
    nodes = str(len(c.hosts)) if nnodes in (None, "") else str(nnodes)
    if not trainer or len(counts) != len(c.hosts) or len(set(counts.values())) != 1 or not nodes.isdigit():
        return []
    per_node = counts[c.master]
    world = per_node * int(nodes)
    try:
        devices = int(trainer.get("devices", per_node))
        num_nodes = int(trainer.get("num_nodes", nodes))
    except (TypeError, ValueError):
        return [problem(c.master, "torchrun_lightning_trainer", "torchrun_lightning_trainer=%s: devices and num_nodes must be whole numbers"
                        % shown(trainer))]
    if devices * num_nodes == world:
        return []
    return [problem(c.master, "torchrun_lightning_trainer",
                    "torchrun_lightning_trainer gives Trainer(devices=%d, num_nodes=%d), %d process(es), but the job runs %d "
                    "(%s node(s) x %d); Lightning stops at start-up: pass devices=%d and num_nodes=%s, or leave them out"
                    % (devices, num_nodes, devices * num_nodes, world, nodes, per_node, per_node, nodes))]


# ---- rendezvous -----------------------------------------------------------------------------------------
RANK_VARIABLES = contract.RANK_VARIABLES


def rendezvous(c: Cluster) -> list[Problem]:
    """--nnodes against the group, node ranks never set by hand, timeouts, and rank variables pre-set on a node."""
    host = c.master
    found = []
    size = len(c.hosts)
    backend = c.cluster("torchrun_rdzv_backend")
    nnodes = c.cluster("torchrun_nnodes")
    nn = "" if nnodes is None else str(nnodes).strip()
    if backend == "static" and nn and nn != str(size):
        found.append(problem(host, "torchrun_nnodes", "torchrun_nnodes=%s but group %s has %d node(s); the static rendezvous needs exactly "
                                                      "the group (leave it empty)" % (shown(nn), c.group, size)))
    elif backend == "c10d" and nn:
        match = NNODES.match(nn)
        low = int(match.group(1)) if match else 0
        high = int(match.group(2) or low) if match else 0
        if not match or low < 1 or high < low:
            found.append(problem(host, "torchrun_nnodes", "torchrun_nnodes=%s must be N or MIN:MAX with 1 <= MIN <= MAX" % shown(nn)))
        elif not low <= size <= high:
            found.append(problem(host, "torchrun_nnodes", "torchrun_nnodes=%s does not admit the %d node(s) of group %s" % (nn, size, c.group)))
    for node in c.hosts:
        if c.get(node, "torchrun_node_rank") is not None:
            why = ("the c10d rendezvous assigns ranks itself" if backend == "c10d"
                   else "the node rank is the host's place in group %s" % c.group)
            found.append(problem(node, "torchrun_node_rank", "torchrun_node_rank is set, but %s; remove it" % why))
    for var in ("torchrun_rdzv_join_timeout", "torchrun_collective_timeout", "torchrun_rdzv_last_call_timeout",
                "torchrun_rdzv_close_timeout", "torchrun_rdzv_read_timeout", "job_join_timeout", "job_wait_timeout",
                "launcher_timeout_stop_sec", "healthcheck_timeout", "connectivity_timeout", "connectivity_listener_seconds"):
        value = c.cluster(var)
        if value is not None and value <= 0:
            found.append(problem(host, var, "%s=%s must be a positive number of seconds" % (var, value)))
    for var in ("launcher_max_restarts", "launcher_restart_sec", "job_log_lines", "launcher_start_limit_interval_sec"):
        value = c.cluster(var)
        if value is not None and value < 0:
            found.append(problem(host, var, "%s=%s must not be negative" % (var, value)))
    found += _start_limit(c)
    for node in c.hosts:
        for entry in (c.node_facts(node) or {}).get("preset", []):
            if "systemd" in entry.get("where", ""):
                fix = ("every unit inherits it, and a stale rank or master hangs the job: systemctl unset-environment %s, and drop it "
                       "from DefaultEnvironment=" % entry["name"])
            else:
                fix = "login shells inherit it (a torchrun started by hand would hang): remove the line"
            found.append(problem(node, entry["name"], "%s=%s is pre-set in %s; %s" % (entry["name"], entry.get("value", ""), entry["where"], fix)))
    return found


def _start_limit(c: Cluster) -> list[Problem]:
    """A job whose peer is gone must end failed: burst + 1 starts, each waiting the rendezvous timeout, fit the window."""
    burst = c.cluster("launcher_start_limit_burst")
    window = c.cluster("launcher_start_limit_interval_sec")
    timeout = c.cluster("torchrun_rdzv_join_timeout")
    delay = c.cluster("launcher_restart_sec")
    if burst is not None and burst < 1:
        return [problem(c.master, "launcher_start_limit_burst", "launcher_start_limit_burst=%s must be at least 1" % burst)]
    if None in (burst, window, timeout, delay) or window <= 0 or c.cluster("launcher_restart") == "no":
        return []
    span = burst * (timeout + delay)
    if window > span:
        return []
    return [problem(c.master, "launcher_start_limit_interval_sec",
                    "launcher_start_limit_interval_sec=%s is not longer than %s starts that each wait torchrun_rdzv_join_timeout=%s "
                    "+ launcher_restart_sec=%s (%s s): a job whose peer is gone would restart forever; leave it 0 (derived) or give "
                    "more than %s" % (window, burst, timeout, delay, span, span))]


# ---- accounts ---------------------------------------------------------------------------------------------
def accounts(c: Cluster) -> list[Problem]:
    """The job's user is the collection's own: never root, the login user, or any account it did not create."""
    found = []
    user = c.cluster("torchrun_user")
    if user is None or not USER_PATTERN.match(user):
        return found
    if user in RESERVED_USERS:
        found.append(problem(c.master, "torchrun_user", "torchrun_user=%s is a system account the collection must never take over; "
                                                        "leave the default (torchrun-<job>) or name a new account" % user))
        return found
    job = c.cluster("torchrun_job")
    for node in c.hosts:
        for other in (c.node_facts(node) or {}).get("jobs", []):
            if other.get("job") != job and other.get("user") == user:
                found.append(problem(node, "torchrun_user", "torchrun_user=%s is already the user of job %s on this node; each job "
                                                            "runs as its own user, so that jobs cannot read each other's environment, "
                                                            "secrets or checkpoints: leave the default (torchrun-<job>) or name a new "
                                                            "account" % (user, other["job"])))
        login = c.get(node, "ansible_user")
        if login == user:
            found.append(problem(node, "torchrun_user", "torchrun_user=%s is the account Ansible logs in with (ansible_user); the "
                                                        "collection would rewrite its shell, home and group: name a new account" % user))
            continue
        facts = c.node_facts(node)
        if facts is None:
            continue
        account = facts.get("account") or {}
        if account.get("exists") and not account.get("ours"):
            found.append(problem(node, "torchrun_user", "torchrun_user=%s is an existing account (uid %s, %s) that the collection did not "
                                                        "create; it would rewrite its shell, home and group: name a new account"
                                 % (user, account.get("uid"), account.get("home") or "no home")))
        elif not account.get("exists") and account.get("group_exists"):
            found.append(problem(node, "torchrun_user", "torchrun_user=%s: a group of that name already exists on the node and the "
                                                        "collection did not create it; name a new account" % user))
        elif account.get("exists") and account.get("uid") == 0:
            found.append(problem(node, "torchrun_user", "torchrun_user=%s has uid 0; a job never runs as root" % user))
        found += _uid(c, node, user, account)
    return found


def _uid(c: Cluster, node: str, user: str, account: dict) -> list[Problem]:
    """torchrun_uid: free on the node for the job's user and group, or theirs already."""
    uid = c.cluster("torchrun_uid")
    if not isinstance(uid, int) or not 0 < uid <= UID_MAX or uid == NOBODY:
        return []
    found = [problem(node, "torchrun_uid", "torchrun_uid=%d is already the %s of %s %s on this node; choose a number free on every "
                                           "node (getent passwd %d; getent group %d)" % (uid, kind, what, holder, uid, uid))
             for kind, what, holder in (("uid", "account", account.get("uid_holder")), ("gid", "group", account.get("gid_holder")))
             if holder]
    if found or not (account.get("exists") and account.get("ours")):
        return found
    wrong = ["%s %d" % (kind, have) for kind, have in (("uid", account.get("uid")), ("gid", account.get("gid"))) if have not in (None, uid)]
    if wrong:
        found.append(problem(node, "torchrun_uid", "torchrun_uid=%d, but an earlier setup created %s here with %s; the collection does "
                                                   "not renumber an account: set torchrun_uid=%d, or stop the job and remove the account "
                                                   "and its group (userdel %s) first" % (uid, user, " and ".join(wrong), account.get("uid"), user)))
    return found


# ---- firewall ---------------------------------------------------------------------------------------------
def firewall(c: Cluster) -> list[Problem]:
    """The firewall manager each node runs, and the nftables table: only ever one of our own."""
    found = []
    for node in c.hosts:
        facts = c.node_facts(node)
        backend = c.get(node, "firewall_backend")
        if facts is None or backend is None:
            continue
        active = list(facts.get("firewall_active", []))
        if backend == "auto" and len(active) > 1:
            found.append(problem(node, "firewall_backend", "%s are both active (firewall_backend=auto cannot choose); stop one, or set "
                                                           "firewall_backend to the one that guards this node" % " and ".join(active)))
        elif backend in ("firewalld", "ufw") and backend not in active:
            found.append(problem(node, "firewall_backend", "firewall_backend=%s but %s is not active on the node; the collection never "
                                                           "turns a firewall manager on: start it, or use auto" % (backend, backend)))
        elif backend == "nftables" and active:
            found.append(problem(node, "firewall_backend", "firewall_backend=nftables but %s is active, whose rules would still drop the "
                                                           "job's traffic; use auto or %s" % (" and ".join(active), active[0])))
        chosen = _chosen_backend(backend, active)
        found += _site_manager(node, chosen, facts.get("firewall_site") or {})
        table = c.get(node, "firewall_table")
        if chosen == "nftables" and table and TABLE_PATTERN.match(table):
            existing = set(facts.get("nft_tables", []))
            ours = set(facts.get("nft_own_tables", []))
            if "inet " + table in existing and table not in ours:
                found.append(problem(node, "firewall_table", "firewall_table=%s names the table inet %s that the site already has "
                                                             "(live or in /etc/nftables.conf) and the collection did not create; the "
                                                             "collection replaces its table whole, so name a new one (default torchrun)"
                                     % (table, table)))
    return found


def _allowed_ports(entry: Any) -> tuple[int, int] | None:
    """An entry's port as (first, last), or None when it is not a TCP port or range."""
    text = str(entry.get("port", "")).strip() if isinstance(entry, dict) else ""
    match = re.fullmatch(r"([0-9]{1,5})(?:-([0-9]{1,5}))?", text)
    if not match:
        return None
    first, last = int(match.group(1)), int(match.group(2) or match.group(1))
    return (first, last) if 1 <= first <= last <= PORT_MAX else None


def _job_port_spans(c: Cluster, node: str) -> list[tuple[int, int, str]]:
    """The ports of the jobs on ``node`` (this one's and the others'), each with what it is."""
    spans = []
    port, span = c.cluster("torchrun_master_port"), c.cluster(port_model.RANGE_VAR)
    if isinstance(port, int):
        spans.append((port, port, "torchrun_master_port"))
    if isinstance(span, list) and len(span) == 2 and all(isinstance(p, int) for p in span):
        spans.append((span[0], span[1], "torchrun_collective_port_range"))
    for other in (c.node_facts(node) or {}).get("jobs", []):
        if other.get("master_port") is not None and other.get("job") != c.cluster("torchrun_job"):
            spans.append((other["master_port"], other["master_port"], "the master port of job %s" % other.get("job")))
    return spans


def firewall_mode(c: Cluster) -> list[Problem]:
    """firewall_mode and firewall_allow: the allow-list only in strict mode, never over a job's port."""
    found = []
    for node in c.hosts:
        mode, allow = c.get(node, "firewall_mode"), c.get(node, "firewall_allow") or []
        if mode != "strict" and allow:
            found.append(problem(node, "firewall_allow", "firewall_allow is set, but firewall_mode=%s leaves every port but the jobs' as "
                                                         "the site has it; set firewall_mode=strict, or remove firewall_allow" % mode))
            continue
        for entry in allow:
            ports = _allowed_ports(entry)
            sources = entry.get("from") if isinstance(entry, dict) else None
            if ports is None or not isinstance(sources, list) or not sources or set(entry) - {"port", "from"}:
                found.append(problem(node, "firewall_allow", "firewall_allow holds %s: each entry is {port: <TCP port or first-last>, from: "
                                                             "[<addresses or networks>]}" % shown(entry)))
                continue
            for source in sources:
                try:
                    ipaddress.ip_network(str(source).strip(), strict=False)
                except ValueError:
                    found.append(problem(node, "firewall_allow", "firewall_allow port %s holds the source %s, which is not an address or "
                                                                 "network" % (entry["port"], shown(source))))
            for first, last, what in _job_port_spans(c, node):
                if ports[0] <= last and first <= ports[1]:
                    found.append(problem(node, "firewall_allow", "firewall_allow port %s overlaps %s (%s); the jobs' unauthenticated "
                                                                 "ports are for their peers only" % (entry["port"], what,
                                                                                                     first if first == last else "%d-%d" % (first, last))))
        facts = c.node_facts(node)
        if mode == "strict" and facts is not None:
            chosen = _chosen_backend(c.get(node, "firewall_backend"), list(facts.get("firewall_active", [])))
            if chosen in ("firewalld", "ufw"):
                found.append(problem(node, "firewall_mode", "firewall_mode=strict, but %s guards this node and decides every other port; "
                                                            "strict is for nodes without a firewall manager: leave firewall_mode=jobs" % chosen))
    return found


def notes(c: Cluster) -> list[str]:
    """What a run will change that the operator should know, though nothing is wrong: a collective range
    that the node's connections already half fill, and the listening services that firewall_mode=strict
    cuts off from other hosts, on each node."""
    found = []
    span = c.cluster(port_model.RANGE_VAR)
    for node in c.hosts:
        facts = c.node_facts(node)
        use = (facts or {}).get("ephemeral") or {}
        if isinstance(span, list) and len(span) == 2 and use.get("total", 0) * 2 >= span[1] - span[0] + 1:
            found.append("WARNING %s: %d TCP connections hold ephemeral ports now, half or more of the %d ports of "
                         "torchrun_collective_port_range %s-%s, which becomes the whole ephemeral range of the node: size the range "
                         "for the other programs of the node too" % (node, use["total"], span[1] - span[0] + 1, span[0], span[1]))
        if c.get(node, "firewall_mode") != "strict" or facts is None:
            continue
        kept = [(p, p) for p in set(facts.get("ssh_ports", [])) | {int(c.get(node, "ansible_port") or 22)}]
        kept += [(p, p) for p in c.get(node, "firewall_ssh_ports") or []]
        kept += [span[:2] for span in _job_port_spans(c, node)]
        kept += [ports for ports in map(_allowed_ports, c.get(node, "firewall_allow") or []) if ports]
        cut = {}
        for entry in facts.get("listeners", []):
            address = str(entry.get("address", ""))
            if address.startswith("127.") or address in ("::1", "0:0:0:0:0:0:0:1"):
                continue
            port = entry.get("port")
            if isinstance(port, int) and not any(first <= port <= last for first, last in kept):
                cut.setdefault(port, entry.get("process") or "an unknown process")
        if cut:
            found.append("WARNING %s: firewall_mode=strict drops every port but SSH, the ports of the jobs and firewall_allow, which cuts "
                         "%s off from other hosts: add what must stay reachable to firewall_allow (port and sources), or leave "
                         "firewall_mode=jobs" % (node, ", ".join("%s (%d)" % (name, port) for port, name in sorted(cut.items()))))
    return found


def _chosen_backend(backend: str, active: list[str]) -> str:
    """What firewall_backend picks on a node whose active managers are ``active`` (as the firewall role's detect.yml does)."""
    return backend if backend != "auto" else (active[0] if active else "nftables")


def _site_manager(node: str, chosen: str, site: dict) -> list[Problem]:
    """The site's firewall manager must deny what the job's rules do not allow, or the rules guard nothing."""
    if chosen == "firewalld" and site.get("firewalld_target", "").upper() == "ACCEPT":
        zone = site.get("firewalld_zone", "")
        return [problem(node, "firewall_backend", "firewalld lets every address in through zone %s (target ACCEPT), so the job's "
                                                  "peers-only rules in it guard nothing and the job's ports would rest on the "
                                                  "collection's guard table alone; move the cluster interface to a zone that rejects "
                                                  "by default (firewall-cmd --permanent --zone=public --change-interface=<interface>), "
                                                  "or set that zone's target to default" % zone)]
    found = []
    if chosen == "ufw" and site.get("ufw_default_input", "DROP") == "ACCEPT":
        found.append(problem(node, "firewall_backend", "ufw lets every address in (default allow incoming), so the job's peers-only "
                                                       "rules in it guard nothing and the job's ports would rest on the collection's "
                                                       "guard table alone; run ufw default deny incoming"))
    if chosen == "ufw" and site.get("ufw_ipv6") is False:
        found.append(problem(node, "firewall_backend", "ufw filters IPv4 only (IPV6=no in /etc/default/ufw) while the job's store "
                                                       "listens on IPv6 too, guarded over IPv6 by the collection's guard table alone; "
                                                       "set IPV6=yes and run ufw reload"))
    return found


# ---- stack sources ----------------------------------------------------------------------------------------
def stack_sources(c: Cluster) -> list[Problem]:
    """Where the NVIDIA stack and the Python packages come from, and with which package manager."""
    found = []
    for node in c.hosts:
        facts = c.node_facts(node) or {}
        manager = facts.get("package_manager")
        if manager not in (None, "apt"):
            found.append(problem(node, "torchrun_group", "runs %s, whose packages come with %s; the collection installs with apt only "
                                                         "(Debian 12, Ubuntu 22.04 and 24.04): take the node out of group %s"
                                 % (facts.get("os_release") or "an unknown system", manager, c.group)))
    cuda = c.cluster("torchrun_accelerator") == "cuda"
    for host in c.hosts:
        get = c.values[host].get
        if cuda:
            source = get("nvidia_driver_source", "cuda_repo")
            toolkit = str(get("nvidia_cuda_toolkit", "") or "")
            from_repo = bool(toolkit) and toolkit != "distro" and source != "distro"
            if (source == "cuda_repo" or (source == "none" and (from_repo or get("nvidia_nccl")))) and not get("nvidia_cuda_repo_url"):
                found.append(problem(host, "nvidia_cuda_repo_url", "nvidia_driver_source=%s needs nvidia_cuda_repo_url, the base URL of NVIDIA's "
                                                                   "CUDA repository or of the site's mirror of it (or set nvidia_driver_source: "
                                                                   "distro)" % source))
            if source == "distro" and get("ansible_os_family") == "RedHat":
                found.append(problem(host, "nvidia_driver_source", "nvidia_driver_source=distro, but %s ships no NVIDIA driver; use cuda_repo "
                                                                   "(with nvidia_cuda_repo_url) or none" % get("ansible_distribution", "this system")))
            branch = get("nvidia_driver_branch")
            if branch is not None and not DRIVER_BRANCH.match(str(branch)):
                found.append(problem(host, "nvidia_driver_branch", "nvidia_driver_branch=%s must be a driver branch number such as 550" % shown(branch)))
            if from_repo and not TOOLKIT.match(toolkit):
                found.append(problem(host, "nvidia_cuda_toolkit", "nvidia_cuda_toolkit=%s must be MAJOR-MINOR as the repository names it, "
                                                                  "such as 12-4, or distro" % shown(toolkit)))
            for key in sorted(map(str, (get("nvidia_nccl_conf") or {}).keys())):
                if not NCCL_KEY.match(key):
                    found.append(problem(host, "nvidia_nccl_conf", "nvidia_nccl_conf has the key %s, which is not an NCCL_ setting" % shown(key)))
            for key, value in sorted((get("nvidia_nccl_conf") or {}).items(), key=lambda kv: str(kv[0])):
                if CONTROL.search(str(value)):
                    found.append(problem(host, "nvidia_nccl_conf", "nvidia_nccl_conf.%s holds a line break or control character" % key))
        for var in ("nvidia_cuda_repo_url", "nvidia_cuda_repo_key_url", "pytorch_index_url", "pytorch_proxy"):
            value = get(var)
            if value and not URL.match(value):
                found.append(problem(host, var, "%s=%s must be an http(s) URL without spaces or quotes" % (var, shown(value))))
        for var in ("pytorch_extra_index_urls", "pytorch_find_links"):
            for value in get(var) or []:
                if not URL.match(str(value)) and not _absolute_path(host, var, str(value)) == []:
                    found.append(problem(host, var, "%s holds %s, which is neither an http(s) URL nor an absolute path" % (var, shown(value))))
        for var in ("pytorch_trusted_hosts",):
            for value in get(var) or []:
                if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", str(value)):
                    found.append(problem(host, var, "%s holds %s, which is not a host name or address" % (var, shown(value))))
        for var in ("pytorch_torch_version", "pytorch_lightning_version"):
            value = get(var)
            if value is not None and not VERSION.match(str(value)):
                found.append(problem(host, var, "%s=%s must be a version such as 2.13.0" % (var, shown(value))))
        for var in ("pytorch_requirements", "pytorch_tools", "stack_report_packages"):
            for value in get(var) or []:
                text = str(value)
                if text.lstrip().startswith("-") or CONTROL.search(text) or not text.strip():
                    found.append(problem(host, var, "%s holds %s, which is not a package requirement (pip would read a leading '-' as "
                                                    "one of its own options)" % (var, shown(value))))
        python = get("pytorch_python")
        if python is not None:
            found += _absolute_path(host, "pytorch_python", python)
    return found


def script_found(script: str, roles_dir: Any, playbook_dir: Any) -> bool:
    """Whether the launcher's copy would find ``script`` on the controller (its role's files, then the playbook's)."""
    if os.path.isabs(script):
        return os.path.isfile(script)
    return any(os.path.isfile(os.path.join(str(base), script)) for base in (
        os.path.join(str(roles_dir), "launcher", "files"), os.path.join(str(roles_dir), "launcher"),
        os.path.join(str(playbook_dir), "files"), str(playbook_dir)))


# ---- composition ------------------------------------------------------------------------------------------
# ---- the play -------------------------------------------------------------------------------------------
def whole_group(c: Cluster, play_hosts: Iterable[str], partial_var: str = "") -> list[Problem]:
    """A job runs on every node of its group at once: a play narrowed with --limit would start part of
    the job (whose nodes then wait their whole join timeout for the rest), stop part of it (the others
    hang on their peers) or install another part's settings. ``partial_var`` names the setting that
    lets a play which may mean part of the group (setup, stop) say so; launch and the health check have none."""
    playing = set(play_hosts)
    missing = [host for host in c.hosts if host not in playing]
    if not c.hosts or not missing or (partial_var and c.cluster(partial_var) is True):
        return []
    them = "it" if len(missing) == 1 else "them"
    fix = "run without --limit, or take %s out of group %s" % (them, c.group)
    if partial_var:
        fix += ("; or, where part of the group is meant (one node's stack upgraded while the job is stopped, a stop that "
                "leaves out a node that is gone), say so with -e %s=true" % partial_var)
    return [problem(c.master, "--limit", "this play leaves out %s of group %s (--limit or a narrower host pattern); a job runs "
                                         "on every node of the group at once, and part of it started, stopped or changed leaves "
                                         "the others waiting their whole join timeout or hanging on their peers: %s"
                    % (", ".join(missing), c.group, fix))]


# ---- folders the job reads or writes ---------------------------------------------------------------
# Where the unit cannot give a job a folder: the system itself, and what its hardening hides
# (ProtectHome, PrivateTmp) or keeps for others (other jobs' folders, the venv).
SYSTEM_FOLDERS = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev", "/proc", "/sys",
                  "/run", "/var/lib", "/var/cache", "/var/log", "/var/spool", "/efi") + HIDDEN_FOLDERS
FOLDER_VARS = ("torchrun_read_paths", "torchrun_write_paths")


def declared_paths(c: Cluster) -> list[Problem]:
    """torchrun_read_paths and torchrun_write_paths: absolute data folders, not the system's; on every node, usable by the job."""
    host = c.master
    found = []
    lists = {var: [str(p) for p in (c.cluster(var) or [])] for var in FOLDER_VARS}
    hidden = [c.cluster("torchrun_state_dir"), c.cluster("torchrun_venv")]
    for var, paths in lists.items():
        for path in paths:
            if _bad_path(path):
                found.append(problem(host, var, "%s holds %s: each %s" % (var, shown(path), PATH_RULE)))
                continue
            inside = _system_folder(path, hidden)
            if inside:
                found.append(problem(host, var, "%s holds %s, %s; give the job its own data folder (such as /srv/<name> or a "
                                                "mount point)" % (var, path, "inside %s, which the job's unit keeps from it or from "
                                                                  "change" % inside if inside != "top" else "a top-level system folder")))
    both = sorted(set(p.rstrip("/") for p in lists["torchrun_read_paths"]) & set(p.rstrip("/") for p in lists["torchrun_write_paths"]))
    if both:
        found.append(problem(host, "torchrun_read_paths", "%s is in both torchrun_read_paths and torchrun_write_paths; keep it in one" % ", ".join(both)))
    if found or c.facts is None:
        return found
    user = c.cluster("torchrun_user")
    for node in c.hosts:
        folders = (c.node_facts(node) or {}).get("folders") or {}
        for var, paths in lists.items():
            need = "writable" if var == "torchrun_write_paths" else "readable"
            for path in paths:
                seen = folders.get(path)
                if seen is None:
                    continue
                if not seen.get("exists"):
                    found.append(problem(node, var, "%s holds %s, which is not a folder on this node; create or mount it on every node"
                                         % (var, path)))
                elif seen.get(need) is False:
                    found.append(problem(node, var, "%s holds %s, which %s cannot %s (owner %s, mode %s); give the job's user access "
                                                    "(chown, chgrp or chmod)" % (var, path, user, "write" if need == "writable" else "read",
                                                                                 seen.get("owner"), seen.get("mode"))))
    return found


def _system_folder(path: str, hidden: list[str]) -> str | None:
    """The system folder (or hidden one) ``path`` lies in, "top" for a top-level folder such as /srv, else None."""
    under = _under(path, SYSTEM_FOLDERS + tuple(h.rstrip("/") for h in hidden if h))
    if under:
        return under
    return "top" if path.rstrip("/") in ("/var", "/opt", "/srv", "/mnt", "/media") else None


def shared_storage(c: Cluster) -> list[Problem]:
    """torchrun_shared_dir: one file system on every node (a token written on the master is seen on each), writable by the job's user."""
    host = c.master
    shared = c.cluster("torchrun_shared_dir")
    var = "torchrun_shared_dir"
    if not shared:
        return []
    bad = _absolute_path(host, var, shared)
    if bad:
        return bad
    inside = _system_folder(shared, [c.cluster("torchrun_state_dir"), c.cluster("torchrun_venv")])
    if inside:
        return [problem(host, var, "torchrun_shared_dir=%s is %s; give the mount point of the site's shared storage (such as "
                                   "/srv/shared or /mnt/nfs)" % (shared, "a top-level system folder" if inside == "top" else "inside " + inside))]
    if c.facts is None:
        return []
    found = []
    uids = {}
    for node in c.hosts:
        facts = c.node_facts(node) or {}
        seen = (facts.get("folders") or {}).get(shared) or {}
        if "folders" in facts and not seen.get("exists"):
            found.append(problem(node, var, "torchrun_shared_dir=%s is not a folder on this node; mount the shared storage there on "
                                            "every node" % shared))
            continue
        if seen.get("writable") is False:
            found.append(problem(node, var, "torchrun_shared_dir=%s cannot be written by %s (owner %s, mode %s); let the job's user "
                                            "write it" % (shared, c.cluster("torchrun_user"), seen.get("owner"), seen.get("mode"))))
        elif facts.get("shared_token_seen") is False:
            found.append(problem(node, var, "torchrun_shared_dir=%s is not the same file system as on %s (a token written there on %s "
                                            "is not seen here): a local folder of that name, or a mount that is missing; mount the "
                                            "shared storage there" % (shared, c.master, c.master)))
        account = facts.get("account") or {}
        if account.get("exists") and account.get("uid") is not None:
            uids[node] = account["uid"]
    if len(set(uids.values())) > 1:
        first = uids.get(c.master, next(iter(uids.values())))
        for node, uid in uids.items():
            if uid != first:
                text = ("%s has uid %d here and %d on %s; on shared storage the files of one are not the other's: give the user "
                        "the same uid on every node (torchrun_uid)" % (c.cluster("torchrun_user"), uid, first, c.master))
                found.append(problem(node, "torchrun_user", text))
    return found


def fabric(c: Cluster) -> list[Problem]:
    """The RDMA ports NCCL is to use (torchrun_fabric, torchrun_fabric_hcas): names on the controller;
    with node facts, each node's ports (fabric.nccl_plan) and the odd node out among them."""
    found = []
    for host in c.hosts:
        for name in c.get(host, "torchrun_fabric_hcas") or []:
            if not fabric_model.HCA.match(str(name)):
                found.append(problem(host, "torchrun_fabric_hcas", "torchrun_fabric_hcas has %s, which is not an RDMA device name with an "
                                                                   "optional port (mlx5_0, mlx5_0:1; see ls /sys/class/infiniband)" % shown(name)))
    if found or c.facts is None:
        return found
    mode = c.cluster("torchrun_fabric", "auto")
    plans = {}
    for host in c.hosts:
        facts = c.node_facts(host)
        if facts is None or "fabric" not in facts:
            continue
        plans[host] = fabric_model.nccl_plan(facts["fabric"], mode, c.get(host, "torchrun_fabric_hcas") or [], c.addresses.get(host, ""))
        found += [problem(host, "torchrun_fabric", text) for text in plans[host]["problems"]]
    if mode != "socket":
        found += [problem(host, "torchrun_fabric", text + "; make the nodes alike, narrow torchrun_fabric_hcas, or set torchrun_fabric=socket")
                  for host, text in sorted(fabric_model.cluster_problems(plans).items())]
    return found


# ---- the job as the trust boundary: names that reach files, ports SSH holds open, what root runs or changes
# Inventory names reach the job's files (its env file, its nftables file's comments), unit
# descriptions and reports: a host name (RFC 1123 labels, '_' as Ansible allows) or an IPv4 address.
HOST_PATTERN = re.compile(r"\A[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\Z")
HOST_MAX = 253
GROUP_PATTERN = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,63}\Z")  # Ansible's group name grammar


def _inventory_names(c: Cluster) -> list[Problem]:
    found = []
    if not GROUP_PATTERN.match(c.group):
        found.append(Problem("inventory", "torchrun_group", "inventory: torchrun_group=%s must be an inventory group name: letters, digits "
                                                            "and '_', starting with a letter or '_'" % shown(c.group)))
    for host in c.hosts:
        if not HOST_PATTERN.match(host) or len(host) > HOST_MAX:
            found.append(Problem(host, "inventory name", "%s: the inventory name %s must be a host name (letters, digits, '-' and '_' "
                                                         "in dot-separated labels, at most %d characters) or an IP address; it reaches the "
                                                         "job's files and firewall rules: rename the host and give its address in "
                                                         "ansible_host" % (shown(host), shown(host), HOST_MAX)))
    return found


def _ssh_ports(c: Cluster) -> list[Problem]:
    """SSH ports are open to everyone: never one of the job's ports or another job's on the node."""
    found = []
    port = c.cluster("torchrun_master_port")
    span = c.cluster(port_model.RANGE_VAR)
    if not isinstance(port, int) or not (isinstance(span, list) and len(span) == 2 and all(isinstance(p, int) for p in span)):
        return found
    said = {"torchrun_master_port": "torchrun_master_port, the job's store",
            port_model.RANGE_VAR: "inside %s %s-%s" % (port_model.RANGE_VAR, span[0], span[1])}
    for node in c.hosts:
        spans = _job_port_spans(c, node)  # this job's master port, its range, then the other jobs' master ports
        for var in ("firewall_ssh_ports", "ansible_port"):
            value = c.get(node, var)
            for ssh in (value if isinstance(value, list) else [value] if value not in (None, "") else []):
                try:
                    ssh = int(ssh)
                except (TypeError, ValueError):
                    continue
                what = next((said.get(label, label + " on this node") for first, last, label in spans if first <= ssh <= last), None)
                if what:
                    found.append(problem(node, var, "%s holds %s, which is %s; SSH ports are open to every address, so the "
                                                    "job's unauthenticated store would be too: list only the ports sshd listens on"
                                         % (var, ssh, what)))
    return found


def _job_writable(c: Cluster) -> dict[str, str]:
    """The folders jobs' users can write on every node, each with the setting that makes it so."""
    folders = {str(p).rstrip("/"): "torchrun_write_paths" for p in (c.cluster("torchrun_write_paths") or [])}
    for var in ("torchrun_state_dir", "torchrun_shared_dir"):
        value = c.cluster(var)
        if value:
            folders[str(value).rstrip("/")] = var
    return {f: var for f, var in folders.items() if f}


def _root_runs(c: Cluster) -> list[Problem]:
    """Root runs the venv's python (the requirements check) and py-spy: never from where another account writes."""
    venv = c.cluster("torchrun_venv")
    if not isinstance(venv, str) or _bad_path(venv):
        return []
    found = []
    writable = _job_writable(c)
    inside = _under(venv, writable)
    if inside:
        found.append(problem(c.master, "torchrun_venv", "torchrun_venv=%s lies inside %s (%s), which jobs' users write, while root runs "
                                                        "the environment's python and py-spy: put the environment where only root "
                                                        "writes (such as /opt/torchrun/venv)" % (venv, inside, writable[inside])))
        return found
    for node in c.hosts:
        loose = (c.node_facts(node) or {}).get("venv_untrusted")
        if loose:
            text = ("torchrun_venv=%s can be changed by %s (%s, mode %s), while root runs the environment's python and py-spy: give "
                    "it and the folders above it to root (chown -R root: %s; chmod go-w)"
                    % (venv, loose.get("owner"), loose.get("path"), loose.get("mode"), loose.get("path")))
            found.append(problem(node, "torchrun_venv", text))
    return found


def _links(c: Cluster) -> list[Problem]:
    """Root sets the owner and mode of the job's folders: a symbolic link there (the job's user can plant one) is refused, never followed."""
    found = []
    for node in c.hosts:
        for path, target in sorted(((c.node_facts(node) or {}).get("links") or {}).items()):
            found.append(problem(node, "torchrun_state_dir" if not path.startswith(str(c.cluster("torchrun_shared_dir") or "\0")) else "torchrun_shared_dir",
                                 "%s is a symbolic link (to %s), which the job's user can plant; root gives the job's folders to its "
                                 "user and never follows a link there: remove it (rm %s) and run again" % (path, target, path)))
    return found


def _shared_nodes(c: Cluster) -> list[Problem]:
    """Two jobs on one node share the kernel's one ephemeral range (the collective range): a store in it is another job's to reach."""
    found = []
    job = c.cluster("torchrun_job")
    ours_c10d = c.cluster("torchrun_rdzv_backend") == "c10d"
    for node in c.hosts:
        for other in (c.node_facts(node) or {}).get("jobs", []):
            if other.get("job") == job:
                continue
            c10d = [name for name, used in ((job, ours_c10d), (other.get("job"), other.get("backend") == "c10d")) if used]
            if c10d:
                text = ("job %s is installed here too, and %s uses the c10d rendezvous, whose workers' store listens on a random port "
                        "of the collective range that the node's jobs share; no firewall rule tells on this node which job's user opened "
                        "a connection from another node, so the other job's user could reach that store: use "
                        "torchrun_rdzv_backend=static for both, or run the jobs on separate nodes" % (other.get("job"), " and ".join(c10d)))
                found.append(problem(node, "torchrun_rdzv_backend", text))
    return found


def ownership(c: Cluster) -> list[Problem]:
    """A job of this name installed here by another cluster (another inventory or group) is not ours to change or stop."""
    if c.cluster("job_takeover") is True:
        return []
    found = []
    job = c.cluster("torchrun_job")
    for node in c.hosts:
        facts = c.node_facts(node) or {}
        want = facts.get("cluster")
        for other in facts.get("jobs", []):
            have = other.get("cluster")
            if other.get("job") == job and want and have and have != want:
                found.append(problem(node, "job_takeover", "job %s on this node was installed by another cluster (%s), not by group %s of "
                                                           "this inventory (%s); it is not this run's to change or stop: choose another "
                                                           "torchrun_job, or take it over with -e job_takeover=true" % (job, have, c.group, want)))
    return found


def trust(c: Cluster) -> list[Problem]:
    """The job as the trust boundary: inventory names, SSH ports, what root runs and changes, jobs sharing nodes."""
    return _inventory_names(c) + _ssh_ports(c) + _root_runs(c) + _links(c) + _shared_nodes(c)


# ---- settings: every name with one of the collection's prefixes is one a role declares ------------------
# The prefixes of the collection's variables (tests/unit check it against roles/).
PREFIXES = ("torchrun_", "connectivity_", "firewall_", "healthcheck_", "job_", "launcher_", "nvidia_", "preflight_", "pytorch_",
            "stack_report_", "validate_")
# Settings renamed or removed in a release, with what replaced them (kept at least one release).
RENAMED = {"launcher_wait": "job_wait", "launcher_wait_timeout": "job_wait_timeout", "launcher_join_timeout": "job_join_timeout",
           "launcher_logs_dir": "job_logs_dir", "launcher_log_lines": "job_log_lines"}
REMOVED = {"healthcheck_port": "the health check uses the job's master port (torchrun_master_port) since 0.2.0"}
# Names with a prefix that are results the roles set (facts), or settings refused by another area.
NOT_SETTINGS = {"connectivity_matrix", "healthcheck_result", "stack_report_result", "nvidia_gpus", "nvidia_driver_version",
                "torchrun_node_rank"}


def unknown_settings(c: Cluster) -> list[Problem]:
    """A setting with one of the collection's prefixes that no role declares is a mistake (a typo, a
    knob renamed): it would be silently ignored. Named with its new name or the nearest known one."""
    if c.given is None:
        return []
    known = set(c.specs) | set(HOST_VARIABLES)
    unknown: dict[str, list[str]] = {}
    for host in c.hosts:
        for name in c.given.get(host, []):
            if name.startswith(PREFIXES) and name not in known and name not in NOT_SETTINGS:
                unknown.setdefault(name, []).append(host)
    found = []
    for name, hosts in sorted(unknown.items()):
        if name in RENAMED:
            fix = "it was renamed: use %s" % RENAMED[name]
        elif name in REMOVED:
            fix = "it was removed: %s; remove it" % REMOVED[name]
        else:
            near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            fix = "did you mean %s?" % near[0] if near else "see the roles' READMEs for the settings there are"
        where = c.master if len(hosts) == len(c.hosts) else hosts[0]
        found.append(problem(where, name, "%s is not a setting of the collection and would be ignored; %s" % (name, fix)))
    return found


AREAS: tuple[Callable[[Cluster], list[Problem]], ...] = (
    names_and_paths, consistency, ports, addresses, processes, rendezvous, accounts, firewall, stack_sources, declared_paths,
    shared_storage, fabric, trust, ownership, firewall_mode, unknown_settings,
)


def validate(c: Cluster, areas: Iterable[Callable[[Cluster], list[Problem]]] = AREAS) -> list[Problem]:
    """Every problem of the cluster: types first (the other areas see converted values), then each area."""
    if not GROUP_PATTERN.match(c.group):
        return _inventory_names(c)
    if not c.hosts:
        return [Problem("inventory", "torchrun_group", "inventory: group '%s' (torchrun_group) is missing or empty; list the training "
                                                       "nodes in it, first the master node" % c.group)]
    found = types(c)
    for area in areas:
        found += area(c)
    unique = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


# ---- building the cluster: each role's variables with that role's defaults ----------------------------
def role_options(specs: dict) -> dict[str, dict]:
    """Every option of every entry point of a role's meta/argument_specs.yml."""
    options: dict[str, dict] = {}
    for entry in (specs or {}).get("argument_specs", {}).values():
        for name, spec in (entry.get("options") or {}).items():
            options.setdefault(name, spec)
    return options


def trusted(value: Any) -> Any:
    """The collection's own role defaults may be templates: mark them so a templar renders them."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trusted(item) for item in value]
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    return value


def load_roles(roles_dir: Any, load: Callable[[str], Any]) -> tuple[dict[str, dict], dict[str, Any]]:
    """Every role's options (from its argument specs) and defaults (trusted), read with ``load(path)``."""
    specs: dict[str, dict] = {}
    defaults: dict[str, Any] = {}
    for role in sorted(os.listdir(str(roles_dir))):
        path = os.path.join(str(roles_dir), role, "meta", "argument_specs.yml")
        if os.path.isfile(path):
            specs.update(role_options(load(path)))
        path = os.path.join(str(roles_dir), role, "defaults", "main.yml")
        if os.path.isfile(path):
            defaults.update(load(path) or {})
    return specs, trusted(defaults)


# Host variables the rules read besides the roles' options.
HOST_VARIABLES = ("ansible_host", "ansible_port", "ansible_user", "torchrun_address", "torchrun_node_rank",
                  "ansible_os_family", "ansible_distribution")


def effective_values(hosts: list[str], hostvars: Any, defaults: dict[str, Any], names: Iterable[str],
                     template: Callable[[str, Any, dict], Any]) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Each host's value of each name: its own (inventory, group, extra vars) or else the role default.

    ``template(host, value, variables)`` renders a value with the host's variables; a value that
    cannot be rendered is reported and left out.
    """
    values: dict[str, dict[str, Any]] = {}
    found = []
    wanted = list(dict.fromkeys(list(names) + list(HOST_VARIABLES)))
    for host in hosts:
        hvars = hostvars[host]
        merged = dict(defaults)
        values[host] = {}
        # First the host's own values (hostvars renders them on access), so that a role default
        # which refers to another setting is rendered with the host's value of it, not its default.
        own = [name for name in wanted if name in hvars]
        for name in own + [name for name in wanted if name not in hvars and name in defaults]:
            try:
                values[host][name] = hvars[name] if name in hvars else template(host, merged[name], merged)
                merged[name] = values[host][name]
            except Exception as err:  # noqa: BLE001  an inventory template can fail in any way
                merged.pop(name, None)
                why = "(details hidden: a secret)" if name in SECRETS else (str(err).splitlines() or [type(err).__name__])[0]
                found.append(problem(host, name, "%s could not be evaluated: %s" % (name, why)))
    return values, found
