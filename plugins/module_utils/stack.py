# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The versions of a node's training stack, and what its venv lacks of the project's requirements.

stack_info reports them on their own (playbooks/report.yml, the pytorch role's check of a site's
environment); node_probe reads them in a launch's one call per node (option stack), so the stack
report and the requirements check cost no round trip of their own.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import stat

NONE = "none"

# Runs inside the venv; its one argument is a JSON object (probe_args); prints one JSON object. Reads
# package metadata and torch/version.py rather than importing torch (seconds per node at every launch);
# imports torch only for the NCCL version of a CUDA build that does not take NCCL from an
# nvidia-nccl-cu* distribution. Requirements are checked with packaging (pip's copy where the venv has
# no packaging of its own), as pip would.
VENV_PROBE = r"""
import json, os, re, sys
from importlib import metadata, util
asked = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
out = {"python": sys.version.split()[0], "torch_cuda": "none", "torch_nccl": "none"}
for name in ["torch", "lightning"] + asked.get("packages", []):
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = "none"
spec = util.find_spec("torch") if out["torch"] != "none" else None
if spec is not None and spec.origin:
    try:
        with open(os.path.join(os.path.dirname(spec.origin), "version.py"), encoding="utf-8") as handle:
            match = re.search(r"^cuda\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)['\"]", handle.read(), re.M)
        out["torch_cuda"] = match.group(1) if match else "none"
    except OSError:
        pass
    if out["torch_cuda"] != "none":
        nccl = [d.version for d in metadata.distributions() if (d.metadata["Name"] or "").lower().startswith("nvidia-nccl-cu")]
        if nccl:
            out["torch_nccl"] = nccl[0]
        else:
            try:
                import torch
                out["torch_nccl"] = ".".join(str(part) for part in torch.cuda.nccl.version())
            except Exception:
                pass
missing = []
if asked.get("requirements"):
    try:
        from packaging.requirements import Requirement
    except ImportError:
        from pip._vendor.packaging.requirements import Requirement
    for text in asked["requirements"]:
        req = Requirement(text)
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(text + " (not installed)")
            continue
        if not req.specifier.contains(have, prereleases=True):
            missing.append("%s (%s installed)" % (text, have))
out["requirements_missing"] = missing
if asked.get("distributions"):
    out["distributions"] = {re.sub(r"[-_.]+", "-", d.metadata["Name"] or "").lower(): d.version for d in metadata.distributions()}
print(json.dumps(out))
"""

VENV_KEYS = ("python", "torch", "torch_cuda", "torch_nccl", "lightning")


def probe_args(packages=(), requirements=(), distributions=False) -> str:
    """VENV_PROBE's argument: the distributions to name, the requirement specifiers to check, and
    whether to list every distribution (name normalized as PEP 503 does) with its version."""
    return json.dumps({"packages": list(packages), "requirements": list(requirements), "distributions": bool(distributions)})


