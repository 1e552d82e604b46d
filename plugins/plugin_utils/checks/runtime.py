# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where torchrun runs: the host's venv or the site's image (torchrun_runtime)."""

from __future__ import annotations

import os

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
                                                "set torchrun_runtime=podman to run it in the image" % (var, shown(value))))
        return found
    if not image:
        found.append(problem(host, "torchrun_image", "torchrun_runtime=%s needs torchrun_image, the image that holds the venv at "
                                                     "torchrun_venv (registry/path:tag)" % kind))
    elif not IMAGE_REFERENCE.match(image):
        found.append(problem(host, "torchrun_image", "torchrun_image=%s is not an image reference: lowercase "
                                                     "[registry[:port]/]path[:tag][@sha256:digest], no spaces" % shown(image)))
    if c.cluster("torchrun_accelerator") == "cuda":
        found.append(problem(host, "torchrun_runtime", "torchrun_runtime=%s runs cpu jobs only for now: GPUs in the container need the "
                                                       "NVIDIA container toolkit's CDI specification, which the collection does not set up "
                                                       "yet; use torchrun_runtime=host for cuda jobs" % kind))
    if archive:
        bad = absolute_path(host, "torchrun_image_archive", archive)
        if bad:
            return found + bad
        if not os.path.isfile(archive):
            found.append(Problem("controller", "torchrun_image_archive", "controller: torchrun_image_archive=%s is not a file on the "
                                                                         "controller; give the image's podman save or docker save "
                                                                         "archive, or leave it empty to pull torchrun_image" % archive))
    return found
