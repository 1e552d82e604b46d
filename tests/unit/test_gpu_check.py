"""`make gpu-check` on a host without GPUs refuses by name before installing anything.

On a GPU host the same playbook runs the whole check (driver, torch.cuda, NCCL all_reduce); that
path needs the GPU and is run there by hand: `make gpu-check`.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.onprem.torchrun.plugins.modules import node_probe

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(node_probe.gpu_count() > 0, reason="this host has NVIDIA GPUs: run make gpu-check")
def test_a_host_without_gpus_is_refused_before_any_change():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/gpu_check.yml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "no NVIDIA GPU on the PCI bus; make gpu-check needs a GPU host" in out, out[-2000:]
    assert "changed=0" in out and "Install torch" not in out
