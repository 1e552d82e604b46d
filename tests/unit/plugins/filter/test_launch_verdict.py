"""launch_verdict: every outcome of a launch - stale settings, not started, gone, waited, auto-restart, ended well."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.launch_verdict import FilterModule, launch_verdict

HOSTS = ["node1", "node2", "node3"]
RUNNING = {"state": "active", "sub_state": "running", "result": "success", "finished": False}


def unit(**changes):
    return dict(RUNNING, **changes)


def verdict(before=None, started=None, join=None, timeout=600):
    hostvars = {h: {} for h in HOSTS}
    for name, values in (("__preflight_node", before), ("__job_started", started), ("__job_join", join)):
        for host, value in (values or {}).items():
            hostvars[host][name] = {"job": value} if name == "__preflight_node" and not value.get("skipped") else value
    return launch_verdict(HOSTS, hostvars, join_timeout=timeout)


def test_every_rank_joined_is_no_failure():
    joined = {h: unit(workers=2) for h in HOSTS}
    out = verdict(before={h: unit(stale=False) for h in HOSTS}, started={h: unit() for h in HOSTS}, join=joined)
    assert out == {"stale": [], "not_started": [], "joining": HOSTS, "waited": [], "gone": [], "not_joined": [], "failed": False, "message": "",
                   "lock_released": False}


def test_the_master_s_start_that_gave_the_lock_back_is_seen():
    started = {h: unit(workers=2, lock_released=h == "node1") for h in HOSTS}
    out = verdict(started=started)
    assert out["lock_released"] is True and out["joining"] == [] and not out["failed"]


def test_a_node_with_older_settings_is_stale():
    assert verdict(before={"node1": unit(stale=False), "node2": unit(stale=True), "node3": {"skipped": True, "stale": True}})["stale"] == ["node2"]


def test_a_unit_that_failed_to_start_or_waits_to_restart_did_not_start_and_no_join_is_read():
    started = {"node1": unit(), "node2": unit(state="failed", sub_state="failed", result="exit-code", finished=True),
               "node3": unit(state="activating", sub_state="auto-restart")}
    out = verdict(started=started)
    assert out["not_started"] == ["node2", "node3"] and out["failed"]
    assert out["message"] == "node2 did not start; node3 did not start"


def test_a_node_that_never_joined_is_named_and_the_nodes_that_waited_for_it():
    join = {"node1": unit(workers=0), "node2": unit(state="inactive", sub_state="dead", result="success", finished=True, workers=0),
            "node3": unit(workers=0)}
    out = verdict(started={h: unit() for h in HOSTS}, join=join)
    assert out["gone"] == ["node2"] and out["waited"] == ["node1", "node3"] and out["not_joined"] == ["node2"]
    # A stop reads as success: while others waited, the gone node is why, however its unit ended.
    assert out["message"] == "node2 never joined (its unit ended: inactive/dead, result success); node1, node3 waited for it"


def test_nodes_that_waited_for_nobody_gone_did_not_join_within_the_timeout():
    out = verdict(started={h: unit() for h in HOSTS}, join={"node1": unit(workers=2), "node2": unit(workers=0), "node3": unit(workers=0)},
                  timeout=120)
    assert out["not_joined"] == out["waited"] == ["node2", "node3"] and out["gone"] == []
    assert out["message"] == "node2, node3 did not join within job_join_timeout=120 s"


def test_a_job_that_already_ended_well_counts_as_joined_and_one_that_failed_is_gone():
    done = unit(state="inactive", sub_state="dead", result="success", finished=True, workers=0)
    assert verdict(join={h: done for h in HOSTS})["failed"] is False
    failed = unit(state="failed", sub_state="failed", result="exit-code", finished=True, workers=0)
    out = verdict(join={"node1": done, "node2": failed, "node3": done})
    assert out["gone"] == out["not_joined"] == ["node2"]
    assert out["message"] == "node2 never joined (its unit ended: failed/failed, result exit-code)"


def test_a_unit_waiting_to_restart_after_the_wait_is_gone_not_waiting():
    restarting = unit(state="activating", sub_state="auto-restart", result="exit-code", workers=0)
    out = verdict(join={"node1": unit(workers=0), "node2": restarting, "node3": unit(workers=2)})
    assert out["waited"] == ["node1"] and out["gone"] == ["node2"]
    assert out["message"] == "node2 never joined (its unit ended: activating/auto-restart, result exit-code); node1 waited for it"


def test_two_gone_nodes_are_them():
    gone = unit(state="failed", sub_state="failed", result="signal", finished=True, workers=0)
    assert verdict(join={"node1": unit(workers=0), "node2": gone, "node3": gone})["message"].endswith("; node1 waited for them")


def test_steps_not_reached_or_skipped_count_in_none():
    assert verdict(started={h: {"skipped": True} for h in HOSTS}, join={h: {"skipped": True, "workers": 0} for h in HOSTS})["failed"] is False


def test_bad_input_is_refused():
    with pytest.raises(AnsibleFilterError, match="expects the play's hosts"):
        launch_verdict("node1", {})


def test_registered():
    assert FilterModule().filters()["launch_verdict"] is launch_verdict


def test_the_nodes_still_in_the_rendezvous_when_the_start_reported_are_joining():
    started = {"node1": unit(workers=2), "node2": unit(workers=0), "node3": unit(state="inactive", sub_state="dead", finished=True)}
    out = verdict(started=started)
    # node3's run already ended well: nothing to wait for; node2 is what the join wait is for.
    assert out["joining"] == ["node2"] and not out["failed"]
    assert verdict(started={h: unit(workers=1) for h in HOSTS})["joining"] == []
