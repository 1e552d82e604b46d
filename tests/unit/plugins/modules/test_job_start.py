"""job_start: what it asks of systemd, the start limit reset, and the run's environment file written safely."""

import os

import pytest
from ansible_collections.onprem.torchrun.plugins.modules import job_start


@pytest.mark.parametrize(("state", "sub_state", "restart", "asked"), [
    ("inactive", "dead", False, "start"),
    ("failed", "failed", True, "start"),  # nothing runs: a start, whatever the others run
    ("active", "running", False, "none"),
    ("active", "running", True, "restart"),  # another node runs older settings: every node restarts
    ("activating", "auto-restart", False, "restart"),  # a crash loop's waiting unit: start would leave it waiting
])
def test_what_is_asked_of_systemd(state, sub_state, restart, asked):
    assert job_start.verb({"state": state, "sub_state": sub_state}, restart) == asked


class Systemctl:
    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def run_command(self, argv):
        self.calls.append(argv)
        return self.answers.get(argv[1], (0, "", ""))

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs["msg"])


def test_the_start_limit_is_reset_before_the_start_and_a_failed_start_is_reported_not_raised():
    systemctl = Systemctl({"reset-failed": (1, "", "Unit torchrun-train.service not loaded."),
                           "start": (1, "", "Job for torchrun-train.service failed.")})
    assert job_start.start(systemctl, "torchrun-train.service", "start") == "Job for torchrun-train.service failed."
    assert [call[1] for call in systemctl.calls] == ["reset-failed", "start"]
    assert job_start.start(Systemctl({}), "torchrun-train.service", "restart") == ""
    with pytest.raises(AssertionError, match="reset-failed"):
        job_start.start(Systemctl({"reset-failed": (1, "", "Access denied")}), "torchrun-train.service", "start")


class Module:
    def __init__(self, check_mode=False):
        self.check_mode = check_mode


@pytest.mark.skipif(os.geteuid() != 0, reason="writes a root-owned file")
def test_the_run_env_is_written_once_as_roots_and_a_link_there_is_replaced_not_followed(tmp_path):
    path, target = tmp_path / "train.run.env", tmp_path / "elsewhere"
    target.write_text("keep\n")
    path.symlink_to(target)
    assert job_start.write_run_env(Module(check_mode=True), str(path), "TORCHRUN_RDZV_ID=a\n")  # would change
    assert path.is_symlink()  # check mode writes nothing
    assert job_start.write_run_env(Module(), str(path), "TORCHRUN_RDZV_ID=a\n")
    assert not path.is_symlink() and path.read_text() == "TORCHRUN_RDZV_ID=a\n" and target.read_text() == "keep\n"
    assert oct(path.stat().st_mode & 0o777) == "0o644" and path.stat().st_uid == 0
    assert not job_start.write_run_env(Module(), str(path), "TORCHRUN_RDZV_ID=a\n")  # the same: no change


def test_the_lock_of_a_job_is_its_folder_and_a_name_that_is_no_jobs_is_refused():
    from ansible_collections.onprem.torchrun.plugins.module_utils import launch_lock
    assert launch_lock.lock_path("train") == "/run/torchrun/locks/train"
    for name in ("", ".", "..", "a/b", "../etc"):
        with pytest.raises(ValueError, match="is not a job name"):
            launch_lock.lock_path(name)
