"""What node_probe reports of the files a launch compares: hash, owner, mode; links and folders are no files."""

import grp
import hashlib
import os
import pwd

from ansible_collections.onprem.torchrun.plugins.module_utils import installed


def test_a_file_is_reported_with_its_hash_owner_and_mode_and_a_link_or_folder_as_missing(tmp_path):
    unit = tmp_path / "torchrun-train.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    unit.chmod(0o640)
    (tmp_path / "planted").symlink_to(unit)
    facts = installed.file_facts([str(unit), str(tmp_path / "planted"), str(tmp_path), str(tmp_path / "gone")])
    assert facts[str(unit)] == {"exists": True, "sha1": hashlib.sha1(unit.read_bytes()).hexdigest(), "mode": "0640",
                                "owner": pwd.getpwuid(os.getuid())[0], "group": grp.getgrgid(os.getgid())[0]}
    assert facts[str(tmp_path / "planted")] == {"exists": False}  # never read through
    assert facts[str(tmp_path)] == {"exists": False}
    assert facts[str(tmp_path / "gone")] == {"exists": False}
