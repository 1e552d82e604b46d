# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container_command filter: torchrun inside the site's image, in one place."""

from __future__ import annotations

DOCUMENTATION = r"""
name: container_command
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: The command that runs a job's torchrun inside its image (torchrun_runtime)
description:
  - Wraps the torchrun command line (filter P(onprem.torchrun.torchrun_command#filter)) in C(podman run)
    for the job's unit, so that ports, node rank, interface, firewall and rendezvous stay as on the host.
  - The container shares the host's network, IPC (so C(/dev/shm) is the host's, enough for data
    loaders and NCCL) and host name; it runs as the job's user (numeric, no root inside), with every
    capability dropped, C(no-new-privileges), a read-only image and an init that forwards SIGTERM to
    torchrun (so a stop still saves a checkpoint). The job's folders are bound at the same paths, the
    write folders read-write and every other one read-only. The unit's environment (the job's
    environment files) is the container's. The image is never pulled at start.
  - The container is removed when it ends (C(--rm)); a restart starts a fresh one (C(--replace)).
options:
  _input:
    description: The job's container.
    type: dict
    required: true
    suboptions:
      runtime:
        description: torchrun_runtime; C(podman).
        type: str
        required: true
      image:
        description: torchrun_image, the image reference.
        type: str
        required: true
      job:
        description: torchrun_job; the container is C(torchrun-<job>), as its unit.
        type: str
        required: true
      purpose:
        description: Another run of the image for the job (C(healthcheck)) is C(torchrun-<job>-<purpose>).
        type: str
        default: ""
      uid:
        description: The job's user id on the node.
        type: int
        required: true
      gid:
        description: The job's group id on the node.
        type: int
        required: true
      workdir:
        description: The job's folder, its working directory.
        type: str
        required: true
      write_paths:
        description: Folders bound read-write (the job's folder, its shared folder, torchrun_write_paths).
        type: list
        elements: str
        required: true
      read_paths:
        description: Folders bound read-only (the job's scripts and project, torchrun_read_paths).
        type: list
        elements: str
        default: []
      gpus:
        description:
          - The GPUs the container gets, as CDI devices of the NVIDIA container toolkit's
            specification (C(nvidia.com/gpu=<index or UUID>)); C([all]) for every GPU of the node, empty
            for none (a cpu job). A subset is numbered from 0 inside, so C(CUDA_VISIBLE_DEVICES) there
            names 0 to n-1, in the host's order.
        type: list
        elements: str
        default: []
      rdma:
        description:
          - The RDMA devices (C(/dev/infiniband)) and an unlimited C(memlock), which the verbs need to
            register memory (the unit's fabric drop-in for a job on the host).
        type: bool
        default: false
  command:
    description: torchrun's argv and the script's, as the host would run them.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The job's container command
  ansible.builtin.debug:
    msg: >-
      {{ {'runtime': 'podman', 'image': 'registry.example/pytorch:25.01', 'job': 'demo', 'uid': 990, 'gid': 990,
          'workdir': '/var/lib/torchrun/demo', 'write_paths': ['/var/lib/torchrun/demo'], 'read_paths': ['/opt/torchrun/jobs/demo']}
         | onprem.torchrun.container_command(['/opt/torchrun/venv/bin/torchrun', '--nnodes=2', 'train.py']) }}
"""

