"""Naming the rank a hung job waits for: py-spy dumps in the format py-spy prints, and flight
recorder dumps shaped as PyTorch writes them (a pickled dict of entries), read as plain data only."""

import base64
import os
import pickle
from pathlib import Path

import pytest
from ansible_collections.onprem.torchrun.plugins.filter.hang_report import hang_report
from ansible_collections.onprem.torchrun.plugins.module_utils import hang

WAITING = '''Process 4242: /opt/torchrun/venv/bin/python3 -u /opt/torchrun/jobs/train/lightning_synthetic.py --epochs 300
Python v3.11.2 (/usr/bin/python3.11)

Thread 4242 (idle): "MainThread"
    all_reduce (torch/distributed/distributed_c10d.py:2806)
    wrapper (torch/distributed/c10d_logger.py:81)
    reduce (lightning/pytorch/strategies/ddp.py:330)
    training_step (lightning_synthetic.py:98)
    run (lightning/pytorch/loops/fit_loop.py:216)
    <module> (lightning_synthetic.py:170)
Thread 4260 (idle): "Thread-2 (_pin_memory_loop)"
    wait (threading.py:331)
'''
SLEEPING = '''Process 4301: /opt/torchrun/venv/bin/python3 -u /opt/torchrun/jobs/train/lightning_synthetic.py --epochs 300
Python v3.11.2 (/usr/bin/python3.11)

Thread 4301 (idle): "MainThread"
    on_train_epoch_end (/opt/torchrun/jobs/train/lightning_synthetic.py:159)
    _call_callback_hooks (/opt/torchrun/venv/lib/python3.11/site-packages/lightning/pytorch/trainer/call.py:227)
    <module> (/opt/torchrun/jobs/train/lightning_synthetic.py:170)
'''
BACKWARD = '''Thread 77 (active): "MainThread"
    _engine_run_backward (torch/autograd/graph.py:823)
    backward (torch/autograd/__init__.py:347)
    main (train.py:61)
'''


def test_where_each_worker_is():
    assert hang.where(WAITING) == {"state": "collective", "at": "all_reduce"}
    assert hang.where(SLEEPING) == {"state": "code", "at": "lightning_synthetic.py:159 in on_train_epoch_end"}
    assert hang.where(BACKWARD) == {"state": "backward", "at": "backward (DDP's gradient all_reduce)"}
    assert hang.where("Error: Failed to suspend process\n")["state"] == "unknown"


def test_the_rank_outside_the_collective_is_named():
    lines = hang.from_stacks({0: ("node1", WAITING), 1: ("node1", WAITING), 2: ("node2", SLEEPING), 3: ("node2", WAITING)})
    assert lines[0] == ("rank 2 (node2) is the one the others wait for: at lightning_synthetic.py:159 in on_train_epoch_end; "
                        "ranks 0, 1, 3 wait in all_reduce")
    assert lines[1:] == ["rank 0 (node1): all_reduce", "rank 1 (node1): all_reduce",
                         "rank 2 (node2): lightning_synthetic.py:159 in on_train_epoch_end", "rank 3 (node2): all_reduce"]


def test_everyone_waiting_and_nobody_waiting_are_said_plainly():
    assert hang.from_stacks({0: ("n1", WAITING), 1: ("n2", WAITING)})[0].startswith("every rank waits in a collective (all_reduce)")
    assert hang.from_stacks({0: ("n1", SLEEPING)})[0] == "no rank waits in a collective: the job is busy, not hung"


def dump(*entries):
    return {"version": "2.4", "pg_config": {}, "entries": [
        {"record_id": i, "pg_id": pg, "collective_seq_id": seq, "profiling_name": name, "state": state}
        for i, (pg, seq, name, state) in enumerate(entries)]}


def test_the_flight_records_name_the_rank_behind_and_the_collective():
    dumps = {0: ("node1", dump((0, 41, "nccl:all_reduce", "completed"), (0, 42, "nccl:all_reduce", "started"))),
             1: ("node2", dump((0, 41, "nccl:all_reduce", "completed"))),
             2: ("node2", dump((0, 42, "nccl:all_reduce", "started")))}
    assert hang.from_flight(dumps) == [
        "process group 0: rank 1 (node2) is the one the others wait for: its last collective is #41 nccl:all_reduce (completed), "
        "the others are in #42 nccl:all_reduce"]


def test_a_dump_that_holds_objects_is_refused():
    class Planted:
        def __reduce__(self):
            return (print, ("owned",))
    with pytest.raises(pickle.UnpicklingError):
        hang.load_flight(pickle.dumps(Planted()))
    assert hang.load_flight(pickle.dumps(dump((0, 1, "nccl:barrier", "started")))) == dump((0, 1, "nccl:barrier", "started"))


