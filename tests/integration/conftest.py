"""Helpers shared by the tests that drive playbooks against the sandbox."""

import harness

ROOT = harness.ROOT


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long recovery scenarios, run by `make test-slow`, not by `make test`")


run_playbook = harness.playbook
