"""Helpers shared by the tests that drive playbooks against the sandbox."""

import harness

ROOT = harness.ROOT


# The launch tests set up their cluster from the bare image and keep node1 as the seed layer; the
# health check's 3-node cluster boots on it (its setup then has little left to do). Modules not
# named keep their order, after these.
FIRST = ("test_launch.py", "test_healthcheck.py")


def pytest_collection_modifyitems(items):
    def order(item):
        name = item.path.name
        return FIRST.index(name) if name in FIRST else len(FIRST)
    items.sort(key=order)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long recovery scenarios, run by `make test-slow`, not by `make test`")


run_playbook = harness.playbook
