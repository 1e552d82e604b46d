# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPUs a node's CDI specifications name (Container Device Interface, what
`nvidia-ctk cdi generate` writes), for a job in its image: podman gives the container its GPUs as
CDI devices (nvidia.com/gpu=<name>), and a node without such a specification has none to give.
Read as text (a specification is YAML or JSON; the node needs no YAML parser). Docker (20.10, no
CDI) gives them through the NVIDIA container toolkit's hook instead (--gpus)."""

from __future__ import annotations

import glob
import os
import re

# What docker's --gpus runs (nvidia-container-toolkit): without it, docker has no GPU to give.
TOOLKIT_HOOK = "/usr/bin/nvidia-container-runtime-hook"
# Where CDI looks: the static and the generated specifications.
SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")
KIND = re.compile(r"""["']?kind["']?\s*:\s*["']?nvidia\.com/gpu["']?""")
NAME = re.compile(r"""(?<![A-Za-z])["']?name["']?\s*:\s*["']?([A-Za-z0-9][A-Za-z0-9/:._-]*)["']?""")


def spec_devices(text: str) -> list[str]:
    """The device names of one specification of kind nvidia.com/gpu ([] for another kind)."""
    if not KIND.search(text):
        return []
    return NAME.findall(text)


def gpu_devices(dirs=SPEC_DIRS) -> list[str]:
    """Every nvidia.com/gpu device name the node's specifications give (sorted, unique)."""
    names = set()
    for folder in dirs:
        for path in sorted(glob.glob(os.path.join(folder, "*.yaml")) + glob.glob(os.path.join(folder, "*.json"))):
            try:
                with open(path, encoding="utf-8") as handle:
                    names.update(spec_devices(handle.read()))
            except (OSError, UnicodeDecodeError):
                continue
    return sorted(names)


def toolkit_hook(path=TOOLKIT_HOOK) -> bool:
    """Whether the NVIDIA container toolkit's hook, which docker's --gpus needs, is on the node."""
    return os.path.isfile(path) and os.access(path, os.X_OK)
