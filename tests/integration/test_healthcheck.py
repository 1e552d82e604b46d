"""The health check on a 3-node sandbox: a healthy cluster passes, a throttled node is named, and
train.yml launches nothing after a failing check. Needs root (`make test-slow`: make test checks a
healthy 2-node cluster on test_launch.py's nodes, which saves booting and setting up three more)."""

import json
import os
import xml.etree.ElementTree as ET

import harness
import pytest
from conftest import run_playbook

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root"), pytest.mark.slow]
NODES = ["node1", "node2", "node3"]
SVG = "{http://www.w3.org/2000/svg}"
SMALL = harness.HEALTHCHECK_SMALL


on = harness.on


def healthcheck(report, **extra):
    proc = run_playbook("healthcheck", "-e", json.dumps(dict(SMALL, healthcheck_report=str(report), **extra)))
    return proc, " ".join((proc.stdout + proc.stderr).split())


@pytest.fixture(scope="module")
def cluster():
    # On the seed layer test_launch.py kept (a node set up there), when there is one: setup finishes
    # the job for three nodes instead of installing the stack again; from the bare image otherwise.
    with harness.cluster(3, seed=harness.seed_ready()):
        setup = run_playbook("setup")
        assert setup.returncode == 0, setup.stdout[-3000:]
        yield


def changed_nothing(out):
    for node in NODES:
        assert "%s : ok=" % node in out and " changed=0 " in out.split("%s : ok=" % node)[1].split("rescued")[0], out[-2000:]


def test_a_healthy_sandbox_passes(cluster, tmp_path):
    # The sandbox's links are memory copies on two shared cores: a healthy pair has measured at
    # under half of another in the same run (0.19 vs 0.41 GB/s), while a throttled link is about
    # 50x slower (the next test, with the default ratio of 0.5). The first run installs the
    # benchmark; the next test's run, the second, must change nothing on any node.
    proc, out = healthcheck(tmp_path / "report.json", healthcheck_pair_ratio=0.2)
    assert proc.returncode == 0, out[-3000:]
    harness.healthy(out, tmp_path / "report.json", NODES)


@pytest.mark.slow  # 43 s: make test-slow (the grading, the slow node's naming and the SVG are unit-tested; make test keeps the healthy run)
def test_a_throttled_node_is_named_and_a_second_run_changes_nothing(cluster, tmp_path):
    on("node3", "tc qdisc add dev host0 root tbf rate 50mbit burst 64kb latency 100ms")
    try:
        proc, out = healthcheck(tmp_path / "report.json", healthcheck_fail_on="degraded")
    finally:
        on("node3", "tc qdisc del dev host0 root")
    assert proc.returncode != 0, out[-3000:]
    assert "health check: DEGRADED" in out and "node3: every pair with it is slow" in out, out[-3000:]
    changed_nothing(out)  # the throttle is the kernel's (tc), not a change of ours
    result = json.loads((tmp_path / "report.json").read_text())
    assert result["suspects"] == ["node3"] and result["slow_pairs"] == ["node1-node3", "node2-node3"]
    # The picture beside the report: node3's row and column outlined, its pairs marked slow.
    picture = ET.fromstring((tmp_path / "report.svg").read_text())
    outlined = {(e.get("data-node"), e.get("data-axis")) for e in picture.iter(SVG + "rect") if e.get("class") == "outline"}
    assert outlined == {("node3", "row"), ("node3", "column")}
    slow = {(g.get("data-row"), g.get("data-column")) for g in picture.iter(SVG + "g") if "slow" in g.get("class", "").split()}
    assert slow == {("node1", "node3"), ("node3", "node1"), ("node2", "node3"), ("node3", "node2")}


@pytest.mark.slow  # 25-37 s: make test-slow (the grade is unit-tested; a failing grade fails the play in the tests above)
def test_train_launches_nothing_after_a_failing_check(cluster, tmp_path):
    # The cluster is set up already: train.yml's setup roles are skipped (their idempotence is
    # proven elsewhere), its validation, preflight, health check and launch plays run.
    proc = run_playbook("train", "--skip-tags", "nvidia,pytorch,firewall,connectivity,launcher",
                        "-e", json.dumps(dict(SMALL, healthcheck_before_launch=True, healthcheck_fail_below_gbps=1000,
                                              healthcheck_report=str(tmp_path / "report.json"))))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "health check: FAIL:" in out and "is below healthcheck_fail_below_gbps=1000" in out, out[-3000:]
    for node in NODES:
        assert on(node, "systemctl show -p InvocationID --value torchrun-train.service").stdout.strip() == ""
