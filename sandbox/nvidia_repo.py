"""An APT repository shaped like NVIDIA's CUDA repository for Debian 12, built from small stand-in
packages, so that the nvidia role really installs, pins, loads and reports a driver on the sandbox.

The layout and trust are NVIDIA's: a flat repository (``Suites: /``) at ``<base>/debian12/x86_64/``
with a signed ``InRelease`` and its key beside the packages as ``3bf863cc.pub``. The packages carry
NVIDIA's names, versions, dependencies and provides for two branches (580, 590): the driver
(``nvidia-driver-cuda``) with its open (``nvidia-kernel-open-dkms``) and proprietary
(``nvidia-kernel-dkms``) kernel module packages, ``nvidia-persistenced``, the fabric manager
(``nvidia-fabricmanager-580``, ``nvidia-fabricmanager`` from 590), the CUDA toolkit
(``cuda-toolkit-12-9``) and NCCL (``libnccl2``, ``libnccl-dev``). No NVIDIA binary is shipped:

- a module package "builds" (as DKMS does, for the running kernel) a file that ``modinfo`` reads as
  the module ``nvidia`` of its version, and records the version and flavour;
- the module becomes "loaded" at the node's next boot (a unit of the package), or at its first use
  when none is loaded (as nvidia-modprobe loads a freshly built module);
- ``nvidia-smi`` answers from the real H200 capture of the unit tests with the loaded version, or
  fails as the real one does (no driver loaded; driver/library version mismatch).

The sandbox's kernel is the host's, which no archive has headers for: the repository also carries
a stand-in ``linux-headers-<kernel>``, the one package NVIDIA's repository does not have.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "unit" / "fixtures" / "gpu_health" / "h200_vm.xml"
BRANCHES = {"580": "580.159.04", "590": "590.48.01"}
DISTRO = "debian12/x86_64"
KEY_NAME = "3bf863cc.pub"
TOOLKIT = ("12-9", "12.9.86-1")
NCCL = "2.27.7-1+cuda12.9"
STATE = "/usr/lib/sandbox-nvidia"

NVIDIA_SMI = r'''#!/usr/bin/python3
"""Stand-in nvidia-smi (onprem.torchrun sandbox): the H200 capture, with the loaded driver's version."""
import re, sys
STATE = "/usr/lib/sandbox-nvidia"

def read(path):
    try:
        with open(path) as handle:
            return handle.read().split()
    except OSError:
        return []

def load():
    """A freshly built module is loaded on first use when none is (nvidia-modprobe does that)."""
    import os
    if not read("/run/sandbox-nvidia/loaded") and read(STATE + "/module"):
        os.makedirs("/run/sandbox-nvidia", exist_ok=True)
        with open("/run/sandbox-nvidia/loaded", "w") as handle:
            handle.write(" ".join(read(STATE + "/module")) + "\n")

try:
    load()
except OSError:
    pass
loaded, library = read("/run/sandbox-nvidia/loaded"), read(STATE + "/userspace")
if not loaded:
    print("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.")
    sys.exit(9)
if library and library[0] != loaded[0]:
    print("Failed to initialize NVML: Driver/library version mismatch\nNVML library version: %s" % library[0])
    sys.exit(18)
xml = open(STATE + "/h200.xml").read()
xml = re.sub(r"<driver_version>[^<]*</driver_version>", "<driver_version>%s</driver_version>" % loaded[0], xml)
args = sys.argv[1:]
if "-q" in args and "-x" in args:
    sys.stdout.write(xml)
    sys.exit(0)
gpus = re.findall(r"<gpu id=\"([^\"]+)\">(.*?)</gpu>", xml, re.S)

def field(body, name, index):
    find = lambda tag: (re.search(r"<%s>([^<]*)</%s>" % (tag, tag), body) or [None, "[N/A]"])[1]
    total = re.search(r"<fb_memory_usage>\s*<total>(\d+) MiB</total>", body)
    return {"index": str(index), "name": find("product_name"), "uuid": find("uuid"), "driver_version": loaded[0],
            "memory.total": total.group(1) if total else "[N/A]", "mig.mode.current": find("current_mig"),
            "pci.bus_id": gpus[index][0]}.get(name, "[N/A]")

query = [a.split("=", 1)[1] for a in args if a.startswith("--query-gpu=")]
if query:
    for index, (_bus, body) in enumerate(gpus):
        print(", ".join(field(body, name, index) for name in query[0].split(",")))
    sys.exit(0)
if "-L" in args:
    for index, (_bus, body) in enumerate(gpus):
        print("GPU %d: %s (UUID: %s)" % (index, field(body, "name", index), field(body, "uuid", index)))
    sys.exit(0)
