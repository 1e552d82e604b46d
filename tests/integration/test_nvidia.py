"""The nvidia role's repository path on real nodes without a GPU, in check mode: what it would
write (repository, key, pin, nccl.conf) shows in the diff, nothing is written, nothing fails.

Needs root (`make integration`). Installing a driver needs a GPU host: `make gpu-check` there.
"""

import json
import os
import subprocess

import harness
import pytest
import sandbox
from conftest import run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")
WRITTEN = ("/etc/apt/sources.list.d/onprem-torchrun-nvidia-cuda.sources", "/etc/apt/preferences.d/onprem-torchrun-nvidia",
           "/etc/apt/keyrings/onprem-torchrun-nvidia-cuda.asc", "/etc/nccl.conf")


@pytest.fixture(scope="module")
def one_node():
    with harness.cluster(1):
        key = sandbox.CACHE / "wheels" / "test-cuda-repo-key.asc"
        key.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in for the mirror's key\n-----END PGP PUBLIC KEY BLOCK-----\n")
        yield
        key.unlink()


def test_repository_path_in_check_mode_shows_its_files_and_writes_nothing(one_node):
    proc = run_playbook("tests/integration/playbooks/nvidia.yml", "--check", "--diff")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "+URIs: http://198.18.0.1:3142/cuda-mirror/debian12/x86_64/" in out, out[-4000:]
    assert "+Pin: version 550.*" in out and "+NCCL_IB_HCA=mlx5" in out, out[-4000:]
    assert "changed: [node1] => (item=/etc/apt/sources.list.d/onprem-torchrun-nvidia-cuda.sources)" in out
    ls = subprocess.run(sandbox.ssh_command("node1") + ["ls -d %s 2>/dev/null; true" % " ".join(WRITTEN)],
                        capture_output=True, text=True, check=True)
    assert ls.stdout == ""


def test_a_node_without_gpus_is_refused_by_name(one_node):
    # The site's own driver (none installed here): the role only reads the GPUs, and finds none.
    proc = run_playbook("tests/integration/playbooks/nvidia.yml", "-e", json.dumps(
        {"nvidia_driver_source": "none", "nvidia_cuda_toolkit": "", "nvidia_nccl": False, "nvidia_nccl_conf": {}}))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "node1: torchrun_nproc_per_node=2 but nvidia-smi lists 0 GPU(s) (is the driver loaded?" in out, out[-3000:]
