"""The nvidia role's package plan (plugin_utils.driver_plan, the nvidia_packages filter): every
supported distribution, both sources, the branches either side of NVIDIA's 590 rename, both module
flavours, and each choice a node cannot take."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.nvidia_packages import nvidia_packages
from ansible_collections.onprem.torchrun.plugins.plugin_utils import driver_plan

H200 = ["0x2335"] * 8
V100 = ["0x1db4"] * 4
KERNELS = {"debian": "6.1.0-18-amd64", "ubuntu": "6.8.0-45-generic"}


def plan(distro, version, gpu_ids=H200, nvswitches=0, **settings):
    return driver_plan.plan(distro, version, KERNELS[distro], settings, gpu_ids=gpu_ids, nvswitches=nvswitches)


# (distro, version, source, branch, flavour) -> the driver's packages (headers and persistenced aside)
DRIVERS = {
    ("debian", "12", "cuda_repo", "580", "open"): ["nvidia-driver-cuda", "nvidia-kernel-open-dkms"],
    ("debian", "12", "cuda_repo", "580", "proprietary"): ["nvidia-driver-cuda", "nvidia-kernel-dkms"],
    ("debian", "13", "cuda_repo", "590", "open"): ["nvidia-driver-cuda", "nvidia-kernel-open-dkms"],
    ("ubuntu", "22.04", "cuda_repo", "580", "open"): ["libnvidia-compute-580", "nvidia-dkms-580-open", "nvidia-utils-580"],
    ("ubuntu", "24.04", "cuda_repo", "580", "proprietary"): ["libnvidia-compute-580", "nvidia-dkms-580", "nvidia-utils-580"],
    ("ubuntu", "24.04", "cuda_repo", "590", "open"): ["libnvidia-compute", "nvidia-dkms-open", "nvidia-utils"],
    ("ubuntu", "22.04", "cuda_repo", "595", "proprietary"): ["libnvidia-compute", "nvidia-dkms", "nvidia-utils"],
    ("ubuntu", "24.04", "distro", "580", "open"): ["nvidia-headless-580-server-open", "nvidia-utils-580-server"],
    ("ubuntu", "22.04", "distro", "570", "proprietary"): ["nvidia-headless-570-server", "nvidia-utils-570-server"],
    ("debian", "12", "distro", "580", "proprietary"): ["nvidia-kernel-dkms", "libcuda1", "nvidia-smi", "firmware-misc-nonfree"],
    ("debian", "12", "distro", "580", "open"): ["nvidia-open-kernel-dkms", "libcuda1", "nvidia-smi", "firmware-nvidia-gsp"],
}
PERSISTENCED = {("debian", "cuda_repo", "580"): "nvidia-persistenced", ("debian", "distro", "580"): "nvidia-persistenced",
                ("ubuntu", "cuda_repo", "580"): "nvidia-compute-utils-580", ("ubuntu", "cuda_repo", "590"): "nvidia-compute-utils",
                ("ubuntu", "distro", "580"): "nvidia-compute-utils-580-server"}


@pytest.mark.parametrize("key", list(DRIVERS), ids=["-".join(key) for key in DRIVERS])
def test_each_distribution_source_branch_and_flavour(key):
    distro, version, source, branch, flavour = key
    found = plan(distro, version, nvidia_driver_source=source, nvidia_driver_branch=branch, nvidia_kernel_modules=flavour,
                 nvidia_persistenced=False)
    assert found.problems == []
    pinned = ["%s=%s.*" % (name, branch) for name in DRIVERS[key]] if source == "cuda_repo" else DRIVERS[key]
    assert found.packages == ["linux-headers-" + KERNELS[distro]] + pinned
    assert found.flavour == flavour and found.pinned == (source == "cuda_repo")


@pytest.mark.parametrize("key", list(PERSISTENCED), ids=["-".join(key) for key in PERSISTENCED])
def test_the_persistence_daemon_comes_from_the_drivers_own_source(key):
    distro, source, branch = key
    found = plan(distro, "12" if distro == "debian" else "24.04", nvidia_driver_source=source, nvidia_driver_branch=branch)
    assert found.packages[-1] == PERSISTENCED[key] + ("=%s.*" % branch if source == "cuda_repo" else "")
    assert not any(name.endswith("-server") for name in found.packages if source == "cuda_repo")


def test_defaults_are_the_long_lived_branch_with_open_modules():
    found = plan("ubuntu", "24.04")
    assert found.flavour == "open" and driver_plan.LONG_LIVED == "580"
    assert found.packages == ["linux-headers-6.8.0-45-generic", "libnvidia-compute-580=580.*", "nvidia-dkms-580-open=580.*",
                              "nvidia-utils-580=580.*", "nvidia-compute-utils-580=580.*"]
    assert found.repo_distro == "ubuntu2404" and plan("debian", "12").repo_distro == "debian12"


def test_auto_takes_proprietary_modules_for_old_gpus_and_old_branches():
    assert plan("debian", "12", gpu_ids=V100).flavour == "proprietary"
    assert plan("debian", "12", gpu_ids=H200 + ["0x1db4"]).flavour == "proprietary"
    assert plan("debian", "12", nvidia_driver_branch="550").flavour == "proprietary"  # before 560 NVIDIA's default was proprietary
    assert plan("debian", "12", gpu_ids=["0x1e04"]).flavour == "open"  # the first Turing IDs
    assert plan("debian", "12", gpu_ids=["not-an-id"]).flavour == "open"


def test_fabric_manager_follows_the_branch_naming():
    assert plan("ubuntu", "22.04", nvswitches=6).packages[-1] == "nvidia-fabricmanager-580=580.*"
    assert plan("ubuntu", "22.04", nvswitches=6, nvidia_driver_branch="590").packages[-1] == "nvidia-fabricmanager=590.*"
    assert not any("fabricmanager" in name for name in plan("ubuntu", "22.04", nvswitches=6, nvidia_fabricmanager="never").packages)
    assert plan("debian", "12", nvidia_fabricmanager="always").packages[-1] == "nvidia-fabricmanager-580=580.*"


def test_ubuntu_prebuilt_signed_modules_without_dkms():
    found = plan("ubuntu", "24.04", nvidia_driver_source="distro", nvidia_dkms=False, nvidia_persistenced=False)
    assert found.problems == []
    assert found.packages == ["nvidia-headless-no-dkms-580-server-open", "nvidia-utils-580-server",
                              "linux-modules-nvidia-580-server-open-generic"]
    aws = driver_plan.plan("ubuntu", "22.04", "6.5.0-1022-aws", {"nvidia_driver_source": "distro", "nvidia_dkms": False,
                                                                  "nvidia_kernel_modules": "proprietary"})
    assert "linux-modules-nvidia-580-server-aws" in aws.packages


def test_debian_distro_takes_its_releases_branch():
    found = plan("debian", "12", nvidia_driver_source="distro", nvidia_driver_branch="580")
    assert found.flavour == "proprietary" and not found.pinned  # bookworm's 535, before open became the default
    assert found.packages == ["linux-headers-6.1.0-18-amd64", "nvidia-kernel-dkms", "libcuda1", "nvidia-smi", "firmware-misc-nonfree",
                              "nvidia-persistenced"]


def test_site_driver_toolkit_nccl_and_rdma():
    found = driver_plan.plan("debian", "12", "k", {"nvidia_driver_source": "none", "nvidia_cuda_toolkit": "12-8", "nvidia_nccl": True},
                             rdma=True)
    assert found.packages == ["cuda-toolkit-12-8", "libnccl2", "libnccl-dev"] + driver_plan.RDMA["apt"]
    assert found.flavour == "" and not found.pinned
    assert plan("ubuntu", "22.04", nvidia_driver_source="distro", nvidia_cuda_toolkit="12-8").packages[-1] == "nvidia-cuda-toolkit"


@pytest.mark.parametrize("settings,gpus,var,words", [
    ({"nvidia_kernel_modules": "open"}, V100, "nvidia_kernel_modules", "0x1db4, 0x1db4, 0x1db4, 0x1db4 are older than Turing"),
    ({"nvidia_kernel_modules": "open", "nvidia_driver_branch": "470"}, H200, "nvidia_kernel_modules", "branch 515 or later, not 470"),
    ({"nvidia_dkms": False}, H200, "nvidia_dkms", "Debian has no prebuilt NVIDIA modules from NVIDIA's repository"),
    ({"nvidia_driver_source": "distro", "nvidia_fabricmanager": "always"}, H200, "nvidia_fabricmanager", "Debian does not ship"),
    ({"nvidia_driver_branch": "newest"}, H200, "nvidia_driver_branch", "must be a driver branch number such as 580"),
])
def test_choices_a_node_cannot_take_are_problems(settings, gpus, var, words):
    found = plan("debian", "12", gpu_ids=gpus, **settings)
    assert [problem[0] for problem in found.problems] == [var]
    assert words in found.problems[0][1]


def test_unsupported_releases_are_named():
    for distro, version in (("ubuntu", "20.04"), ("debian", "11"), ("rocky", "9.3")):
        found = driver_plan.plan(distro, version, "k", {})
        assert found.problems and found.problems[0][0] == "torchrun_group" and version in found.problems[0][1]


def test_the_filter_reads_ansible_facts_and_fails_on_a_problem():
    facts = {"distribution": "Ubuntu", "distribution_version": "24.04", "kernel": "6.8.0-45-generic"}
    found = nvidia_packages(facts, {"nvidia_driver_branch": "590"}, gpu_ids=H200, nvswitches=4)
    assert found == {"packages": ["linux-headers-6.8.0-45-generic", "libnvidia-compute=590.*", "nvidia-dkms-open=590.*",
                                  "nvidia-utils=590.*", "nvidia-compute-utils=590.*", "nvidia-fabricmanager=590.*"],
                     "flavour": "open", "repo_distro": "ubuntu2404", "pinned": True}
    with pytest.raises(AnsibleFilterError, match="nvidia_kernel_modules=open, but GPU"):
        nvidia_packages(facts, {"nvidia_kernel_modules": "open"}, gpu_ids=V100)
    with pytest.raises(AnsibleFilterError, match="ansible_facts"):
        nvidia_packages("Ubuntu", {})
