# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names and paths: the job, user and table names, the run id, environment names, paths and the training script."""

from __future__ import annotations

import os
import re

from ansible_collections.onprem.torchrun.plugins.plugin_utils import requirements
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import (
    CONTROL, Cluster, ENV_NAME, HIDDEN_FOLDERS, JOB_MAX, JOB_PATTERN, NOBODY, Problem, RANK_VARIABLES, RDZV_ID, RESERVED_JOB_PREFIXES,
    TABLE_PATTERN, UID_MAX, USER_PATTERN, ZONE_PATTERN, absolute_path, lies_under, problem, shown,
)


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
            bad = absolute_path(host, var, value)
            hidden = None if bad else lies_under(value, HIDDEN_FOLDERS)
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
    bad = absolute_path(c.master, "torchrun_report_dir", folder)
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
    found += absolute_path(host, "torchrun_project_dir", folder)
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
        found += absolute_path(host, "torchrun_script", script)
        hidden = lies_under(script, HIDDEN_FOLDERS)
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
