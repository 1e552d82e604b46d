"""`ansible-doc onprem.torchrun.<plugin>` works for every module and filter of the collection."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = [("module", p.stem) for p in sorted((ROOT / "plugins" / "modules").glob("*.py")) if p.stem != "__init__"]
PLUGINS += [("filter", p.stem) for p in sorted((ROOT / "plugins" / "filter").glob("*.py")) if p.stem != "__init__"]


@pytest.mark.parametrize("kind,name", PLUGINS)
def test_ansible_doc_shows_the_plugin(kind, name):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "-t", kind, "onprem.torchrun." + name],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "onprem.torchrun.%s" % name in proc.stdout and "EXAMPLES" in proc.stdout, proc.stdout[:500]
