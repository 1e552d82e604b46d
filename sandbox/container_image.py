"""The sandbox's training image: what a site's PyTorch image is to a real cluster (issue 30).

Built on this machine from the sandbox's own parts, nothing from a registry: a copy of the nodes'
Debian 12 image with a venv at the collection's default ``torchrun_venv`` filled from the
wheelhouse (``sandbox/wheelhouse.txt``, no index), written as a ``docker-archive`` (the format of
``podman save`` and ``docker save``: ``manifest.json``, the image's config and one layer) that
``torchrun_image_archive`` ships to the nodes. The image's id is its config's digest, the same on
every node that loads it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

VENV = "/opt/torchrun/venv"  # the collection's default torchrun_venv
NAME = "localhost/torchrun-sandbox"
TAG = "1"


def reference() -> str:
    """The image's name as torchrun_image gives it."""
    return "%s:%s" % (NAME, TAG)


def requirements(path: Path) -> list[str]:
    """The requirement lines of a requirements file (comments and blanks left out)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def recipe(base_stamp: str, wheel_names: list[str], wanted: list[str]) -> str:
    """What the image is made of: a new base image, other wheels or other requirements make a new one."""
    return hashlib.sha256(json.dumps({"base": base_stamp, "wheels": sorted(wheel_names), "req": wanted, "venv": VENV, "v": 1},
                                     sort_keys=True).encode()).hexdigest()


def config(layer_digest: str, created: str = "1970-01-01T00:00:00Z") -> dict:
    """The image's OCI/docker config: one layer, the venv's bin first on PATH, a plain user's defaults."""
    return {
        "architecture": "amd64", "os": "linux", "created": created,
        "config": {"Env": ["PATH=%s/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" % VENV, "LANG=C.UTF-8"],
                   "Cmd": ["%s/bin/torchrun" % VENV, "--help"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
        "history": [{"created": created, "created_by": "sandbox/container_image.py"}],
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def write_archive(rootfs: Path, dest: Path, work: Path) -> str:
    """rootfs as a docker-archive at dest; returns the image id (the config's sha256)."""
    layer = work / "layer.tar"
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    layer_digest = _sha256(layer)
    blob = json.dumps(config(layer_digest), sort_keys=True).encode()
    image_id = hashlib.sha256(blob).hexdigest()
    manifest = [{"Config": image_id + ".json", "RepoTags": [reference()], "Layers": [layer_digest + "/layer.tar"]}]
    tmp = dest.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as out:
        _add_bytes(out, image_id + ".json", blob)
        out.add(layer, arcname=layer_digest + "/layer.tar")
        _add_bytes(out, "manifest.json", json.dumps(manifest).encode())
    layer.unlink()
    tmp.rename(dest)
    return image_id


def build(base: Path, wheels: Path, wanted: list[str], dest: Path, log=print) -> str:
    """The image archive at dest (built again only when its recipe changed); returns the image id."""
    stamp = dest.with_name(dest.name + ".recipe")
    base_stamp = (base / ".sandbox-recipe").read_text().strip() if (base / ".sandbox-recipe").is_file() else ""
    want = recipe(base_stamp, [p.name for p in wheels.glob("*.whl")], wanted)
    if dest.is_file() and stamp.is_file() and json.loads(stamp.read_text())["recipe"] == want:
        return json.loads(stamp.read_text())["id"]
    work = dest.parent / "container.tmp"
    if work.exists():
        shutil.rmtree(work)
    rootfs = work / "rootfs"
    work.mkdir(parents=True)
    log("building the training image (the node image, a venv from the wheelhouse; once, about two minutes)")
    subprocess.run(["cp", "-a", str(base), str(rootfs)], check=True)
    (rootfs / ".sandbox-recipe").unlink(missing_ok=True)
    # pip itself comes from this machine's own pip (pure Python), read from the copy inside the image.
    import pip  # pylint: disable=import-outside-toplevel

    shutil.copytree(Path(pip.__file__).parent, rootfs / "tmp" / "pipsrc" / "pip")
    shutil.copytree(wheels, rootfs / "tmp" / "wheels")
    subprocess.run(["chroot", str(rootfs), "python3", "-m", "venv", "--without-pip", VENV], check=True)
    subprocess.run(["chroot", str(rootfs), "env", "PYTHONPATH=/tmp/pipsrc", "%s/bin/python" % VENV, "-m", "pip", "install",
                    "--quiet", "--no-index", "--find-links", "/tmp/wheels", "--no-compile", "--disable-pip-version-check"] + wanted,
                   check=True, env=dict({k: v for k, v in os.environ.items() if not k.startswith("PIP_")}, PIP_CONFIG_FILE="/dev/null"))
    shutil.rmtree(rootfs / "tmp" / "pipsrc")
    shutil.rmtree(rootfs / "tmp" / "wheels")
    image_id = write_archive(rootfs, dest, work)
    shutil.rmtree(work)
    stamp.write_text(json.dumps({"recipe": want, "id": image_id}))
    log("training image %s (id %s) in %s" % (reference(), image_id[:12], dest))
    return image_id
