"""The job in its image with docker (torchrun_runtime=docker) on real nodes: the sandbox's training
image (sandbox/container_image.py) loaded from its archive, docker.io from the distribution, the
site's docker configuration the sandbox writes (sandbox.DOCKER_CONF: crun without cgroups, the vfs
driver, no bridge or iptables of docker's own). What docker lacks of podman (--replace, --env-host,
--umask) the unit makes up for (filter container_command); ranks, ports, firewall and the job's user
stay as on the host. The checks it shares with test_container.py (podman) are in
tests/integration/container_common.py.

Needs root (`make test-slow`: about 12 minutes on a 2-core machine; each container start copies the
1 GB image on the vfs driver, 30 to 60 s with two nodes starting at once).
"""

import os
import re

import container_common as common
import pytest
from container_common import on

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root"), pytest.mark.slow]
RUNTIME = "docker"
SECRET = {"torchrun_secret_env": {"SANDBOX_SECRET": "two words"}}


image, cluster = common.fixtures(RUNTIME, SECRET)  # a secret in the job's environment


def test_setup_installs_docker_and_loads_the_image_and_a_second_run_changes_nothing(cluster, image):
    for node in ("node1", "node2"):
        assert on(node, "test -e /opt/torchrun/venv").returncode != 0  # nothing of torch on the host
        assert on(node, "systemctl is-active docker").stdout.strip() == "active"
        ids = on(node, "docker image inspect --format '{{.Id}}' %s" % image["torchrun_image"]).stdout.split()
        assert len(ids) == 1 and re.match(r"sha256:[0-9a-f]{64}\Z", ids[0]), ids
    common.setup_again_changes_nothing_and_the_report_reads_the_image(image)
    # Docker's own network rules stay out of the node's firewall (the site's configuration says so).
    assert "DOCKER" not in on("node1", "nft list ruleset").stdout


def test_the_health_check_measures_in_a_docker_container_of_its_own(cluster, image, tmp_path):
    common.health_check_runs_in_a_container_of_its_own(image, RUNTIME, tmp_path / "healthcheck.json")


def test_the_job_trains_with_docker_as_its_user_with_its_environment_by_name(cluster, image):
    listings = common.launched_with_ranks_and_the_jobs_uid(image, RUNTIME)
    for node, listing in listings.items():
        # The docker client's command line names the secret, never its value.
        assert "two words" not in listing and "--env=SANDBOX_SECRET " in listing, listing
        # The unit's environment reached the workers (the secret too), PATH is the image's, the umask the job's.
        worker = on(node, "pgrep -u 2000 -f '^/opt/torchrun/venv/bin/python -u /opt/torchrun/jobs/train/lightning'").stdout.split()[0]
        environ = on(node, "tr '\\0' '\\n' < /proc/%s/environ" % worker).stdout
        assert "SANDBOX_SECRET=two words\n" in environ and "TORCHRUN_JOB=train\n" in environ, environ
        assert re.search(r"^PATH=/opt/torchrun/venv/bin:", environ, re.M), environ
        assert on(node, "grep Umask /proc/%s/status" % worker).stdout.split() == ["Umask:", "0027"]


def test_stacks_are_read_inside_the_docker_container(cluster, image, tmp_path):
    common.stacks_are_read_in_the_container(image, tmp_path)


def test_a_node_with_another_image_is_named_and_nothing_starts(cluster, image):
    common.another_image_is_named_and_nothing_starts(image, RUNTIME)


def test_stop_saves_a_checkpoint_and_removes_the_docker_containers(cluster, image):
    common.stop_saves_a_checkpoint_and_leaves_no_container(image, RUNTIME)
