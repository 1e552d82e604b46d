"""torchrun inside the job's image: the unit's podman command."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.torchrun.plugins.filter.container_command import container_command
from ansible_collections.onprem.torchrun.plugins.filter.container_probe import container_probe

SPEC = {"runtime": "podman", "image": "localhost/torchrun-sandbox:1", "job": "train", "uid": 990, "gid": 985,
        "workdir": "/var/lib/torchrun/train", "write_paths": ["/var/lib/torchrun/train", "/srv/shared/train"],
        "read_paths": ["/opt/torchrun/jobs/train", "/data/imagenet"]}
TORCHRUN = ["/opt/torchrun/venv/bin/torchrun", "--nnodes=2", "--node-rank=1", "/opt/torchrun/jobs/train/train.py", "--epochs", "3"]


def test_torchrun_runs_in_the_image_with_the_hosts_network_as_the_jobs_user():
    found = container_command(SPEC, TORCHRUN)
    argv = found["argv"]
    assert argv[:2] == ["/usr/bin/podman", "run"]
    # The image, then torchrun's argv exactly as the host would run it: ranks, ports and rendezvous unchanged.
    assert argv[argv.index("localhost/torchrun-sandbox:1") + 1:] == TORCHRUN
    flags = argv[2:argv.index("localhost/torchrun-sandbox:1")]
    for flag in ("--network=host", "--ipc=host", "--uts=host", "--user=990:985", "--cap-drop=all", "--security-opt=no-new-privileges",
                 "--read-only", "--init", "--rm", "--replace", "--name=torchrun-train", "--pull=never", "--env-host",
                 "--workdir=/var/lib/torchrun/train"):
        assert flag in flags, flag
    assert [f for f in flags if f.startswith("--volume=")] == [
        "--volume=/var/lib/torchrun/train:/var/lib/torchrun/train:rw", "--volume=/srv/shared/train:/srv/shared/train:rw",
        "--volume=/opt/torchrun/jobs/train:/opt/torchrun/jobs/train:ro", "--volume=/data/imagenet:/data/imagenet:ro"]
    # Nothing that would give the job more than its user has on the host.
    assert not [f for f in flags if f.startswith(("--privileged", "--cap-add", "--device", "--pid", "--userns", "--security-opt=label=disable"))]
    assert found["remove"] == ["/usr/bin/podman", "rm", "--force", "--ignore", "torchrun-train"]



@pytest.mark.parametrize(("change", "message"), [
    ({"runtime": "docker"}, "runtime 'docker' is not one of podman"),
    ({"runtime": "host"}, "runtime 'host' is not one of podman"),
    ({"image": "--privileged"}, "image '--privileged' is not an image reference"),
    ({"image": "Registry/Image"}, "is not an image reference"),
    ({"image": "pytorch:25.01 --rm"}, "is not an image reference"),
    ({"uid": 0}, "never runs as root"),
    ({"gid": 0}, "never runs as root"),
    ({"uid": "abc"}, "uid and gid must be numbers"),
    ({"job": "--rm"}, "job '--rm' is not a job name"),
    ({"purpose": "Health check"}, "purpose 'Health check' is not a lowercase word"),
    ({"write_paths": ["/var/lib/torchrun/train", "/srv/a:b"]}, "not an absolute path without spaces, commas or colons"),
    ({"read_paths": ["data"]}, "read_paths holds 'data'"),
    ({"read_paths": "/data"}, "read_paths must be a list"),
    ({"workdir": "/tmp"}, "working directory '/tmp' must be one of write_paths"),
])
def test_bad_input_is_named(change, message):
    with pytest.raises(AnsibleFilterError, match=message):
        container_command(dict(SPEC, **change), TORCHRUN)


@pytest.mark.parametrize("image", ["nvcr.io/nvidia/pytorch:25.01-py3", "registry.site:5000/ml/torch:2.13",
                                   "localhost/torchrun-sandbox@sha256:" + "a" * 64, "pytorch"])
def test_image_references_a_site_uses_are_taken(image):
    assert image in container_command(dict(SPEC, image=image), TORCHRUN)["argv"]


def test_an_empty_command_is_refused():
    with pytest.raises(AnsibleFilterError, match="command must be torchrun's argv"):
        container_command(SPEC, [])


def test_a_check_in_the_image_reads_only_as_nobody_without_network_and_the_host_needs_none():
    assert container_probe({"runtime": "podman", "image": "localhost/torchrun-sandbox:1"}) == [
        "/usr/bin/podman", "run", "--rm", "--log-driver=none", "--network=none", "--pull=never", "--user=65534:65534", "--cap-drop=all",
        "--security-opt=no-new-privileges", "--read-only", "localhost/torchrun-sandbox:1"]
    assert container_probe({"runtime": "host", "image": ""}) == []
    for spec, message in (({"runtime": "docker", "image": "x"}, "not host or one of podman"),
                          ({"runtime": "podman", "image": "--privileged"}, "not an image reference"), ("podman", "needs a dict")):
        with pytest.raises(AnsibleFilterError, match=message):
            container_probe(spec)


def test_the_health_check_runs_in_a_container_of_its_own():
    found = container_command(dict(SPEC, purpose="healthcheck"), TORCHRUN)
    assert "--name=torchrun-train-healthcheck" in found["argv"] and found["remove"][-1] == "torchrun-train-healthcheck"


@pytest.mark.parametrize(("gpus", "devices", "visible"), [
    (["all"], ["--device=nvidia.com/gpu=all"], None),  # every GPU, numbered as on the host
    (["2", "3"], ["--device=nvidia.com/gpu=2", "--device=nvidia.com/gpu=3"], "--env=CUDA_VISIBLE_DEVICES=0,1"),
    (["GPU-8d3a-11"], ["--device=nvidia.com/gpu=GPU-8d3a-11"], "--env=CUDA_VISIBLE_DEVICES=0"),
    ([], [], None),  # a cpu job: no device at all
])
def test_the_jobs_gpus_are_cdi_devices_numbered_from_0_inside(gpus, devices, visible):
    argv = container_command(dict(SPEC, gpus=gpus), TORCHRUN)["argv"]
    flags = argv[2:argv.index("localhost/torchrun-sandbox:1")]
    assert [f for f in flags if f.startswith("--device")] == devices
    assert [f for f in flags if f.startswith("--env=")] == ([visible] if visible else [])
    if visible:  # after --env-host, so it wins over the host's CUDA_VISIBLE_DEVICES of the environment file
        assert flags.index(visible) > flags.index("--env-host")


def test_rdma_gives_the_infiniband_devices_and_an_unlimited_memlock():
    argv = container_command(dict(SPEC, gpus=["all"], rdma=True), TORCHRUN)["argv"]
    flags = argv[2:argv.index("localhost/torchrun-sandbox:1")]
    assert "--device=/dev/infiniband" in flags and "--ulimit=memlock=-1:-1" in flags
    assert not [f for f in container_command(SPEC, TORCHRUN)["argv"] if f.startswith("--ulimit")]


@pytest.mark.parametrize("gpus", ["all", ["all", "0"], ["0 --privileged"], [{"index": 0}], ["/dev/nvidia0"]])
def test_a_gpu_list_that_is_not_one_is_refused(gpus):
    with pytest.raises(AnsibleFilterError, match="gpus"):
        container_command(dict(SPEC, gpus=gpus), TORCHRUN)
