"""installed_drift: the files of a job on a node that differ from what this run renders."""

import hashlib

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.installed_drift import installed_drift

FILES = [{"src": "job.env.j2", "dest": "/etc/torchrun/train.env", "group": "torchrun-train", "mode": "0640"},
         {"src": "torchrun.service.j2", "dest": "/etc/systemd/system/torchrun-train.service", "group": "root", "mode": "0644"}]
RENDERED = ["A=1\n", "[Service]\n"]


def node(content, owner="root", group="torchrun-train", mode="0640"):
    return {"exists": True, "sha1": hashlib.sha1(content.encode()).hexdigest(), "owner": owner, "group": group, "mode": mode}


def test_files_as_this_run_renders_them_do_not_differ():
    found = {FILES[0]["dest"]: node("A=1\n"), FILES[1]["dest"]: node("[Service]\n", group="root", mode="0644")}
    assert installed_drift(FILES, RENDERED, found) == []


@pytest.mark.parametrize("env", [node("A=2\n"), node("A=1\n", owner="alice"), node("A=1\n", group="root"),
                                 node("A=1\n", mode="0644"), {"exists": False}, None])
def test_content_owner_group_mode_or_a_missing_file_differ(env):
    found = {FILES[1]["dest"]: node("[Service]\n", group="root", mode="0644")}
    if env is not None:
        found[FILES[0]["dest"]] = env
    assert installed_drift(FILES, RENDERED, found) == ["/etc/torchrun/train.env"]


def test_both_files_named_in_order_and_a_mode_given_as_a_number_compares():
    assert installed_drift(FILES, RENDERED, {}) == [FILES[0]["dest"], FILES[1]["dest"]]
    files = [dict(FILES[0], mode=416)]  # 0o640 as YAML reads an unquoted 0640
    assert installed_drift(files, ["A=1\n"], {FILES[0]["dest"]: node("A=1\n")}) == []


def test_rendered_contents_that_do_not_match_the_files_are_refused():
    with pytest.raises(AnsibleFilterError, match="as many rendered"):
        installed_drift(FILES, ["A=1\n"], {})
