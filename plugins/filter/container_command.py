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
    or C(docker run) for the job's unit, so that ports, node rank, interface, firewall and rendezvous
    stay as on the host.
  - The container shares the host's network, IPC (so C(/dev/shm) is the host's, enough for data
    loaders and NCCL) and host name; it runs as the job's user (numeric, no root inside), with every
    capability dropped, C(no-new-privileges), a read-only image and an init that forwards SIGTERM to
    torchrun (so a stop still saves a checkpoint). The job's folders are bound at the same paths, the
    write folders read-write and every other one read-only. The unit's environment (the job's
    environment files) is the container's. The image is never pulled at start.
  - The container is removed when it ends (C(--rm)); a restart starts a fresh one (C(--replace)).
  - Docker lacks three of podman's options, which the command makes up for. The node's own
    C(/usr/bin/python3) starts it - removes a container of the name left behind, then becomes
    C(docker run) with the unit's environment by name (C(--env=NAME) for each of its variables but
    C(PATH), so no value is on a command line). The image's venv Python sets the job's umask and then runs torchrun (docker has no
    C(--umask)). C(/tmp) and C(/var/tmp) are tmpfs, as podman mounts them for a read-only image.
    GPUs go through the NVIDIA container toolkit's C(--gpus) (docker 20.10 has no CDI).
options:
  _input:
    description: The job's container.
    type: dict
    required: true
    suboptions:
      runtime:
        description: torchrun_runtime; C(podman) or C(docker).
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
            specification (C(nvidia.com/gpu=<index or UUID>)) with podman, as C(--gpus) with docker;
            C([all]) for every GPU of the node, empty for none (a cpu job). A subset is numbered from 0
            inside, so C(CUDA_VISIBLE_DEVICES) there names 0 to n-1, in the host's order.
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
      description:
        - The unit's C(ExecStopPost) command, which removes a container left behind.
      type: list
      elements: str
    remove_may_fail:
      description: Whether C(remove) fails where there is no container (docker), so the unit ignores its status.
      type: bool
"""

import re

from ansible.errors import AnsibleFilterError
import os

from ansible_collections.onprem.torchrun.plugins.module_utils.contract import (CONTAINER_RUNTIMES as RUNTIMES, HOST_PYTHON,
                                                                               IMAGE_REFERENCE as IMAGE, container_ids, container_name)

PATH = re.compile(r"\A/[^\s,:]*\Z")
GPU = re.compile(r"\A(all|[0-9]+|(GPU|MIG)-[0-9A-Za-z/-]+)\Z")
UMASK = "0027"
# docker (no --replace, no --env-host): removes a container of the name left behind, then runs docker
# with the unit's environment by name (the client reads each value from its own environment), but
# PATH (the image's) and what the command sets itself.
DOCKER_START = ("import os, subprocess, sys; a = sys.argv[1:]; "
                "subprocess.run([a[0], 'rm', '--force'] + [x[7:] for x in a if x.startswith('--name=')][:1], "
                "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False); "
                "given = {x[6:].split('=', 1)[0] for x in a if x.startswith('--env=')}; "
                "os.execv(a[0], a[:2] + ['--env=' + k for k in sorted(os.environ) if k != 'PATH' and k not in given] + a[2:])")
# docker: the job's umask, set by the image's Python, which then becomes torchrun.
WITH_UMASK = "import os, sys; os.umask(0o%s); os.execv(sys.argv[1], sys.argv[1:])" % UMASK[1:]


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
        uid, gid = container_ids(spec)
    except ValueError as err:
        raise AnsibleFilterError("container_command: %s" % err) from err
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
    podman = runtime == "podman"
    argv = [binary, "run", "--rm"] + (["--replace"] if podman else []) + [
        "--name=" + name, "--init", "--pull=never", "--log-driver=none", "--network=host", "--ipc=host", "--uts=host",
        "--user=%d:%d" % (uid, gid), "--cap-drop=all", "--security-opt=no-new-privileges", "--read-only"]
    argv += ["--umask=" + UMASK, "--env-host"] if podman else ["--tmpfs=/tmp", "--tmpfs=/var/tmp"]
    argv.append("--workdir=" + workdir)
    argv += ["--volume=%s:%s:rw" % (path, path) for path in writes]
    argv += ["--volume=%s:%s:ro" % (path, path) for path in reads]
    if podman:
        argv += ["--device=nvidia.com/gpu=%s" % gpu for gpu in gpus]
    elif gpus:  # the toolkit's hook; a list needs its own quotes inside the value
        argv.append("--gpus=all" if gpus == ["all"] else '--gpus="device=%s"' % ",".join(gpus))
    if gpus and gpus != ["all"]:  # after the host's environment: inside, the subset is GPUs 0 to n-1
        argv.append("--env=CUDA_VISIBLE_DEVICES=%s" % ",".join(str(i) for i in range(len(gpus))))
    if spec.get("rdma"):
        argv += ["--device=/dev/infiniband", "--ulimit=memlock=-1:-1"]
    command = [str(arg) for arg in command]
    if podman:
        return {"argv": argv + [image] + command, "remove": [binary, "rm", "--force", "--ignore", name], "remove_may_fail": False}
    python = os.path.join(os.path.dirname(command[0]), "python")
    return {"argv": [HOST_PYTHON, "-I", "-c", DOCKER_START] + argv + [image, python, "-I", "-c", WITH_UMASK] + command,
            "remove": [binary, "rm", "--force", name], "remove_may_fail": True}


class FilterModule:
    """torchrun inside the job's image."""

    def filters(self):
        return {"container_command": container_command}
