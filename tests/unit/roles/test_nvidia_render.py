"""The nvidia role's repository, pin and NCCL files and its package list, rendered per distribution.

Renders with ansible-playbook on localhost from the role's own defaults, vars and templates, and
the repository source with ansible.builtin.deb822_repository itself in check mode (it fetches the
key from a loopback server, as it would from the mirror, and writes nothing); apt itself parses
the APT files.
"""

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "nvidia"
MIRROR = "https://cuda-mirror.invalid/compute/cuda/repos/"

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files: ["{role}/defaults/main.yml", "{torchrun}/defaults/main.yml"]
  tasks:
    - ansible.builtin.set_fact:
        ansible_facts: {facts}
    - ansible.builtin.include_vars: "{role}/vars/main.yml"
    - ansible.builtin.template:
        src: "{role}/templates/{{{{ item }}}}.j2"
        dest: "{out}/{{{{ item }}}}"
        mode: "0644"
      loop: [nvidia-pin.pref, nccl.conf]
    - ansible.builtin.deb822_repository: "{{{{ __nvidia_repo_source }}}}"
      check_mode: true
      register: repo
    - ansible.builtin.copy:
        content: "{{{{ repo.repo }}}}"
        dest: "{out}/nvidia-cuda.sources"
        mode: "0644"
    - ansible.builtin.copy:
        content: "{{{{ __nvidia_plan | to_json }}}}"
        dest: "{out}/plan.json"
        mode: "0644"
