# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where torchrun runs: the host's venv or the site's image (torchrun_runtime)."""

from __future__ import annotations

import os

from ansible_collections.onprem.torchrun.plugins.module_utils.cdi import TOOLKIT_HOOK
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import IMAGE_REFERENCE
from ansible_collections.onprem.torchrun.plugins.plugin_utils.checks.core import Cluster, Problem, absolute_path, problem, shown


def runtime(c: Cluster) -> list[Problem]:
    """torchrun_runtime, torchrun_image and torchrun_image_archive agree, and the archive is on the controller."""
    host = c.master
    kind = c.cluster("torchrun_runtime", "host")
    image = c.cluster("torchrun_image") or ""
    archive = c.cluster("torchrun_image_archive") or ""
    found = []
    if kind == "host":
        for var, value in (("torchrun_image", image), ("torchrun_image_archive", archive)):
            if value:
                found.append(problem(host, var, "%s=%s is set, but torchrun_runtime=host runs torchrun from torchrun_venv on the node; "
                                                "set torchrun_runtime=podman or docker to run it in the image" % (var, shown(value))))
        return found
    if not image:
        found.append(problem(host, "torchrun_image", "torchrun_runtime=%s needs torchrun_image, the image that holds the venv at "
                                                     "torchrun_venv (registry/path:tag)" % kind))
    elif not IMAGE_REFERENCE.match(image):
        found.append(problem(host, "torchrun_image", "torchrun_image=%s is not an image reference: lowercase "
                                                     "[registry[:port]/]path[:tag][@sha256:digest], no spaces" % shown(image)))
    if c.cluster("torchrun_accelerator") == "cuda" and c.cluster("torchrun_fabric", "auto") == "auto":
        # The container's devices are fixed when its unit is written, not found at each start.
        found.append(problem(host, "torchrun_fabric", "torchrun_runtime=%s with torchrun_accelerator=cuda needs torchrun_fabric=rdma "
                                                      "(the container gets /dev/infiniband and an unlimited memlock) or socket "
                                                      "(NCCL over TCP), not auto" % kind))
    found += cdi_gpus(c, kind)
    if archive:
        bad = absolute_path(host, "torchrun_image_archive", archive)
        if bad:
            return found + bad
        if not os.path.isfile(archive):
            found.append(Problem("controller", "torchrun_image_archive", "controller: torchrun_image_archive=%s is not a file on the "
                                                                         "controller; give the image's podman save or docker save "
                                                                         "archive, or leave it empty to pull torchrun_image" % archive))
    return found


def cdi_gpus(c: Cluster, kind: str) -> list[Problem]:
    """A cuda job in its image gets its GPUs as CDI devices with podman, each node's specification naming
    them, and through the NVIDIA container toolkit's hook with docker (node stage)."""
    if c.cluster("torchrun_accelerator") != "cuda" or c.facts is None:
        return []
    found = []
    for node in c.hosts:
        facts = c.node_facts(node)
        if facts is None:
            continue
        if kind == "docker":
            if facts.get("gpu_hook") is False:
                found.append(problem(node, "torchrun_runtime", "%s: torchrun_runtime=docker gives the container its GPUs with --gpus, "
                                                               "which needs the NVIDIA container toolkit's hook (%s), not on the node; "
                                                               "install nvidia-container-toolkit there and run `nvidia-ctk runtime "
                                                               "configure --runtime=docker`, then restart docker" % (node, TOOLKIT_HOOK)))
            continue
        if "cdi_gpus" not in facts:
            continue
        have = [str(name) for name in facts["cdi_gpus"] or []]
        wanted = [str(gpu) for gpu in c.get(node, "torchrun_gpus", []) or []] or ["all"]
        fix = ("install the NVIDIA container toolkit (nvidia-container-toolkit) and run "
               "`nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` on the node (again after a driver upgrade)")
        if not have:
            found.append(problem(node, "torchrun_runtime", "%s: torchrun_runtime=%s gives the container its GPUs as CDI devices "
                                                           "(nvidia.com/gpu), but no CDI specification in /etc/cdi or /var/run/cdi "
                                                           "names any; %s" % (node, kind, fix)))
            continue
        missing = [gpu for gpu in wanted if gpu not in have]
        if missing:
            found.append(problem(node, "torchrun_gpus", "%s: the node's CDI specification has no nvidia.com/gpu=%s (it names %s); "
                                                        "%s" % (node, ",".join(missing), ", ".join(have), fix)))
    return found
