"""The gpu_health module run as Ansible runs it, with nvidia-smi and journalctl on PATH replaced by
scripts that print the fixtures: the verdict, and a failure that names what broke."""

import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gpu_health"
COLLECTIONS = Path(__file__).resolve().parents[4] / "collections"  # ansible_collections.onprem.torchrun is a link to the checkout


def run(tmp_path, smi, journal=None, processes=0, dcgmi=None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\n" + smi + "\n")
    if journal is not None:
        (bin_dir / "journalctl").write_text("#!/bin/sh\ncat %s\n" % journal)
    if dcgmi is not None:
        (bin_dir / "dcgmi").write_text("#!/bin/sh\n" + dcgmi + "\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"processes": processes}}))
    env = dict(os.environ, PATH="%s:/usr/bin:/bin" % bin_dir, PYTHONPATH=str(COLLECTIONS))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.onprem.torchrun.plugins.modules.gpu_health", str(args)],
                          capture_output=True, text=True, env=env, check=False, timeout=60)
    return json.loads(proc.stdout)


def test_the_verdict_joins_the_xml_and_the_kernel_log(tmp_path):
    result = run(tmp_path, "cat %s" % (FIXTURES / "hgx_two_gpus.xml"), FIXTURES / "kernel.log", processes=2)
    assert not result.get("failed") and result["changed"] is False
    assert result["problems"] == ["GPU 1 (00000000:2A:00.0): Xid 79 since boot (fell off the bus)",
                                  "GPU at c1:00 (not listed by nvidia-smi): Xid 48 since boot"]
    assert result["notes"] == ["GPU 0: Xid 13 since boot (an application's fault)"]


def test_a_broken_nvidia_smi_fails_with_its_words(tmp_path):
    result = run(tmp_path, "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'; exit 9")
    assert result["failed"] and result["msg"].startswith("nvidia-smi -q -x failed (rc 9): NVIDIA-SMI has failed")


def test_output_that_is_not_xml_fails_by_name(tmp_path):
    result = run(tmp_path, "echo 'not xml'")
    assert result["failed"] and result["msg"].startswith("cannot read nvidia-smi -q -x: ")


def test_dcgm_runs_where_it_is_installed_and_a_failed_test_counts(tmp_path):
    result = run(tmp_path, "cat %s" % (FIXTURES / "hgx_two_gpus.xml"), processes=2,
                 dcgmi='[ "$*" = "diag -r 1 -j" ] && cat %s; exit 226' % (FIXTURES / "dcgm_diag_fail.json"))
    assert result["problems"] == ["DCGM diag Integration/PCIe failed on GPU 3: GPU 3 host-to-device bandwidth 2.1 GB/s is below "
                                  "the expected 12 GB/s"]
