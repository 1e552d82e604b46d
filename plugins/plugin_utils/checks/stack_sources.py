# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stack sources: torch, Lightning, the NVIDIA stack and where they come from."""

from __future__ import annotations

import os
import re
from typing import Any

from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import (
    CONTROL, Cluster, DRIVER_BRANCH, NCCL_KEY, Problem, TOOLKIT, URL, VERSION, absolute_path, problem, shown,
)


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
                found.append(problem(host, "nvidia_driver_branch", "nvidia_driver_branch=%s must be a driver branch number such as 580" % shown(branch)))
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
                if not URL.match(str(value)) and not absolute_path(host, var, str(value)) == []:
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
            found += absolute_path(host, "pytorch_python", python)
    return found


def script_found(script: str, roles_dir: Any, playbook_dir: Any) -> bool:
    """Whether the launcher's copy would find ``script`` on the controller (its role's files, then the playbook's)."""
    if os.path.isabs(script):
        return os.path.isfile(script)
    return any(os.path.isfile(os.path.join(str(base), script)) for base in (
        os.path.join(str(roles_dir), "launcher", "files"), os.path.join(str(roles_dir), "launcher"),
        os.path.join(str(playbook_dir), "files"), str(playbook_dir)))
