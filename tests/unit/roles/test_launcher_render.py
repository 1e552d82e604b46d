"""The launcher's unit, rendered from the role's own template and variables: a host job never computes
the container's command (Jinja resolves every name a template mentions before it renders, so a name
in an untaken branch was computed on every launch), and a job in its image gets it."""

import warnings
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "launcher"
with warnings.catch_warnings():  # another test module may have set the loader up already: harmless
    warnings.simplefilter("ignore")
    init_plugin_loader()

CONTAINER = {"argv": ["/usr/bin/podman", "run", "--name", "torchrun-train", "image:1"],
             "remove": ["/usr/bin/podman", "rm", "--force", "torchrun-train"], "remove_may_fail": True}


def render(runtime, container_command, computed=None):
    """The unit's text; without ``container_command``, the command is a stand-in that counts each time it is computed."""
    values = {k: trust_as_template(v) if isinstance(v, str) else v
              for part in ("defaults", "vars") for k, v in yaml.safe_load((ROLE / part / "main.yml").read_text()).items()}
    values.update({
        "ansible_managed": "managed", "inventory_hostname": "node1", "torchrun_job": "train", "torchrun_user": "torchrun-train",
        "torchrun_runtime": runtime, "torchrun_image": "image:1", "__torchrun_ids": ["torchrun-train", 990, 990],
        "__torchrun_node_rank": 0, "__torchrun_nnodes": 2, "__torchrun_c10d": False, "__torchrun_run_env": "/etc/torchrun/train.run.env",
        "__torchrun_job_dir": "/var/lib/torchrun/train", "__torchrun_hardening": ["ProtectSystem=strict"],
        "__launcher_start_limit_interval": 600, "__launcher_script_command": ["-m", "trainer.main"],
        "__launcher_torchrun": {"argv": ["/opt/venv/bin/torchrun", "--nnodes=2"], "unset": ["RANK"]},
        "__launcher_container_command": trust_as_template("{{ computed() }}") if container_command is None else container_command,
        "computed": lambda: computed.append(1) or CONTAINER,
    })
    templar = Templar(loader=DataLoader(), variables=values)
    return templar.template(trust_as_template((ROLE / "templates" / "torchrun.service.j2").read_text()))


def test_a_host_job_runs_torchrun_from_its_venv_as_its_user_without_computing_the_container():
    computed = []
    text = render("host", None, computed)
    assert computed == []
    assert 'ExecStart="/opt/venv/bin/torchrun" "--nnodes=2" "-m" "trainer.main"' in text
    assert "User=torchrun-train" in text and "ExecStopPost" not in text


@pytest.mark.parametrize("may_fail, prefix", [(True, "-"), (False, "")])
def test_a_job_in_its_image_starts_the_container_and_removes_what_a_stop_left(may_fail, prefix):
    text = render("podman", dict(CONTAINER, remove_may_fail=may_fail))
    assert 'ExecStart="/usr/bin/podman" "run" "--name" "torchrun-train" "image:1" "-m" "trainer.main"' in text
    assert 'ExecStopPost=%s"/usr/bin/podman" "rm" "--force" "torchrun-train"' % prefix in text
    assert "User=" not in text


def test_the_stand_in_counts_when_the_container_is_computed():
    # The check above can fail: the same stand-in, in a job in its image, is computed (once per use, uncached).
    computed = []
    assert 'ExecStopPost=-"/usr/bin/podman" "rm"' in render("podman", None, computed)
    assert computed
