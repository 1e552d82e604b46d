"""The launcher's unit, rendered from the role's own template and variables: a host job never computes
the container's command (Jinja resolves every name a template mentions before it renders, so a name
in an untaken branch was computed on every launch), and a job in its image gets it.

Each render runs in its own interpreter whose plugin loader knows the checkout's collection (the
template uses the collection's filters; in-process, the first test to set the loader up decides)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CONTAINER = {"argv": ["/usr/bin/podman", "run", "--name", "torchrun-train", "image:1"],
             "remove": ["/usr/bin/podman", "rm", "--force", "torchrun-train"], "remove_may_fail": True}
RENDER = r"""
import json, sys
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template
root, runtime, container = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
init_plugin_loader([root + "/collections"])
role = root + "/roles/launcher/"
values = {k: trust_as_template(v) if isinstance(v, str) else v
          for part in ("defaults", "vars") for k, v in yaml.safe_load(open(role + part + "/main.yml")).items()}
computed = []
values.update({
    "ansible_managed": "managed", "inventory_hostname": "node1", "torchrun_job": "train", "torchrun_user": "torchrun-train",
    "torchrun_runtime": runtime, "torchrun_image": "image:1", "__torchrun_ids": ["torchrun-train", 990, 990],
    "__torchrun_node_rank": 0, "__torchrun_nnodes": 2, "__torchrun_c10d": False, "__torchrun_run_env": "/etc/torchrun/train.run.env",
    "__torchrun_job_dir": "/var/lib/torchrun/train", "__torchrun_hardening": ["ProtectSystem=strict"],
    "__launcher_start_limit_interval": 600, "__launcher_script_command": ["-m", "trainer.main"],
    "__launcher_torchrun": {"argv": ["/opt/venv/bin/torchrun", "--nnodes=2"], "unset": ["RANK"]},
    # The stand-in counts each time the container's command is computed (a lazy value is not cached across uses).
    "__launcher_container_command": trust_as_template("{{ computed() }}"),
    "computed": lambda: computed.append(1) or container,
})
text = Templar(loader=DataLoader(), variables=values).template(trust_as_template(open(role + "templates/torchrun.service.j2").read()))
print(json.dumps({"text": text, "computed": len(computed)}))
"""


def render(runtime, container=None):
    proc = subprocess.run([sys.executable, "-c", RENDER, str(ROOT), runtime, json.dumps(container or CONTAINER)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["text"], out["computed"]


def test_a_host_job_runs_torchrun_from_its_venv_as_its_user_without_computing_the_container():
    text, computed = render("host")
    assert computed == 0
    assert 'ExecStart="/opt/venv/bin/torchrun" "--nnodes=2" "-m" "trainer.main"' in text
    assert "User=torchrun-train" in text and "ExecStopPost" not in text


@pytest.mark.parametrize("may_fail, prefix", [(True, "-"), (False, "")])
def test_a_job_in_its_image_starts_the_container_and_removes_what_a_stop_left(may_fail, prefix):
    # The count can fail the test above: here the same stand-in is computed, once for both lines.
    text, computed = render("podman", dict(CONTAINER, remove_may_fail=may_fail))
    assert computed == 1
    assert 'ExecStart="/usr/bin/podman" "run" "--name" "torchrun-train" "image:1" "-m" "trainer.main"' in text
    assert 'ExecStopPost=%s"/usr/bin/podman" "rm" "--force" "torchrun-train"' % prefix in text
    assert "User=" not in text
