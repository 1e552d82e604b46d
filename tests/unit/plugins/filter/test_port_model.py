"""The port model (module_utils/ports.py, filter port_model): the job's ports in one place."""

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.port_model import port_model
from ansible_collections.onprem.torchrun.plugins.module_utils import ports
from ansible_collections.onprem.torchrun.plugins.modules import node_probe

ROOT = Path(__file__).resolve().parents[4]
CONTRACT = yaml.safe_load((ROOT / "roles" / "torchrun" / "defaults" / "main.yml").read_text())


def test_the_contracts_defaults_give_the_documented_ports():
    model = port_model(CONTRACT)
    assert (model["master"], model["range"], model["probe"]) == (29500, [52000, 53999], 52000)
    assert "healthcheck" not in model  # the health check runs on the master port
    assert model["open"] == ["29500", "52000-53999"]
    assert model["reserved"] == [29500, 52000]
    assert model["sysctl"] == "52000 53999"
    assert model["env"] == ["TORCHRUN_MASTER_PORT=29500", "TORCHRUN_COLLECTIVE_PORT_RANGE=52000-53999"]


def test_strings_from_the_command_line_and_set_check_ports_are_taken():
    # -e gives strings; a check port set by the user is reserved where it is, not at the range's start.
    model = port_model({"torchrun_master_port": "29600", "torchrun_collective_port_range": ["54000", "55999"],
                        "connectivity_probe_port": "54010"})
    assert (model["master"], model["probe"]) == (29600, 54010)
    assert model["reserved"] == [29600, 54010]


def test_other_jobs_master_ports_are_reserved_once():
    jobs = [{"job": "eval", "master_port": 29501}, {"job": "old", "master_port": None}, {"job": "same", "master_port": 29500}]
    assert port_model(CONTRACT, jobs=jobs)["reserved"] == [29500, 29501, 52000]


def test_what_the_env_file_says_is_read_back_by_the_node_probe(tmp_path):
    # The env file's lines are written from the model and read back by node_probe (one format).
    model = port_model(dict(CONTRACT, torchrun_master_port=29700))
    (tmp_path / "eval.env").write_text("\n".join(model["env"] + ["TORCHRUN_USER=torchrun-eval"]) + "\n")
    (tmp_path / "eval.secret.env").write_text("TOKEN=x\n")
    assert node_probe.installed_jobs(str(tmp_path)) == [
        {"job": "eval", "user": "torchrun-eval", "accelerator": None, "gpus": None, "master_port": 29700,
         "collective_port_range": [52000, 53999], "backend": None, "cluster": None}]


def test_a_missing_or_broken_setting_is_a_filter_error_naming_the_variables():
    with pytest.raises(AnsibleFilterError, match="torchrun_collective_port_range"):
        port_model({"torchrun_master_port": 29500})
    with pytest.raises(AnsibleFilterError, match="port numbers"):
        port_model(dict(CONTRACT, torchrun_master_port="many"))
    with pytest.raises(AnsibleFilterError, match="host's variables"):
        port_model(["not", "a", "dict"])


def test_a_new_port_is_one_entry_in_ports(monkeypatch):
    # Adding a port: one more Port. The firewall's open list, the kernel's reserved ports, the
    # environment file and the node probe's reading of it all follow, with no other change.
    metrics = ports.Port("metrics", "torchrun_metrics_port", False, "TORCHRUN_METRICS_PORT")
    monkeypatch.setattr(ports, "PORTS", ports.PORTS + (metrics,))
    model = port_model(dict(CONTRACT, torchrun_metrics_port=29400))
    assert model["metrics"] == 29400
    assert model["open"] == ["29500", "29400", "52000-53999"]
    assert model["reserved"] == [29400, 29500, 52000]
    assert "TORCHRUN_METRICS_PORT=29400" in model["env"]
    assert ports.from_env(dict(line.split("=", 1) for line in model["env"]))["metrics_port"] == 29400
    # A port inside the range defaults to its first port and is reserved, not opened on its own.
    inside = ports.Port("debug", "torchrun_debug_port", True, None)
    monkeypatch.setattr(ports, "PORTS", ports.PORTS + (inside,))
    model = port_model(dict(CONTRACT, torchrun_metrics_port=29400))
    assert model["debug"] == 52000 and "52000" not in model["open"] and 52000 in model["reserved"]
