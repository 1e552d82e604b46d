# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job_hardening filter: the systemd settings every process of a job runs under."""

from __future__ import annotations

DOCUMENTATION = r"""
name: job_hardening
author: onprem.torchrun developers (@onprem)
version_added: 0.3.0
short_description: The systemd hardening of every process a job runs
description:
  - The settings of the job's unit (the launcher role), of the health check's transient unit and of
    gpu-check's NCCL run (C(systemd-run --property)), so that a check proves what the job gets.
  - It keeps GPUs and NCCL working - no C(PrivateDevices) (it hides the GPUs), C(/dev/shm) stays
    usable, no C(MemoryDenyWriteExecute) (Triton JITs code) - and closes every other device, with
    the NVIDIA character devices allowed for C(cuda). The process writes the given folders only.
  - RDMA adds the fabric plan's C(unit_settings) (filter P(onprem.torchrun.fabric_plan#filter)) on top.
options:
  _input:
    description: What the processes may touch.
    type: dict
    required: true
    suboptions:
      write_paths:
        description: The folders they write (the job's folder first); every other path is read-only.
        type: list
        elements: str
        required: true
      read_paths:
        description: Folders mounted read-only on top (torchrun_read_paths).
        type: list
        elements: str
        default: []
      accelerator:
        description: torchrun_accelerator; C(cuda) allows the NVIDIA devices.
        type: str
        default: cpu
"""

EXAMPLES = r"""
- name: The job's hardening
  ansible.builtin.debug:
    msg: "{{ {'write_paths': ['/var/lib/torchrun/jobs/demo'], 'accelerator': 'cuda'} | onprem.torchrun.job_hardening }}"
"""

RETURN = r"""
_value:
  description: systemd settings, C(Name=value), in a unit's order.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

# The character-device groups of /proc/devices the NVIDIA driver registers (DeviceAllow=char-<name>).
NVIDIA_DEVICE_GROUPS = ("nvidiactl", "nvidia-frontend", "nvidia-uvm", "nvidia-caps", "nvidia-caps-imex-channels")
_CLOSED = ("PrivateTmp=yes", "ProtectHome=yes", "ProtectClock=yes", "ProtectHostname=yes", "ProtectKernelLogs=yes",
           "ProtectKernelModules=yes", "ProtectKernelTunables=yes", "ProtectControlGroups=yes", "ProtectProc=invisible",
           "RestrictSUIDSGID=yes", "RestrictRealtime=yes", "RestrictNamespaces=yes", "LockPersonality=yes", "RemoveIPC=yes",
           "SystemCallArchitectures=native", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK", "DevicePolicy=closed")


def _paths(value, name):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError("job_hardening: %s must be a list of absolute paths, got %r" % (name, value))
    for path in value:
        if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
            raise AnsibleFilterError("job_hardening: %s has %r, which is not an absolute path without spaces" % (name, path))
    return list(value)


def job_hardening(spec):
    """The job's hardening as systemd settings."""
    if not isinstance(spec, dict):
        raise AnsibleFilterError("job_hardening: needs a dict with write_paths, got %r" % (spec,))
    writes = _paths(spec.get("write_paths"), "write_paths")
    if not writes:
        raise AnsibleFilterError("job_hardening: write_paths is empty; the job writes at least its own folder")
    reads = _paths(spec.get("read_paths") or [], "read_paths")
    settings = ["NoNewPrivileges=yes", "CapabilityBoundingSet=", "AmbientCapabilities=", "ProtectSystem=strict",
                "ReadWritePaths=" + " ".join(writes)]
    if reads:
        settings.append("ReadOnlyPaths=" + " ".join(reads))
    settings.extend(_CLOSED)
    if spec.get("accelerator", "cpu") == "cuda":
        settings.extend("DeviceAllow=char-%s rw" % group for group in NVIDIA_DEVICE_GROUPS)
    settings.append("UMask=0027")
    return settings


class FilterModule:
    """The job's hardening."""

    def filters(self):
        return {"job_hardening": job_hardening}
