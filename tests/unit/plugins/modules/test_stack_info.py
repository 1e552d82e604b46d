"""stack_info's readers: driver, nvcc and nvidia-smi output, and its probe run in a real venv."""

import json
import platform
import subprocess
import sys
from importlib import metadata

from ansible_collections.onprem.torchrun.plugins.modules import stack_info

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
    out = subprocess.run([sys.executable, "-c", stack_info.VENV_PROBE, "pytest", "no-such-dist"],
                         capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    assert report["python"] == platform.python_version()
    assert report["pytest"] == metadata.version("pytest")
    assert report["no-such-dist"] == "none"
    assert set(report) >= {"torch", "torch_cuda", "torch_nccl", "lightning"}
