"""torchrun inside the job's image: the unit's podman and docker commands."""

import ast
import subprocess
import sys

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
    ({"runtime": "crio"}, "runtime 'crio' is not one of docker, podman"),
    ({"runtime": "host"}, "runtime 'host' is not one of docker, podman"),
    ({"image": "--privileged"}, "image '--privileged' is not an image reference"),
    ({"image": "Registry/Image"}, "is not an image reference"),
    ({"image": "pytorch:25.01 --rm"}, "is not an image reference"),
    ({"uid": 0}, "never root's"),
    ({"gid": 0}, "never root's"),
    ({"uid": "abc"}, "uid and gid must both be numbers"),
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


def test_docker_runs_the_same_container_and_makes_up_for_what_it_lacks():
    found = container_command(dict(SPEC, runtime="docker"), TORCHRUN)
    argv = found["argv"]
    # The unit's environment by name, through the node's own Python, which becomes docker.
    assert argv[:3] == ["/usr/bin/python3", "-I", "-c"] and argv[4:6] == ["/usr/bin/docker", "run"]
    image = argv.index("localhost/torchrun-sandbox:1")
    flags = argv[6:image]
    for flag in ("--network=host", "--ipc=host", "--uts=host", "--user=990:985", "--cap-drop=all", "--security-opt=no-new-privileges",
                 "--read-only", "--init", "--rm", "--name=torchrun-train", "--pull=never", "--workdir=/var/lib/torchrun/train",
                 "--tmpfs=/tmp", "--tmpfs=/var/tmp", "--volume=/var/lib/torchrun/train:/var/lib/torchrun/train:rw",
                 "--volume=/data/imagenet:/data/imagenet:ro"):
        assert flag in flags, flag
    assert not [f for f in flags if f.startswith(("--replace", "--umask", "--env-host", "--privileged", "--cap-add", "--gpus", "--device"))]
    # The image's Python sets the umask and becomes torchrun: torchrun's argv unchanged after it.
    assert argv[image + 1:image + 4] == ["/opt/torchrun/venv/bin/python", "-I", "-c"] and argv[image + 5:] == TORCHRUN
    assert found["remove"] == ["/usr/bin/docker", "rm", "--force", "torchrun-train"] and found["remove_may_fail"]
    assert not container_command(SPEC, TORCHRUN)["remove_may_fail"]


def test_dockers_unit_environment_goes_by_name_without_values_and_without_path():
    spec = dict(SPEC, runtime="docker", gpus=["2", "3"])
    argv = container_command(spec, TORCHRUN)["argv"]
    env = {"PATH": "/usr/bin:/bin", "NCCL_SOCKET_IFNAME": "=eth1", "HF_TOKEN": "secret value", "CUDA_VISIBLE_DEVICES": "2,3"}
    script = argv[3].replace("os.execv(a[0], ", "print(repr(")[:-1] + "))"
    script = script.replace("subprocess.run([a[0], 'rm'", "print([a[0], 'rm'").replace(", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)", ")")
    out = subprocess.run([sys.executable, "-I", "-c", script] + argv[4:], env=env, capture_output=True, text=True, check=True).stdout
    removal, started = out.strip().splitlines()
    assert ast.literal_eval(removal) == ["/usr/bin/docker", "rm", "--force", "torchrun-train"]  # a container left behind
    docker = ast.literal_eval(started)
    assert docker[:2] == ["/usr/bin/docker", "run"]
    passed = [arg for arg in docker if arg.startswith("--env=")]
    # Each variable by name (docker reads its value from its own environment; no secret on a command line),
    # but PATH (the image's) and CUDA_VISIBLE_DEVICES, which the command sets itself: the GPUs 0 and 1 inside.
    assert "--env=NCCL_SOCKET_IFNAME" in passed and "--env=HF_TOKEN" in passed and "--env=PATH" not in passed
    assert [arg for arg in passed if arg.startswith("--env=CUDA_VISIBLE_DEVICES")] == ["--env=CUDA_VISIBLE_DEVICES=0,1"]
    assert not [arg for arg in docker if "secret" in arg]
    assert '--gpus="device=2,3"' in docker
    # The image's Python: the job's umask, then torchrun with its own argv.
    inside = argv[argv.index("localhost/torchrun-sandbox:1") + 1:]
    probe = [sys.executable, "-I", "-c", inside[3].replace("os.execv(sys.argv[1], sys.argv[1:])",
                                                           "print(oct(os.umask(0)), sys.argv[1:])")] + inside[4:]
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "0o27 %s" % TORCHRUN
    assert container_command(dict(spec, gpus=["all"]), TORCHRUN)["argv"].count("--gpus=all") == 1


def test_an_empty_command_is_refused():
    with pytest.raises(AnsibleFilterError, match="command must be torchrun's argv"):
        container_command(SPEC, [])


def test_a_check_in_the_image_reads_only_as_nobody_without_network_and_the_host_needs_none():
    assert container_probe({"runtime": "podman", "image": "localhost/torchrun-sandbox:1"}) == [
        "/usr/bin/podman", "run", "--rm", "--log-driver=none", "--network=none", "--pull=never", "--user=65534:65534", "--cap-drop=all",
        "--security-opt=no-new-privileges", "--read-only", "localhost/torchrun-sandbox:1"]
    assert container_probe({"runtime": "host", "image": ""}) == []
    for spec, message in (({"runtime": "crio", "image": "x"}, "not host or one of docker, podman"),
                          ({"runtime": "podman", "image": "--privileged"}, "not an image reference"), ("podman", "needs a dict")):
        with pytest.raises(AnsibleFilterError, match=message):
            container_probe(spec)


def test_a_run_in_the_image_as_the_jobs_user_reads_the_folders_it_is_given():
    found = container_probe({"runtime": "podman", "image": "localhost/torchrun-sandbox:1", "uid": 999, "gid": 997,
                             "read_paths": ["/tmp/torchrun-flight-x"]})
    assert found[:2] == ["/usr/bin/podman", "run"] and found[-1] == "localhost/torchrun-sandbox:1"
    assert "--user=999:997" in found and "--volume=/tmp/torchrun-flight-x:/tmp/torchrun-flight-x:ro" in found
    assert {"--network=none", "--cap-drop=all", "--read-only", "--security-opt=no-new-privileges"} <= set(found)
    for spec, message in (({"uid": 0, "gid": 0}, "never root"), ({"uid": 999}, "both be numbers"),
                          ({"read_paths": ["relative"]}, "read_paths must be absolute"), ({"read_paths": ["/a:/b"]}, "read_paths"),
                          ({"read_paths": "/tmp"}, "read_paths")):
        with pytest.raises(AnsibleFilterError, match=message):
            container_probe(dict({"runtime": "podman", "image": "localhost/torchrun-sandbox:1"}, **spec))


def test_a_command_in_the_jobs_running_container_runs_as_its_user_under_its_confinement():
    assert container_probe({"runtime": "podman", "job": "train", "uid": 999, "gid": 997}) == [
        "/usr/bin/podman", "exec", "--user=999:997", "torchrun-train"]
    assert container_probe({"runtime": "host", "job": "train", "uid": 999, "gid": 997}) == []
    for spec, message in (({"job": "train"}, "runs as its user: give uid and gid"), ({"job": "Bad name", "uid": 1, "gid": 1}, "not a job name"),
                          ({"job": "train", "uid": 0, "gid": 0}, "never root")):
        with pytest.raises(AnsibleFilterError, match=message):
            container_probe(dict({"runtime": "podman"}, **spec))


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
