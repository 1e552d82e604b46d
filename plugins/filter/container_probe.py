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
    drift report compares); the command to run follows it.
  - The run is removed when it ends, as nobody, without network, capability, new privileges or a
    writable image, and the image is never pulled for it. An empty list for C(host), where the venv
    is on the node.
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
        description: torchrun_image (unused for C(host)).
        type: str
"""

EXAMPLES = r"""
- name: The image's Python version
  ansible.builtin.command:
    argv: "{{ ({'runtime': 'podman', 'image': 'registry.example/pytorch:25.01'} | onprem.torchrun.container_probe) + ['python', '-V'] }}"
  changed_when: false
"""

RETURN = r"""
_value:
  description: The runtime's command up to the image; empty for C(host).
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import CONTAINER_RUNTIMES, IMAGE_REFERENCE

NOBODY = "65534:65534"


def container_probe(spec):
    """The start of a read-only run in the image, or [] on the host."""
    if not isinstance(spec, dict):
        raise AnsibleFilterError("container_probe: needs a dict, got %r" % (spec,))
    runtime = spec.get("runtime")
    if runtime == "host":
        return []
    if runtime not in CONTAINER_RUNTIMES:
        raise AnsibleFilterError("container_probe: runtime %r is not host or one of %s" % (runtime, ", ".join(sorted(CONTAINER_RUNTIMES))))
    image = str(spec.get("image") or "")
    if not IMAGE_REFERENCE.match(image):
        raise AnsibleFilterError("container_probe: image %r is not an image reference" % image)
    return [CONTAINER_RUNTIMES[runtime], "run", "--rm", "--log-driver=none", "--network=none", "--pull=never", "--user=" + NOBODY,
            "--cap-drop=all", "--security-opt=no-new-privileges", "--read-only", image]


class FilterModule:
    """A read-only run in the job's image."""

    def filters(self):
        return {"container_probe": container_probe}
