"""stack_info's readers: driver, nvcc and nvidia-smi output, and its probe run in a real venv."""

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from ansible_collections.onprem.torchrun.plugins.module_utils import stack as stack_info

PROC_VERSION = """NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Mar  5 22:15:33 UTC 2024
GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)
"""
PROC_VERSION_PROPRIETARY = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.161.08  Tue Mar  5 22:42:15 UTC 2024\n"
NVCC = """nvcc: NVIDIA (R) Cuda compiler driver
Copyright (c) 2005-2024 NVIDIA Corporation
Cuda compilation tools, release 12.4, V12.4.131
Build cuda_12.4.r12.4/compiler.34097967_0
"""
SMI = """0, NVIDIA H200, 143771, 550.54.15, Disabled
1, NVIDIA H200, 143771, 550.54.15, Enabled
"""


def test_driver_version_from_proc():
    assert stack_info.driver_version(PROC_VERSION) == "550.54.15"
    assert stack_info.driver_version(PROC_VERSION_PROPRIETARY) == "535.161.08"
    assert stack_info.driver_version("") == "none"


def test_nvcc_version():
    assert stack_info.nvcc_version(NVCC) == "12.4.131"
    assert stack_info.nvcc_version("bash: nvcc: not found") == "none"


def test_gpus_from_nvidia_smi():
    gpus = stack_info.parse_gpus(SMI + "No devices were found\n")
    assert gpus == [
        {"index": 0, "name": "NVIDIA H200", "memory_mib": 143771, "driver": "550.54.15", "mig": "Disabled"},
        {"index": 1, "name": "NVIDIA H200", "memory_mib": 143771, "driver": "550.54.15", "mig": "Enabled"},
    ]
    assert stack_info.parse_gpus(None) == []


def test_venv_probe_reports_python_and_named_packages():
    out = subprocess.run([sys.executable, "-c", stack_info.VENV_PROBE, stack_info.probe_args(["pytest", "no-such-dist"])],
                         capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    assert report["python"] == platform.python_version()
    assert report["pytest"] == metadata.version("pytest")
    assert report["no-such-dist"] == "none"
    assert set(report) >= {"torch", "torch_cuda", "torch_nccl", "lightning"}
    assert report["requirements_missing"] == [] and "distributions" not in report


def test_venv_probe_names_each_missing_or_mismatched_requirement_and_lists_every_distribution():
    # What a launch's probe asks the venv in its one call: the project's requirements, and every distribution.
    asked = stack_info.probe_args(requirements=["PyYAML>=1", "no-such-package-here==1.0", "PyYAML==0.0.1"], distributions=True)
    report = json.loads(subprocess.run([sys.executable, "-c", stack_info.VENV_PROBE, asked],
                                       capture_output=True, text=True, check=True).stdout)
    missing = report["requirements_missing"]
    assert missing[0] == "no-such-package-here==1.0 (not installed)"
    assert missing[1] == "PyYAML==0.0.1 (%s installed)" % metadata.version("PyYAML") and len(missing) == 2
    assert report["distributions"]["pyyaml"] == metadata.version("PyYAML")  # keyed by the normalized name
    assert stack_info.normalized("Typing_Extensions") == "typing-extensions"


def fake_torch(root, cuda, nccl=None):
    """A site folder with torch's metadata and version.py (a CUDA build, or CPU with cuda None)."""
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text("raise RuntimeError('the probe must not import torch')\n")
    (root / "torch" / "version.py").write_text(
        "from typing import Optional\n__version__ = '2.13.0'\ncuda: Optional[str] = %s\n" % (repr(cuda) if cuda else "None"))
    dists = [("torch", "2.13.0+%s" % ("cu" + cuda.replace(".", "") if cuda else "cpu"))] + ([("nvidia-nccl-cu12", nccl)] if nccl else [])
    for name, version in dists:
        info = root / ("%s-%s.dist-info" % (name.replace("-", "_"), version))
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version))


def probe(site):
    env = dict(os.environ, PYTHONPATH=str(site))
    return json.loads(subprocess.run([sys.executable, "-c", stack_info.VENV_PROBE], env=env, capture_output=True, text=True,
                                     check=True).stdout)


def test_venv_probe_reads_torch_builds_without_importing_torch(tmp_path):
    fake_torch(tmp_path / "gpu", "12.8", nccl="2.27.5")
    assert {k: v for k, v in probe(tmp_path / "gpu").items() if k.startswith("torch")} == {
        "torch": "2.13.0+cu128", "torch_cuda": "12.8", "torch_nccl": "2.27.5"}
    fake_torch(tmp_path / "cpu", None)
    assert {k: v for k, v in probe(tmp_path / "cpu").items() if k.startswith("torch")} == {
        "torch": "2.13.0+cpu", "torch_cuda": "none", "torch_nccl": "none"}


COLLECTIONS = Path(__file__).resolve().parents[4] / "collections"  # ansible_collections.onprem.torchrun is a link to the checkout


def run_module(tmp_path, params):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.onprem.torchrun.plugins.modules.stack_info", str(args)],
                          capture_output=True, text=True, env=env, check=False, timeout=60)
    return json.loads(proc.stdout)


def test_a_runner_asks_the_venv_where_it_is_and_a_failing_one_is_named(tmp_path):
    # A job in its image: the venv's path is the image's, run through the runner (here env, as podman run would).
    site = tmp_path / "image-site"
    fake_torch(site, None)
    result = run_module(tmp_path, {"venv": sys.prefix, "runner": ["/usr/bin/env", "PYTHONPATH=%s" % site], "packages": []})
    assert result["versions"]["torch"] == "2.13.0+cpu" and result["versions"]["python"] == platform.python_version(), result
    # A venv path that is not on the node is still asked through the runner; a runner that fails names the image.
    failed = run_module(tmp_path, {"venv": "/opt/in-image/venv", "runner": ["/bin/false", "localhost/img:1"]})
    assert failed["failed"] and failed["msg"] == ("/opt/in-image/venv/bin/python in localhost/img:1 could not report its packages; "
                                                  "is the venv broken or the image missing?")
