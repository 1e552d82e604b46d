"""Cold converge: bare nodes to a finished job with train.yml, against the sum of its irreducible parts.

The parts are timed separately in the same run, on fresh 2-node clusters booted from the bare
image, each part on both nodes at once as Ansible would, by plain ssh:
- packages: apt-get update and install of what the roles install (python3-venv,
  python3-packaging, nftables);
- wheels: a venv and pip install of the pinned torch, Lightning and py-spy from the wheelhouse;
- job: the training job itself, torchrun with the same script and shape on both nodes.
Then the cluster is booted bare again and train.yml is timed from start to its last line. The
package proxy's cache is warm for both (the other benchmarks fetched the same packages).
"""

from __future__ import annotations

import shlex

from common import ROOT, TORCHRUN, cluster, log, on_all, playbook, ports, put, result, role_vars, sb, slowest_tasks, timed, torchrun_command

# The pytorch role's packages, and the firewall role's nftables (a node without firewalld or ufw).
PACKAGES = role_vars("pytorch", "vars")["__pytorch_packages"] + ["nftables"]
VENV = TORCHRUN["torchrun_venv"]
NPROC = 2


def pins() -> list[str]:
    defaults = role_vars("pytorch")
    return ["torch==" + defaults["pytorch_torch_version"], "lightning==" + defaults["pytorch_lightning_version"]] \
        + defaults["pytorch_tools"]


def parts(nodes: list[str]) -> dict[str, float]:
    packages = timed(on_all, nodes, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq %s >/dev/null"
                     % " ".join(PACKAGES))
    wheels = timed(on_all, nodes, "python3 -m venv %s && PIP_CONFIG_FILE=/dev/null %s/bin/pip install --quiet "
                   "--disable-pip-version-check --no-index --find-links %s --trusted-host %s %s"
                   % (VENV, VENV, sb.WHEEL_URL, sb.HOST_ADDR, " ".join(pins())))
    script = (ROOT / "roles" / "launcher" / "files" / "lightning_synthetic.py").read_text()
    for node in nodes:
        put(node, "/root/job.py", script)
    master = sb.address_of(nodes[0])
    port = ports.model(TORCHRUN)["master"]

    def by_hand(rank: int) -> str:
        # The job's own torchrun command line and workers' environment (the filter the unit uses), typed over ssh.
        command = torchrun_command({"venv": VENV, "nproc_per_node": str(NPROC), "nnodes": str(len(nodes)), "node_rank": rank,
                                    "master_addr": master, "master_port": port, "local_addr": sb.address_of(nodes[rank]),
                                    "interface": "host0"})
        env = command["assignments"] + ["TORCHRUN_CHECKPOINT_DIR=/root/checkpoints", "PL_TRAINER_DEVICES=%d" % NPROC,
                                        "PL_TRAINER_NUM_NODES=%d" % len(nodes)]
        return "cd /root && env %s %s job.py" % (" ".join(shlex.quote(item) for item in env), shlex.join(command["argv"]))

    job = timed(on_all, nodes, by_hand)
    return {"packages": packages, "wheels": wheels, "job": job}


def run() -> list[dict]:
    log("cold: the irreducible parts on bare nodes")
    times = parts(cluster(2))
    rounded = {part: round(seconds, 1) for part, seconds in times.items()}
    log("cold: parts %s" % rounded)
    log("cold: train.yml on bare nodes")
    cluster(2)
    seconds, out = playbook("train", profile=True)
    return [result("cold", "Cold converge (bare nodes to a finished job, train.yml) vs the sum of its parts",
                   seconds, sum(times.values()), 1.3, parts=rounded,
                   slowest_tasks=slowest_tasks(out, 8))]
