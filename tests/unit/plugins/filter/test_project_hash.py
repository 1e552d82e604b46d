"""A project's hash (module_utils/project.py): the controller's filter and the node probe agree, and
any change in what the project holds - and only that - changes it."""

import os
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.project_hash import project_hash
from ansible_collections.onprem.torchrun.plugins.module_utils import project

ROOT = Path(__file__).resolve().parents[4]
EXCLUDES = yaml.safe_load((ROOT / "roles" / "torchrun" / "defaults" / "main.yml").read_text())["torchrun_project_excludes"]
SAMPLE = ROOT / "examples" / "project"


def make(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_sample_project_leaves_out_its_data():
    assert project.project_files(str(SAMPLE), EXCLUDES) == [
        "README.md", "configs/train.cfg", "requirements.txt", "trainer/__init__.py", "trainer/main.py", "trainer/model.py"]


def test_a_changed_added_or_removed_file_changes_the_hash_and_excluded_ones_do_not(tmp_path):
    root = make(tmp_path / "p", {"pkg/a.py": "a = 1\n", "pkg/b.py": "b = 2\n", "cfg.yaml": "x: 1\n"})
    first = project_hash(str(root), EXCLUDES)
    assert first == project_hash(str(root), EXCLUDES)
    make(root, {".git/HEAD": "ref\n", "pkg/__pycache__/a.cpython-311.pyc": "bytes", "data/shard0": "big", "checkpoints/last.ckpt": "w"})
    assert project_hash(str(root), EXCLUDES) == first  # what the copy leaves out does not count
    (root / "pkg" / "a.py").write_text("a = 2\n")
    changed = project_hash(str(root), EXCLUDES)
    assert changed != first
    make(root, {"pkg/c.py": ""})
    added = project_hash(str(root), EXCLUDES)
    assert added != changed
    (root / "pkg" / "c.py").unlink()
    assert project_hash(str(root), EXCLUDES) == changed
    # A file moved to another folder is another project, though every byte is the same.
    (root / "pkg" / "b.py").rename(root / "b.py")
    assert project_hash(str(root), EXCLUDES) != changed


def test_a_link_counts_by_its_target_and_is_not_followed(tmp_path):
    root = make(tmp_path / "p", {"main.py": "", "shared/util.py": "u = 1\n"})
    os.symlink("shared", root / "alias")
    assert project.project_files(str(root), EXCLUDES) == ["alias", "main.py", "shared/util.py"]
    before = project_hash(str(root), EXCLUDES)
    (root / "alias").unlink()
    os.symlink("main.py", root / "alias")
    assert project_hash(str(root), EXCLUDES) != before


def test_a_missing_folder_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="is not a folder on the controller"):
        project_hash("/nonexistent/project", EXCLUDES)
