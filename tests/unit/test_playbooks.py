"""Every playbook that targets the training group refuses a group that is missing or empty, on the
controller, before any host is contacted (a mistyped torchrun_group used to print "skipping: no hosts
matched" and succeed). Runs ansible-playbook with an inventory of local hosts; no node, no network."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ["setup", "launch", "stop", "status", "logs", "report", "healthcheck", "stacks", "train"]
MESSAGE = "inventory: group 'gpus' (torchrun_group) is missing or empty; list the training nodes in it, first the master node"


def ansible_playbook(playbook, inventory, *args):
    """ansible-playbook playbooks/<playbook>.yml on the local inventory, with the repository's configuration."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/%s.yml" % playbook, "-i", str(inventory), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    # Hosts that would run on this machine if anything reached them: nothing must.
    path.write_text(yaml.safe_dump({"all": {"children": {"trainers": {"hosts": {
        "node1": {"ansible_connection": "local", "ansible_host": "198.18.0.11"},
        "node2": {"ansible_connection": "local", "ansible_host": "198.18.0.12"}}}}}}))
    return path


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_a_missing_group_is_refused_by_name_before_any_host_is_contacted(inventory, name):
    proc = ansible_playbook(name, inventory, "-e", "torchrun_group=gpus")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, out[-2000:]
    assert MESSAGE in out, out[-2000:]
    recap = out[out.index("PLAY RECAP"):]
    assert "node1" not in recap and "node2" not in recap, recap  # no host of the inventory was touched


def test_train_refuses_part_of_the_group_even_with_job_partial_before_any_host_is_contacted(inventory):
    # setup.yml alone may set up part of the group when asked (-e job_partial=true); train.yml launches on the
    # whole group, so its setup play's first check refuses a --limit whatever job_partial says.
    proc = ansible_playbook("train", inventory, "--limit", "node1", "-e", "job_partial=true")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, out[-2000:]
    assert "this play leaves out node2 of group trainers" in out and "run without --limit, or take it out of group trainers" in out, out[-2000:]
    assert "job_partial=true" not in out[out.index("this play leaves out"):], out[-2000:]  # no hint that it would lift the refusal
    recap = out[out.index("PLAY RECAP"):]
    assert "node1 : ok=0 changed=0 unreachable=0 failed=1" in recap, recap  # the controller's check alone ran
    assert "TASK [Check every setting, and refuse a run that leaves out nodes of the group" in out


def test_every_play_on_the_training_group_takes_its_hosts_through_the_filter():
    # The filters loaded once by ansible-playbook's own process, which templates a play's hosts, before
    # it forks a worker per task (each worker inherits them); check_group.yml refuses with the same filter.
    plays = 0
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(path.read_text()) or []:
            hosts = str(play.get("hosts", ""))
            if "torchrun_group" in hosts:
                plays += 1
                assert "torchrun_group | default('trainers') | onprem.torchrun.training_group" in hosts, (path.name, hosts)
    assert plays >= len(PLAYBOOKS)
    check = yaml.safe_load((ROOT / "playbooks" / "check_group.yml").read_text())[0]["tasks"][0]
    assert "onprem.torchrun.training_group(groups)" in check["ansible.builtin.assert"]["that"]


@pytest.mark.parametrize("asked, hosts", [(None, 0), ("false", 0), ("true", 2)])
def test_train_runs_the_health_check_play_on_the_group_only_when_asked(inventory, asked, hosts):
    # Not asked, the play has no hosts, so none of its tasks runs (an import's `when` ran each as a skip on every node).
    extra = ["-e", "healthcheck_before_launch=%s" % asked] if asked else []
    proc = ansible_playbook("train", inventory, "--list-hosts", *extra)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    plays = proc.stdout.split("  play #")
    check = [play for play in plays if "Check the cluster's collective bandwidth" in play]
    assert len(check) == 1 and "hosts (%d)" % hosts in check[0], proc.stdout[-2000:]
    launch = [play for play in plays if "Launch the torchrun job" in play]
    assert len(launch) == 1 and "hosts (2)" in launch[0]


@pytest.mark.parametrize("name", ["train", "launch", "setup", "healthcheck"])
def test_the_group_is_checked_once_per_run(inventory, name):
    # train.yml imports setup, healthcheck and launch, each of which imports check_group.yml: the first check
    # runs on localhost, the later ones have no hosts (nothing of them runs).
    proc = ansible_playbook(name, inventory, "--list-hosts")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    plays = [play for play in proc.stdout.split("  play #") if "Check the training group" in play]
    assert len(plays) == (3 if name == "train" else 1), proc.stdout[-2000:]
    assert sum("hosts (1):\n      localhost" in play for play in plays) == 1, proc.stdout[-2000:]
    assert "localhost" in plays[0]  # the first play of the run