print("NVIDIA-SMI %s    Driver Version: %s    (sandbox stand-in; %d GPU)" % (library[0] if library else "?", loaded[0], len(gpus)))
'''

LOAD_UNIT = """[Unit]
Description=Load the NVIDIA kernel module built for this kernel (sandbox stand-in)
DefaultDependencies=no
Before=sysinit.target nvidia-persistenced.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /run/sandbox-nvidia && if [ -s %s/module ]; then cp %s/module /run/sandbox-nvidia/loaded; fi'
RemainAfterExit=yes

[Install]
WantedBy=sysinit.target
""" % (STATE, STATE)

PERSISTENCED_UNIT = """[Unit]
Description=NVIDIA Persistence Daemon (sandbox stand-in)
Wants=syslog.target

[Service]
Type=simple
ExecStart=/usr/bin/nvidia-persistenced

[Install]
WantedBy=multi-user.target
"""

PERSISTENCED = """#!/bin/sh
# Stand-in nvidia-persistenced: holds the GPUs (nvidia-smi answers), else fails as the real one does.
nvidia-smi -L >/dev/null || { echo "nvidia-persistenced failed to initialize: no NVIDIA driver" >&2; exit 1; }
exec sleep infinity
"""

FABRICMANAGER_UNIT = """[Unit]
Description=NVIDIA fabric manager service (sandbox stand-in)

[Service]
Type=simple
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""


def modinfo_object(version: str, flavour: str, workdir: Path) -> Path:
    """A relocatable ELF whose .modinfo names the module nvidia of version (what modinfo reads)."""
    info = workdir / "modinfo.bin"
    license_ = "Dual MIT/GPL" if flavour == "open" else "NVIDIA"
    info.write_bytes(("version=%s\0license=%s\0name=nvidia\0description=NVIDIA kernel module (sandbox stand-in, %s)\0"
                      % (version, license_, flavour)).encode())
    out = workdir / "nvidia.ko"
    subprocess.run(["objcopy", "-I", "binary", "-O", "elf64-x86-64", "-B", "i386:x86-64",
                    "--rename-section", ".data=.modinfo,alloc,load,readonly,data,contents", str(info), str(out)], check=True)
    return out


def build_deb(out: Path, name: str, version: str, files: dict[str, tuple[bytes, int]], control: dict[str, str],
              postinst: str = "", prerm: str = "") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pkg"
        for path, (data, mode) in files.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(mode)
        (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
        fields = {"Package": name, "Version": version, "Architecture": "amd64", "Maintainer": "onprem.torchrun sandbox <sandbox@invalid>",
                  "Section": "non-free/libs", "Priority": "optional", **control,
                  "Description": control.get("Description", "%s (onprem.torchrun sandbox stand-in)" % name)}
        (root / "DEBIAN" / "control").write_text("".join("%s: %s\n" % item for item in fields.items()))
        for script, text in (("postinst", postinst), ("prerm", prerm)):
            if text:
                (root / "DEBIAN" / script).write_text("#!/bin/sh\nset -e\n" + text)
                (root / "DEBIAN" / script).chmod(0o755)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out / ("%s_%s_amd64.deb" % (name, version)))],
                       check=True, capture_output=True)


def packages(out: Path, kernel: str) -> None:
    smi = NVIDIA_SMI.encode()
    xml = FIXTURE.read_bytes()
    build_deb(out, "linux-headers-" + kernel, "1sandbox", {"/usr/src/linux-headers-%s/.sandbox" % kernel: (b"stand-in\n", 0o644)},
              {"Description": "headers for the sandbox's kernel (stand-in; no archive has the host's)"})
    for branch, version in BRANCHES.items():
        deb = version + "-1"
        build_deb(out, "nvidia-driver-cuda", deb, {"/usr/bin/nvidia-smi": (smi, 0o755), STATE + "/h200.xml": (xml, 0o644),
                                                    STATE + "/userspace": (("%s\n" % version).encode(), 0o644)},
                  {"Depends": "nvidia-kernel-open-dkms (= {0}) | nvidia-kernel-dkms (= {0}), python3".format(deb),
                   "Provides": "nvidia-smi (= %s), libcuda1 (= %s), nvidia-driver-cuda-libs (= %s)" % (deb, deb, deb)})
        for flavour, name, other in (("open", "nvidia-kernel-open-dkms", "nvidia-kernel-dkms"),
                                     ("proprietary", "nvidia-kernel-dkms", "nvidia-kernel-open-dkms")):
            with tempfile.TemporaryDirectory() as tmp:
                module = modinfo_object(version, flavour, Path(tmp)).read_bytes()
            # What DKMS does at install: the module built for the running kernel, then depmod.
            build_deb(out, name, deb, {STATE + "/nvidia-%s.ko" % flavour: (module, 0o644),
                                       "/lib/systemd/system/sandbox-nvidia-load.service": (LOAD_UNIT.encode(), 0o644)},
                      {"Depends": "kmod",
                       "Conflicts": other, "Replaces": other,
                       "Provides": "nvidia-kernel-dkms-any (= %s), nvidia-kernel-%s" % (deb, version)},
                      postinst=("k=$(uname -r)\nmkdir -p /lib/modules/$k/updates/dkms\n"
                                "cp %s/nvidia-%s.ko /lib/modules/$k/updates/dkms/nvidia.ko\ndepmod -a $k\n"
                                "echo '%s %s' > %s/module\n"
                                "mkdir -p /etc/systemd/system/sysinit.target.wants\n"
                                "ln -sf /lib/systemd/system/sandbox-nvidia-load.service /etc/systemd/system/sysinit.target.wants/\n")
                      % (STATE, flavour, version, flavour, STATE),
                      prerm="k=$(uname -r)\nrm -f /lib/modules/$k/updates/dkms/nvidia.ko %s/module "
                            "/etc/systemd/system/sysinit.target.wants/sandbox-nvidia-load.service\n" % STATE)
        build_deb(out, "nvidia-persistenced", deb, {"/usr/bin/nvidia-persistenced": (PERSISTENCED.encode(), 0o755),
                                                    "/lib/systemd/system/nvidia-persistenced.service": (PERSISTENCED_UNIT.encode(), 0o644)},
                  {"Depends": "nvidia-driver-cuda (= %s)" % deb})
        fm = "nvidia-fabricmanager-%s" % branch if int(branch) < 590 else "nvidia-fabricmanager"
        build_deb(out, fm, deb, {"/lib/systemd/system/nvidia-fabricmanager.service": (FABRICMANAGER_UNIT.encode(), 0o644)},
                  {"Depends": "nvidia-kernel-dkms-any (= %s)" % deb, "Provides": "nvidia-fabricmanager-any (= %s)" % deb})
    nvcc = "#!/bin/sh\necho 'nvcc: NVIDIA (R) Cuda compiler driver (sandbox stand-in)'\necho 'Cuda compilation tools, release 12.9, V12.9.86'\n"
    build_deb(out, "cuda-toolkit-" + TOOLKIT[0], TOOLKIT[1], {"/usr/local/cuda-12.9/bin/nvcc": (nvcc.encode(), 0o755)},
              {}, postinst="ln -sfn /usr/local/cuda-12.9 /usr/local/cuda\n")
    build_deb(out, "libnccl2", NCCL, {"/usr/lib/x86_64-linux-gnu/libnccl.so.2.27.7": (b"stand-in\n", 0o644)}, {})
    build_deb(out, "libnccl-dev", NCCL, {"/usr/include/nccl.h": (b"/* stand-in */\n", 0o644)}, {"Depends": "libnccl2 (= %s)" % NCCL})


def ensure_key(home: Path) -> Path:
    """The sandbox's signing key (made once), exported as NVIDIA names theirs."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = dict(os.environ, GNUPGHOME=str(home))
    listed = subprocess.run(["gpg", "--batch", "--list-secret-keys", "--with-colons"], env=env, capture_output=True, text=True)
    if "sec:" not in listed.stdout:
        subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-generate-key",
                        "onprem.torchrun sandbox CUDA repository <sandbox@invalid>", "ed25519", "sign", "never"],
                       env=env, check=True, capture_output=True)
    public = home / KEY_NAME
    public.write_text(subprocess.run(["gpg", "--batch", "--armor", "--export"], env=env, check=True, capture_output=True, text=True).stdout)
    return public


def release(folder: Path) -> str:
    lines = ["Origin: NVIDIA", "Label: NVIDIA CUDA (onprem.torchrun sandbox)", "Architecture: amd64", "Date: Thu, 03 Dec 2026 00:00:00 UTC"]
    for label, algo in (("MD5Sum", hashlib.md5), ("SHA256", hashlib.sha256)):
        lines.append(label + ":")
        for name in ("Packages", "Packages.gz"):
            data = (folder / name).read_bytes()
            lines.append(" %s %d %s" % (algo(data).hexdigest(), len(data), name))
    return "\n".join(lines) + "\n"


def build(base: Path, key_home: Path, kernel: str | None = None) -> Path:
    """The repository under base/debian12/x86_64 (rebuilt from scratch); returns that folder."""
    folder = base / DISTRO
    shutil.rmtree(base, ignore_errors=True)
    folder.mkdir(parents=True)
    packages(folder, kernel or os.uname().release)
    index = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=folder, check=True, capture_output=True).stdout
    (folder / "Packages").write_bytes(index)
    (folder / "Packages.gz").write_bytes(gzip.compress(index, mtime=0))
    (folder / "Release").write_text(release(folder))
    env = dict(os.environ, GNUPGHOME=str(key_home))
    public = ensure_key(key_home)
    subprocess.run(["gpg", "--batch", "--yes", "--clearsign", "-o", str(folder / "InRelease"), str(folder / "Release")],
                   env=env, check=True, capture_output=True)
    shutil.copy(public, folder / KEY_NAME)
    return folder
