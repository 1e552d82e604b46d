"""The firewall role's rule files, guard and unit drop-ins, rendered from the role's own templates.

The sandbox loads them into real nftables (tests/integration/test_launch.py); here, without a node:
which rules guard which port for whom, and that no root step of the job's unit reads its environment.
"""

import re
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "firewall"
with warnings.catch_warnings():  # another test module may have set the loader up already: harmless
    warnings.simplefilter("ignore")
    init_plugin_loader()

PEERS = ["198.18.0.11", "198.18.0.12"]


def render(name, own_input=True, **extra):
    values = {k: trust_as_template(v) if isinstance(v, str) else v
              for part in ("defaults", "vars") for k, v in yaml.safe_load((ROLE / part / "main.yml").read_text()).items()}
    values.update({
        "ansible_managed": "managed", "torchrun_job": "train", "torchrun_user": "torchrun-train",
        "__torchrun_hosts": ["node1", "node2"], "__torchrun_addresses": PEERS,
        "__torchrun_ports": {"master": 29500, "span": "52000-53999", "open": ["29500", "52000-53999"]},
        "__firewall_backend": "nftables" if own_input else "firewalld", "__firewall_ssh_ports": [22],
        "__firewall_own_input": own_input, "__firewall_peers": PEERS,
    })
    values.update(extra)
    templar = Templar(loader=DataLoader(), variables=values)
    return templar.template(trust_as_template((ROLE / "templates" / name).read_text()))


def rules(text):
    return [" ".join(line.split()) for line in text.splitlines() if "reject" in line or "drop" in line or "accept" in line]


@pytest.mark.parametrize("own_input", [True, False])
def test_the_base_table_guards_who_opens_and_who_answers_on_every_node(own_input):
    text = render("torchrun.nft.j2", own_input)
    out = rules(text[text.index("chain output"):])
    # Towards the jobs' nodes (any of them, not only loopback): a job user to its own job's nodes only, or root.
    assert ('ip daddr @all_peers tcp flags & (syn | ack) == syn tcp dport 52000-53999 meta skuid != 0 '
            'meta skuid . ip daddr != @user_peers reject with tcp reset') in " | ".join(out)
    # On loopback: any job user (the node's one ephemeral range), nobody else.
    assert any(r.startswith('oif "lo" tcp flags & (syn | ack) == syn tcp dport 52000-53999 meta skuid != @all_users reject') for r in out)
    # Who answers a peer from the range: a job user's socket towards its own nodes (or root's).
    assert any(r.startswith('oif != "lo" ip daddr @all_peers tcp sport 52000-53999 tcp flags & (syn | ack) == syn | ack meta skuid != 0 '
                            'meta skuid . ip daddr != @user_peers drop') for r in out), out
    assert "typeof meta skuid . ip daddr" in text


def test_the_jobs_file_keeps_its_store_for_its_user_on_all_its_nodes():
    text = render("job.nft.j2")
    lines = [" ".join(line.split()) for line in text.splitlines() if line.startswith("add ")]
    assert 'add element inet torchrun user_peers { "torchrun-train" . 198.18.0.11, "torchrun-train" . 198.18.0.12 }' in lines
    assert ('add rule inet torchrun output ip daddr @nodes_train tcp flags & (syn | ack) == syn tcp dport 29500 '
            'meta skuid != { 0, "torchrun-train" } reject with tcp reset') in " | ".join(lines)
    assert ('add rule inet torchrun output oif "lo" tcp flags & (syn | ack) == syn tcp dport 29500 meta skuid != "torchrun-train" '
            'reject with tcp reset') in " | ".join(lines)
    # Only the job's own process answers on its store's port, to anyone.
    assert ('add rule inet torchrun output tcp sport 29500 tcp flags & (syn | ack) == syn | ack meta skuid != { 0, "torchrun-train" } '
            'drop') in " | ".join(lines)
    # Input: the job's ports from its peers only.
    assert 'add rule inet torchrun input ip saddr @nodes_train tcp dport { 29500, 52000-53999 } accept comment "job train"' in lines


def test_the_guard_script_parses_and_reads_nothing_a_job_writes(tmp_path):
    script = tmp_path / "guard"
    script.write_text(render("torchrun-firewall-guard.sh.j2"))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False).returncode == 0
    text = script.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    paths = set(re.findall(r"(?<![\w.])/(?:[\w.@-]+/)*[\w.@-]+", code))
    assert paths == {"/usr/sbin/nft", "/etc/torchrun/firewall.nft", "/run/torchrun/firewall.sha256", "/dev/null"}, paths
    assert "monitor" in text and "read -r -t 5" in text  # on every event, and every 5 s


def test_the_jobs_unit_runs_no_root_step_and_requires_its_rules_check():
    dropin = render("job-firewall.conf.j2")
    assert "Requires=torchrun-rules@train.service" in dropin
    assert re.search(r"^After=.*torchrun-rules@train\.service", dropin, re.M)
    # No Exec line at all in the job's own unit files runs as root ('+', '!', '!!' prefixes) or runs before it.
    for path in [ROLE / "templates" / "job-firewall.conf.j2"] + sorted((ROOT / "roles" / "launcher" / "templates").glob("*.j2")):
        for line in path.read_text().splitlines():
            assert not re.match(r"\s*Exec\w*=\s*[-@:]*[+!]", line), (path.name, line)
            assert not re.match(r"\s*ExecStartPre=", line), (path.name, line)
    check = render("torchrun-rules@.service.j2")
    assert "ExecStart=/usr/local/sbin/torchrun-firewall-guard check %i" in check
    assert not re.search(r"^\s*(EnvironmentFile|Environment|PassEnvironment)=", check, re.M)
