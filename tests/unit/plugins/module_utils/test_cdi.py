"""The GPUs a node's CDI specifications name (module_utils/cdi.py), YAML or JSON, read as text."""

import json

from ansible_collections.onprem.torchrun.plugins.module_utils import cdi

# What `nvidia-ctk cdi generate` writes, shortened.
YAML = """---
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
- name: GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
- name: all
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
containerEdits:
  env:
  - NVIDIA_VISIBLE_DEVICES=void
"""


def test_a_yaml_and_a_json_specification_name_their_gpus(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "etc" / "nvidia.yaml").write_text(YAML)
    (tmp_path / "run" / "nvidia.json").write_text(json.dumps({"cdiVersion": "0.6.0", "kind": "nvidia.com/gpu",
                                                              "devices": [{"name": "1", "containerEdits": {}}]}))
    (tmp_path / "run" / "other.json").write_text(json.dumps({"kind": "vendor.com/fpga", "devices": [{"name": "7"}]}))
    (tmp_path / "run" / "notes.txt").write_text("kind: nvidia.com/gpu\nname: 9\n")  # not a specification's name
    assert cdi.gpu_devices((str(tmp_path / "etc"), str(tmp_path / "run"))) == [
        "0", "1", "GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c", "all"]


def test_a_node_without_specifications_has_no_gpus_to_give(tmp_path):
    assert cdi.gpu_devices((str(tmp_path / "missing"),)) == []
