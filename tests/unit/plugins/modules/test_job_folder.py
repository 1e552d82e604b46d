"""The job_folder module run as Ansible runs it, as root working as another user (nobody stands in for a
job's user): folders made with that user's rights, cleared but the checkpoints, removed, links and
folders the user cannot write refused, check mode changing nothing."""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[4] / "collections"  # ansible_collections.onprem.torchrun is a link to the checkout
USER = "nobody"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the module runs as root and becomes the user")


def run(tmp_path, check=False, diff=False, **args):
    path = tmp_path / ("args-%d.json" % len(list(tmp_path.glob("args-*.json"))))
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff)}))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.onprem.torchrun.plugins.modules.job_folder", str(path)],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(COLLECTIONS)), check=False, timeout=60)
    return json.loads(proc.stdout)


@pytest.fixture
def base():
    """A folder the user can reach (pytest's own are root's alone, 0700), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="job-folder-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def shared(base):
    """A folder every user may write in, as a site's shared storage is (1777)."""
    folder = base / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    return folder


def test_folders_are_made_by_the_user_with_the_mode_and_a_second_run_changes_nothing(tmp_path, shared):
    paths = [str(shared / "train"), str(shared / "train" / "checkpoints")]
    checked = run(tmp_path, check=True, paths=paths, user=USER)
    assert checked["changed"] and checked["made"] == paths and not (shared / "train").exists()
    first = run(tmp_path, paths=paths, user=USER)
    assert first["changed"] and first["made"] == paths, first
    uid = pwd.getpwnam(USER).pw_uid
    for path in paths:
        info = os.lstat(path)
        assert info.st_uid == uid and oct(info.st_mode & 0o7777) == "0o750"
    again = run(tmp_path, paths=paths, user=USER)
    assert again["changed"] is False and again["made"] == again["moded"] == []
    os.chmod(paths[0], 0o755)
    fixed = run(tmp_path, paths=paths, user=USER, diff=True)
    assert fixed["changed"] and fixed["moded"] == [paths[0]] and oct(os.lstat(paths[0]).st_mode & 0o777) == "0o750"
    assert "%s mode 0750" % paths[0] in fixed["diff"]["after"]


def test_cleared_keeps_the_checkpoints_and_absent_removes_the_folder(tmp_path, shared):
    job = shared / "train"
    run(tmp_path, paths=[str(job), str(job / "checkpoints"), str(job / "cache")], user=USER)
    # What the job wrote (made as the user: root's own files there would not be the user's to remove).
    subprocess.run(["setpriv", "--reuid=%s" % USER, "--regid=nogroup", "--clear-groups", "sh", "-c",
                    "echo w > %s/checkpoints/last.ckpt && echo x > %s/cache/x && echo y > %s/.tokens && ln -s /etc %s/etc-link"
                    % (job, job, job, job)], check=True)
    checked = run(tmp_path, check=True, paths=[str(job)], user=USER, state="cleared", keep=["checkpoints"])
    assert checked["changed"] and sorted(checked["removed"]) == sorted(str(job / n) for n in (".tokens", "cache", "etc-link"))
    assert (job / "cache" / "x").exists()
    cleared = run(tmp_path, paths=[str(job)], user=USER, state="cleared", keep=["checkpoints"])
    assert cleared["changed"] and sorted(os.listdir(job)) == ["checkpoints"] and Path("/etc/passwd").exists()
    assert run(tmp_path, paths=[str(job)], user=USER, state="cleared", keep=["checkpoints"])["changed"] is False
    gone = run(tmp_path, paths=[str(job)], user=USER, state="absent")
    assert gone["changed"] and gone["removed"] == [str(job)] and not job.exists()
    assert run(tmp_path, paths=[str(job)], user=USER, state="absent")["changed"] is False


def test_a_link_in_place_of_a_folder_is_refused_and_nothing_is_followed(tmp_path, shared):
    (shared / "train").symlink_to("/etc")
    for state in ("directory", "cleared", "absent"):
        result = run(tmp_path, paths=[str(shared / "train")], user=USER, state=state)
        assert result["failed"] and "%s is a link, not a folder" % (shared / "train") in result["msg"], result
    assert Path("/etc/passwd").exists()


def test_what_the_user_may_not_write_is_refused_with_the_reason_as_root_would_not_be(tmp_path, base):
    closed = base / "closed"
    closed.mkdir(mode=0o755)  # root's: root could make a folder here, the user cannot
    result = run(tmp_path, paths=[str(closed / "train")], user=USER)
    assert result["failed"] and result["msg"] == "as nobody: %s: Permission denied" % (closed / "train"), result
    assert not (closed / "train").exists()


def test_bad_input_is_refused_before_anything_is_done(tmp_path):
    assert "does not exist on this node" in run(tmp_path, paths=[str(tmp_path / "x")], user="no-such-user-here")["msg"]
    assert "must be absolute folders" in run(tmp_path, paths=["relative/x"], user=USER)["msg"]
    assert "is not an octal mode" in run(tmp_path, paths=[str(tmp_path / "x")], user=USER, mode="rwx")["msg"]