"""

DEBIAN = {"distribution": "Debian", "os_family": "Debian", "distribution_major_version": "12",
          "distribution_version": "12.5", "architecture": "x86_64", "kernel": "6.1.0-18-amd64"}
UBUNTU = {"distribution": "Ubuntu", "os_family": "Debian", "distribution_major_version": "22",
          "distribution_version": "22.04", "architecture": "aarch64", "kernel": "5.15.0-101-generic"}


@pytest.fixture(scope="module")
def key_url(tmp_path_factory):
    """A loopback server with an ASCII-armored key, where deb822_repository fetches signed_by from."""
    folder = tmp_path_factory.mktemp("key")
    (folder / "3bf863cc.pub").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n-----END PGP PUBLIC KEY BLOCK-----\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/3bf863cc.pub" % server.server_address[1]
    server.shutdown()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102 - the test's output stays the assertions'
        pass


def render(key_url, tmp_path, facts, **extra):
    out = tmp_path / "out"
    out.mkdir()
    playbook = tmp_path / "render.yml"
    playbook.write_text(PLAY.format(role=ROLE, torchrun=ROOT / "roles" / "torchrun", facts=json.dumps(facts), out=out))
    extra = dict({"nvidia_cuda_repo_url": MIRROR, "nvidia_cuda_repo_key_url": key_url,
                  "__nvidia_node": {"nvswitches": 0, "gpu_ids": ["0x2335"]}}, **extra)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(playbook), "-e", json.dumps(extra)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    plan = json.loads((out / "plan.json").read_text())
    return out, plan["packages"]


def test_debian_repository_pin_and_packages(tmp_path, key_url):
    out, packages = render(key_url, tmp_path, DEBIAN)
    sources = (out / "nvidia-cuda.sources").read_text()
    assert "URIs: https://cuda-mirror.invalid/compute/cuda/repos/debian12/x86_64/\n" in sources
    assert "Suites: /\n" in sources and "Signed-By: /etc/apt/keyrings/onprem-torchrun-nvidia-cuda.asc\n" in sources
    pin = (out / "nvidia-pin.pref").read_text()
    assert "Pin: version 580.*\n" in pin and "Pin-Priority: 1001\n" in pin
    assert packages == ["linux-headers-6.1.0-18-amd64", "nvidia-driver-cuda=580.*", "nvidia-kernel-open-dkms=580.*", "nvidia-persistenced=580.*"]


def test_ubuntu_arm_uses_the_sbsa_tree_and_server_packages(tmp_path, key_url):
    out, packages = render(key_url, tmp_path, UBUNTU, nvidia_driver_source="distro", nvidia_driver_branch="535",
                           nvidia_fabricmanager="always", nvidia_dkms=False)
    assert "URIs: https://cuda-mirror.invalid/compute/cuda/repos/ubuntu2204/sbsa/\n" in (out / "nvidia-cuda.sources").read_text()
    assert packages == ["nvidia-headless-no-dkms-535-server", "nvidia-utils-535-server", "linux-modules-nvidia-535-server-generic",
                        "nvidia-compute-utils-535-server", "nvidia-fabricmanager-535"]


def test_fabric_manager_follows_the_nvswitches_found(tmp_path, key_url):
    _, packages = render(key_url, tmp_path, DEBIAN, __nvidia_node={"nvswitches": 6, "gpu_ids": ["0x2335"]}, nvidia_persistenced=False)
    assert packages == ["linux-headers-6.1.0-18-amd64", "nvidia-driver-cuda=580.*", "nvidia-kernel-open-dkms=580.*", "nvidia-fabricmanager-580=580.*"]


IB_NODE = {"nvswitches": 0, "fabric": {"char_devices": ["/dev/infiniband/uverbs0"], "devices": [
    {"name": "mlx5_0", "netdevs": ["ib0"], "ports": [{"port": 1, "state": "ACTIVE", "phys_state": "LinkUp", "rate": "200 Gb/sec (4X HDR)",
                                                     "link_layer": "InfiniBand", "roce_v2": []}]}]}}


def test_rdma_ports_bring_the_rdma_user_space_unless_the_job_keeps_to_sockets(tmp_path, key_url):
    _, packages = render(key_url, tmp_path, DEBIAN, __nvidia_node=IB_NODE, nvidia_persistenced=False, nvidia_kernel_modules="proprietary")
    assert packages == ["linux-headers-6.1.0-18-amd64", "nvidia-driver-cuda=580.*", "nvidia-kernel-dkms=580.*", "rdma-core", "ibverbs-providers",
                        "ibverbs-utils", "perftest", "infiniband-diags"]
    (tmp_path / "socket").mkdir()
    _, packages = render(key_url, tmp_path / "socket", DEBIAN, __nvidia_node=IB_NODE, nvidia_persistenced=False,
                         nvidia_kernel_modules="proprietary", torchrun_fabric="socket")
    assert packages == ["linux-headers-6.1.0-18-amd64", "nvidia-driver-cuda=580.*", "nvidia-kernel-dkms=580.*"]


def test_site_driver_with_toolkit_and_nccl_only(tmp_path, key_url):
    out, packages = render(key_url, tmp_path, DEBIAN, nvidia_driver_source="none", nvidia_cuda_toolkit="12-4",
                           nvidia_nccl=True, nvidia_nccl_conf={"NCCL_IB_HCA": "mlx5", "NCCL_IB_GID_INDEX": 3})
    assert packages == ["cuda-toolkit-12-4", "libnccl2", "libnccl-dev"]
    conf = (out / "nccl.conf").read_text()
    assert conf.endswith("NCCL_IB_GID_INDEX=3\nNCCL_IB_HCA=mlx5\n")


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt to parse the files")
def test_apt_accepts_the_rendered_files(tmp_path, key_url):
    out, _ = render(key_url, tmp_path, DEBIAN)
    parts = {"SourceParts": tmp_path / "sources", "PreferencesParts": tmp_path / "prefs"}
    for folder in parts.values():
        folder.mkdir()
    shutil.copy(out / "nvidia-cuda.sources", parts["SourceParts"] / "onprem-torchrun-nvidia-cuda.sources")
    shutil.copy(out / "nvidia-pin.pref", parts["PreferencesParts"] / "onprem-torchrun-nvidia")
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "cache" / "archives" / "partial").mkdir(parents=True)
    opts = ["-o", "Dir::Etc::SourceList=/dev/null", "-o", "Dir::Etc::SourceParts=%s" % parts["SourceParts"],
            "-o", "Dir::Etc::Preferences=/dev/null", "-o", "Dir::Etc::PreferencesParts=%s" % parts["PreferencesParts"],
            "-o", "Dir::State::Lists=%s" % (tmp_path / "lists"), "-o", "Dir::Cache=%s" % (tmp_path / "cache")]
    update = subprocess.run(["apt-get"] + opts + ["--print-uris", "update"], capture_output=True, text=True, check=False)
    assert update.returncode == 0 and update.stderr == "", update.stderr
    assert "'https://cuda-mirror.invalid/compute/cuda/repos/debian12/x86_64/InRelease'" in update.stdout
    policy = subprocess.run(["apt-cache"] + opts + ["policy", "nvidia-driver-cuda"], capture_output=True, text=True, check=False)
    assert policy.returncode == 0 and "E:" not in policy.stderr, policy.stderr
