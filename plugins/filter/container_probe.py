# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container_probe filter: a short run in the job's image that reads only."""

from __future__ import annotations

DOCUMENTATION = r"""
name: container_probe
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: The start of a read-only run in a job's image (torchrun_runtime)
description:
  - For checks that ask the image's venv (the project's requirements before a launch, the stack the
    drift report compares, torch's flight recorder analyser); the command to run follows it.
  - The run is removed when it ends, as nobody (or the job's user by number), without network,
    capability, new privileges or a writable image, and the image is never pulled for it. An empty
    list for C(host), where the venv is on the node.
  - With O(_input.job), the command runs inside the job's running container instead (C(podman exec)
    or C(docker exec)), as the job's user and under the container's own confinement - no capability,
    no new privileges, a read-only image. For what must see the job's processes, such as py-spy.
options:
  _input:
    description: The job's runtime and image.
    type: dict
    required: true
    suboptions:
      runtime:
        description: torchrun_runtime.
        type: str
        required: true
      image:
        description: torchrun_image (unused for C(host) and with O(_input.job)).
        type: str
      uid:
        description: The user the run is, by number (the job's user's id on the node); nobody when unset.
        type: int
      gid:
        description: Its group, by number; required with O(_input.uid).
        type: int
      read_paths:
        description: Folders of the node bound read-only at the same paths.
        type: list
        elements: str
        default: []
      job:
        description: The job (torchrun_job) whose running container the command runs in; needs O(_input.uid) and O(_input.gid).
        type: str
"""

EXAMPLES = r"""
- name: The image's Python version
  ansible.builtin.command:
    argv: "{{ ({'runtime': 'podman', 'image': 'registry.example/pytorch:25.01'} | onprem.torchrun.container_probe) + ['python', '-V'] }}"
  changed_when: false

- name: A worker's stack, from inside the job's running container, as the job's user
  ansible.builtin.command:
    argv: "{{ ({'runtime': 'podman', 'job': 'demo', 'uid': 990, 'gid': 990} | onprem.torchrun.container_probe)
              + ['/opt/torchrun/venv/bin/py-spy', 'dump', '--pid', '4'] }}"
  changed_when: false
"""

RETURN = r"""
_value:
  description: The runtime's command up to the image; empty for C(host).
  type: list
  elements: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import CONTAINER_RUNTIMES, IMAGE_REFERENCE, container_ids, container_name

NOBODY = "65534:65534"
PATH = re.compile(r"\A/[^\s,:]*\Z")


def _user(spec):
    """--user: the ids given (never root), or nobody."""
    if spec.get("uid") is None and spec.get("gid") is None:
        return NOBODY
    try:
        return "%d:%d" % container_ids(spec)
    except ValueError as err:
        raise AnsibleFilterError("container_probe: %s" % err) from err


def container_probe(spec):
    """The start of a read-only run in the image, or [] on the host."""
    if not isinstance(spec, dict):
        raise AnsibleFilterError("container_probe: needs a dict, got %r" % (spec,))
    runtime = spec.get("runtime")
    if runtime == "host":
        return []
    if runtime not in CONTAINER_RUNTIMES:
        raise AnsibleFilterError("container_probe: runtime %r is not host or one of %s" % (runtime, ", ".join(sorted(CONTAINER_RUNTIMES))))
    user = _user(spec)
    if spec.get("job") is not None:
        job = str(spec["job"])
        if not re.match(r"\A[a-z][a-z0-9-]*\Z", job):
            raise AnsibleFilterError("container_probe: job %r is not a job name" % job)
        if user == NOBODY:
            raise AnsibleFilterError("container_probe: a command in job %s's container runs as its user: give uid and gid" % job)
        return [CONTAINER_RUNTIMES[runtime], "exec", "--user=" + user, container_name(job)]
    image = str(spec.get("image") or "")
    if not IMAGE_REFERENCE.match(image):
        raise AnsibleFilterError("container_probe: image %r is not an image reference" % image)
    reads = spec.get("read_paths") or []
    if isinstance(reads, str) or not isinstance(reads, (list, tuple)) or not all(isinstance(p, str) and PATH.match(p) for p in reads):
        raise AnsibleFilterError("container_probe: read_paths must be absolute paths without spaces, commas or colons, got %r" % (reads,))
    return ([CONTAINER_RUNTIMES[runtime], "run", "--rm", "--log-driver=none", "--network=none", "--pull=never", "--user=" + user,
             "--cap-drop=all", "--security-opt=no-new-privileges", "--read-only"]
            + ["--volume=%s:%s:ro" % (path, path) for path in reads] + [image])


class FilterModule:
    """A read-only run in the job's image."""

    def filters(self):
        return {"container_probe": container_probe}