def test_the_filter_reads_what_the_playbook_registered():
    stacks = {"node1": {"results": [{"item": {"pid": 10, "rank": 0}, "stdout": WAITING, "stderr": ""}]},
              "node2": {"results": [{"item": {"pid": 20, "rank": 1}, "stdout": SLEEPING, "stderr": ""}]}}
    flight = {"node1": {"results": [{"item": {"path": "/var/lib/torchrun/train/nccl_trace_rank_0"},
                                     "content": base64.b64encode(pickle.dumps(dump((0, 7, "nccl:all_reduce", "started")))).decode()}]},
              "node2": {"results": [{"item": {"path": "/var/lib/torchrun/train/nccl_trace_rank_1"},
                                     "content": base64.b64encode(b"not a pickle").decode()}]}}
    lines = hang_report(stacks, flight)
    assert lines[0].startswith("rank 1 (node2) is the one the others wait for: at lightning_synthetic.py:159")
    assert any(line.startswith("node2: /var/lib/torchrun/train/nccl_trace_rank_1 is not a flight record") for line in lines)
    assert lines[-1] == "only rank 0 left a flight record: nothing to compare it with"
    assert hang_report({"node1": {"results": []}}) == ["no worker runs on any node: the job is not running"]


def test_a_real_flight_record_reads_as_plain_data_and_a_rank_behind_is_named():
    # Written by torch 2.13's flight recorder (_dump_fr_trace) after three all_reduce and a barrier
    # on gloo, TORCH_FR_BUFFER_SIZE=2000: the dump's own shape, not one made up for the test.
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "flight", "gloo_rank0.pkl"), "rb") as handle:
        record = hang.load_flight(handle.read())
    assert [(e["pg_id"], e["collective_seq_id"], e["profiling_name"]) for e in record["entries"]] == [
        (0, 1, "gloo:all_reduce"), (0, 2, "gloo:all_reduce"), (0, 3, "gloo:all_reduce"), (0, 4, "gloo:barrier")]
    behind = dict(record, entries=record["entries"][:3])
    assert hang.from_flight({0: ("node1", record), 1: ("node1", record), 2: ("node2", behind)}) == [
        "process group 0: rank 2 (node2) is the one the others wait for: its last collective is #3 gloo:all_reduce (scheduled), "
        "the others are in #4 gloo:barrier"]


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "flight"
# What torch 2.13's analyser printed over the two gloo records of tests/unit/fixtures/flight
# (gloo_2ranks_rank0.pkl, gloo_2ranks_rank1.pkl: three all_reduce and a barrier on two ranks), run
# as stacks.yml runs it: it fails on gloo's records in build_collectives.
FR_TRACE_ON_GLOO = {"rc": 1, "stdout": "", "stderr": (
    "/venv/lib/python3.11/site-packages/torch/_subclasses/functional_tensor.py:368: UserWarning: Failed to initialize NumPy\n"
    "tabulate is not installed. Proceeding without it.\nTraceback (most recent call last):\n"
    "    pg_name = _pg_guids[(original_pg_name, first_rank)]\nKeyError: ('0', 0)\n")}


def registered_dumps(*names):
    return {"node%d" % (i + 1): {"results": [{"item": {"path": "/var/lib/torchrun/train/nccl_trace_rank_%d" % i},
                                              "content": base64.b64encode((FIXTURES / name).read_bytes()).decode()}]}
            for i, name in enumerate(names)}


def test_torchs_analyser_stands_for_the_records_where_it_ran_and_ours_reads_them_where_not():
    stacks = {"node1": {"results": [{"item": {"pid": 10, "rank": 0}, "stdout": WAITING, "stderr": ""}]},
              "node2": {"results": [{"item": {"pid": 20, "rank": 1}, "stdout": SLEEPING, "stderr": ""}]}}
    flight = registered_dumps("gloo_2ranks_rank0.pkl", "gloo_2ranks_rank1.pkl")
    ours = hang_report(stacks, flight)
    # It failed (gloo's records): ours reads them, and says so first.
    failed = hang_report(stacks, flight, analyser=FR_TRACE_ON_GLOO, analyser_where="node1 as torchrun-train")
    assert failed[0] == ("flight records: torch's analyser (torch.distributed.flight_recorder.fr_trace) on node1 as torchrun-train "
                         "failed on them (KeyError: ('0', 0)); read by onprem.torchrun.hang_report instead")
    assert failed[1:] == ours
    missing = hang_report(stacks, flight, analyser={"rc": 3, "stdout": "", "stderr": ""})
    assert missing[0].startswith("flight records: the venv has no torch flight recorder analyser") and missing[1:] == ours
    # It ran: its report stands for the records (ours reads only the stacks), named as torch's.
    ran = hang_report(stacks, flight, analyser={"rc": 0, "stdout": "UserWarning: numpy\nNot all ranks joining collective 3\n", "stderr": ""},
                      analyser_where="node1 as torchrun-train")
    assert ran[:2] == ["flight records: read by torch's analyser (torch.distributed.flight_recorder.fr_trace) on node1 as torchrun-train",
                       "Not all ranks joining collective 3"]
    assert ran[2:] == hang_report(stacks)
    # Not run (no records anywhere): the report is ours, with nothing said of analysers.
    assert hang_report(stacks, flight, analyser={"skipped": True, "changed": False}) == ours
