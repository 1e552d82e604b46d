"""The sandbox's training image archive (sandbox/container_image.py): the docker-archive layout podman load reads."""

import hashlib
import io
import json
import tarfile

import container_image


def test_the_archive_holds_one_layer_its_config_and_a_manifest_naming_the_image(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "opt" / "torchrun" / "venv" / "bin").mkdir(parents=True)
    (rootfs / "opt" / "torchrun" / "venv" / "bin" / "torchrun").write_text("#!/opt/torchrun/venv/bin/python\n")
    dest = tmp_path / "image.tar"
    image_id = container_image.write_archive(rootfs, dest, tmp_path)
    with tarfile.open(dest) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        assert manifest == [{"Config": image_id + ".json", "RepoTags": ["localhost/torchrun-sandbox:1"],
                             "Layers": [manifest[0]["Layers"][0]]}]
        blob = archive.extractfile(image_id + ".json").read()
        layer = archive.extractfile(manifest[0]["Layers"][0]).read()
    # The image's id is its config's digest; the config names the layer by its digest.
    assert hashlib.sha256(blob).hexdigest() == image_id
    config = json.loads(blob)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert manifest[0]["Layers"][0] == hashlib.sha256(layer).hexdigest() + "/layer.tar"
    assert config["config"]["Env"][0].startswith("PATH=/opt/torchrun/venv/bin:")
    with tarfile.open(fileobj=io.BytesIO(layer)) as files:
        assert "opt/torchrun/venv/bin/torchrun" in files.getnames()
    assert not (tmp_path / "layer.tar").exists() and not dest.with_suffix(".tmp").exists()


def test_the_same_tree_gives_the_same_image_id(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hostname").write_text("x\n")
    first = container_image.write_archive(rootfs, tmp_path / "a.tar", tmp_path)
    assert container_image.write_archive(rootfs, tmp_path / "b.tar", tmp_path) == first


def test_requirements_and_recipe(tmp_path):
    req = tmp_path / "req.txt"
    req.write_text("# wheels\ntorch==2.13.0\n\nlightning==2.6.6  # pinned\n")
    assert container_image.requirements(req) == ["torch==2.13.0", "lightning==2.6.6"]
    base = container_image.recipe("base1", ["a.whl", "b.whl"], ["torch==2.13.0"])
    assert base == container_image.recipe("base1", ["b.whl", "a.whl"], ["torch==2.13.0"])  # the wheels' order does not matter
    assert base != container_image.recipe("base2", ["a.whl", "b.whl"], ["torch==2.13.0"])
    assert base != container_image.recipe("base1", ["a.whl"], ["torch==2.13.0"])
    assert base != container_image.recipe("base1", ["a.whl", "b.whl"], ["torch==2.12.0"])