def normalized(name: str) -> str:
    """A distribution's name as VENV_PROBE's ``distributions`` keys it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def driver_version(text):
    """The version in /proc/driver/nvidia/version, or none."""
    match = re.search(r"Kernel Module(?: for [\w]+)?\s+([0-9][0-9.]+)", text or "")
    return match.group(1) if match else NONE


def nvcc_version(text):
    """The full version in `nvcc --version` output (release 12.4, V12.4.131 -> 12.4.131), or none."""
    match = re.search(r"release [0-9.]+, V([0-9][0-9.]*)", text or "")
    return match.group(1) if match else NONE


def parse_gpus(text):
    """nvidia-smi --query-gpu=index,name,memory.total,driver_version,mig.mode.current csv lines."""
    gpus = []
    for line in (text or "").splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 5 or not fields[0].isdigit():
            continue
        memory = fields[2].split()[0]
        gpus.append({"index": int(fields[0]), "name": fields[1], "memory_mib": int(memory) if memory.isdigit() else memory,
                     "driver": fields[3], "mig": fields[4]})
    return gpus


def run(module, argv):
    """stdout of argv, or None when the program is missing or fails."""
    if not shutil.which(argv[0]) and not os.path.exists(argv[0]):
        return None
    rc, out, _err = module.run_command(argv)
    return out if rc == 0 else None


def system_nccl(module):
    out = run(module, ["dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", "libnccl2"])
    if out and out.startswith("installed "):
        return out.split(" ", 1)[1].strip()
    out = run(module, ["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", "libnccl"])
    return out.strip() if out else NONE


def read(module, venv, runner=(), packages=(), requirements=(), distributions=False):
    """The node's stack: ``versions`` (driver, cuda_toolkit, nccl_system, then the venv's python, torch,
    torch_cuda, torch_nccl, lightning and each of ``packages``), ``driver_installed``, ``gpus``,
    ``requirements_missing`` (each of ``requirements`` the venv does not satisfy) and, when asked,
    ``distributions``. Fails the module, naming the venv, when the venv (or its image) cannot report."""
    versions = {}
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as handle:
            versions["driver"] = driver_version(handle.read())
    except OSError:
        versions["driver"] = NONE
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)
    versions["cuda_toolkit"] = nvcc_version(run(module, [nvcc, "--version"])) if nvcc else NONE
    versions["nccl_system"] = system_nccl(module)
    python = os.path.join(venv, "bin", "python") if venv else None
    found = dict.fromkeys(VENV_KEYS, NONE)
    runner = list(runner)
    if python and (runner or os.path.exists(python)):
        out = run(module, runner + [python, "-c", VENV_PROBE, probe_args(packages, requirements, distributions)])
        if out is None:
            where = " in %s" % runner[-1] if runner else ""
            module.fail_json(msg="%s%s could not report its packages; is the venv broken%s?" % (python, where, " or the image missing" if runner else ""))
        found.update(json.loads(out))
    elif requirements:
        found["requirements_missing"] = ["%s (no venv at %s)" % (text, venv) for text in requirements]
    extra = {"requirements_missing": found.pop("requirements_missing", [])}
    if distributions:
        extra["distributions"] = found.pop("distributions", {})
    for name in VENV_KEYS:
        versions[name] = found.pop(name)
    versions.update(found)
    smi = run(module, ["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version,mig.mode.current",
                       "--format=csv,noheader,nounits"])
    gpus = parse_gpus(smi)
    if versions["driver"] == NONE and gpus:
        # No /proc/driver/nvidia/version (a container's /proc): the loaded driver as NVML reports it.
        versions["driver"] = gpus[0]["driver"]
    installed = run(module, ["modinfo", "-F", "version", "nvidia"])
    return dict(versions=versions, driver_installed=(installed or "").strip() or NONE, gpus=gpus, **extra)


def writable_by_others(path: str) -> dict | None:
    """The first of ``path`` and the folders above it that an account other than root can change (its
    owner is not root, or group or others may write it without the sticky bit), else None; ``path``
    itself may be missing (what root would create there). Links are followed as root would."""
    here = os.path.realpath(path)
    while True:
        try:
            info = os.stat(here)
        except OSError:
            info = None
        if info is not None:
            loose = info.st_mode & 0o022 and not (stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX)
            if info.st_uid != 0 or loose:
                try:
                    owner = pwd.getpwuid(info.st_uid).pw_name
                except KeyError:
                    owner = str(info.st_uid)
                return {"path": here, "owner": owner, "mode": "%04o" % (info.st_mode & 0o7777)}
        if here == "/":
            return None
        here = os.path.dirname(here)


def venv_trust(venv: str) -> dict | None:
    """Where a Python environment root runs (the requirements check, py-spy) can be changed by another
    account: the environment's folder and those above it, its bin and lib folders, and the real
    interpreter; None when only root can change them."""
    places = [venv, os.path.join(venv, "bin"), os.path.join(venv, "lib")]
    places += sorted(glob.glob(os.path.join(venv, "lib", "python*", "site-packages")))
    places += [os.path.join(venv, "bin", name) for name in ("python", "py-spy", "torchrun") if os.path.lexists(os.path.join(venv, "bin", name))]
    for place in places:
        found = writable_by_others(place)
        if found:
            return found
    return None


def read_trusted(module, asked: dict) -> dict | None:
    """The venv's stack and missing requirements (module_utils.stack), every distribution listed; None
    where root would run a Python that another account can change (venv_trust), or no venv is named."""
    venv = asked.get("venv") or ""
    runner = list(asked.get("runner") or [])
    if not venv or (not runner and venv_trust(venv)):
        return None
    return read(module, venv, runner, requirements=list(asked.get("requirements") or []), distributions=True)