RETURN = r"""
_value:
  description: How the unit runs and cleans up the container.
  type: dict
  contains:
    argv:
      description: The unit's C(ExecStart) command.
      type: list
      elements: str
    remove:
      description: The unit's C(ExecStopPost) command, which removes a container left behind.
      type: list
      elements: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.module_utils.contract import CONTAINER_RUNTIMES as RUNTIMES, IMAGE_REFERENCE as IMAGE, container_name

PATH = re.compile(r"\A/[^\s,:]*\Z")
GPU = re.compile(r"\A(all|[0-9]+|(GPU|MIG)-[0-9A-Za-z/-]+)\Z")


def _paths(spec, key):
    value = spec.get(key) or []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError("container_command: %s must be a list of absolute paths, got %r" % (key, value))
    for path in value:
        # A comma or colon would end podman's --volume value early.
        if not isinstance(path, str) or not PATH.match(path):
            raise AnsibleFilterError("container_command: %s holds %r, not an absolute path without spaces, commas or colons" % (key, path))
    return list(value)


def container_command(spec, command):
    """torchrun's command inside the image, as the job's unit runs it."""
    if not isinstance(spec, dict):
        raise AnsibleFilterError("container_command: needs a dict, got %r" % (spec,))
    runtime = spec.get("runtime")
    if runtime not in RUNTIMES:
        raise AnsibleFilterError("container_command: runtime %r is not one of %s" % (runtime, ", ".join(sorted(RUNTIMES))))
    image = str(spec.get("image") or "")
    if not IMAGE.match(image):
        raise AnsibleFilterError("container_command: image %r is not an image reference" % image)
    job = str(spec.get("job") or "")
    if not re.match(r"\A[a-z][a-z0-9-]*\Z", job):
        raise AnsibleFilterError("container_command: job %r is not a job name" % job)
    purpose = str(spec.get("purpose") or "")
    if purpose and not re.match(r"\A[a-z]+\Z", purpose):
        raise AnsibleFilterError("container_command: purpose %r is not a lowercase word" % purpose)
    name = container_name(job, purpose)
    try:
        uid, gid = int(spec["uid"]), int(spec["gid"])
    except (KeyError, TypeError, ValueError) as err:
        raise AnsibleFilterError("container_command: uid and gid must be numbers (%s)" % err) from err
    if uid <= 0 or gid <= 0:
        raise AnsibleFilterError("container_command: the job never runs as root inside its image (uid %d, gid %d)" % (uid, gid))
    writes, reads = _paths(spec, "write_paths"), _paths(spec, "read_paths")
    workdir = str(spec.get("workdir") or "")
    if not writes or workdir not in writes:
        raise AnsibleFilterError("container_command: the working directory %r must be one of write_paths %r" % (workdir, writes))
    if not isinstance(command, (list, tuple)) or not command:
        raise AnsibleFilterError("container_command: command must be torchrun's argv, got %r" % (command,))
    gpus = spec.get("gpus") or []
    if isinstance(gpus, str) or not isinstance(gpus, (list, tuple)) or not all(isinstance(g, (str, int)) and GPU.match(str(g)) for g in gpus):
        raise AnsibleFilterError("container_command: gpus must be a list of GPU indices or UUIDs, or [all], got %r" % (gpus,))
    gpus = [str(gpu) for gpu in gpus]
    if "all" in gpus and len(gpus) > 1:
        raise AnsibleFilterError("container_command: gpus is either [all] or a list of GPUs, got %r" % (gpus,))
    binary = RUNTIMES[runtime]
    argv = [binary, "run", "--rm", "--replace", "--name=" + name, "--init", "--pull=never", "--log-driver=none",
            "--network=host", "--ipc=host", "--uts=host", "--user=%d:%d" % (uid, gid), "--cap-drop=all",
            "--security-opt=no-new-privileges", "--read-only", "--umask=0027", "--env-host", "--workdir=" + workdir]
    argv += ["--volume=%s:%s:rw" % (path, path) for path in writes]
    argv += ["--volume=%s:%s:ro" % (path, path) for path in reads]
    argv += ["--device=nvidia.com/gpu=%s" % gpu for gpu in gpus]
    if gpus and gpus != ["all"]:  # after --env-host: inside, the subset is GPUs 0 to n-1
        argv.append("--env=CUDA_VISIBLE_DEVICES=%s" % ",".join(str(i) for i in range(len(gpus))))
    if spec.get("rdma"):
        argv += ["--device=/dev/infiniband", "--ulimit=memlock=-1:-1"]
    return {"argv": argv + [image] + [str(arg) for arg in command], "remove": [binary, "rm", "--force", "--ignore", name]}


class FilterModule:
    """torchrun inside the job's image."""

    def filters(self):
        return {"container_command": container_command}
