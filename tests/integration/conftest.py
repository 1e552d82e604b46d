"""Helpers shared by the tests that drive playbooks against the sandbox."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long recovery scenarios, run by `make test-slow`, not by `make test`")


def run_playbook(name, *args, timeout=900, env=None):
    """ansible-playbook playbooks/<name>.yml (or a path ending in .yml) against the sandbox inventory, from the checkout."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH="%s:%s" % (BIN, os.environ["PATH"]), **(env or {}))
    cmd = [BIN / "ansible-playbook", name if name.endswith(".yml") else "playbooks/%s.yml" % name, "-i", "inventories/sandbox"] + list(args)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
