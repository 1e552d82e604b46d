"""The distribution's CUDA toolkit runs on the node, from the non-free components of its own mirror."""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "extensions", "molecule", "shared"))
from sandbox_checks import NODES  # noqa: E402  pylint: disable=wrong-import-position

testinfra_hosts = NODES


def test_nvcc_runs(host):
    out = host.run("nvcc --version")
    assert out.rc == 0, out.stderr
    assert re.search(r"Cuda compilation tools, release 11\.8, V11\.8\.[0-9]+", out.stdout), out.stdout


def test_nonfree_comes_from_the_nodes_own_mirror(host):
    ours = host.file("/etc/apt/sources.list.d/onprem-torchrun-debian-nonfree.sources").content_string
    assert "Components: contrib non-free non-free-firmware\n" in ours and "Suites: bookworm bookworm-updates\n" in ours
    main = host.run("apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages'").stdout
    mirror = [line.split()[0] for line in main.splitlines() if line.endswith(" bookworm main")][0]
    assert "URIs: %s\n" % mirror.rstrip("/") in ours


def test_no_driver_was_installed(host):
    assert not host.package("nvidia-driver").is_installed and not host.package("cuda-drivers").is_installed
