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

from common import ROOT, TORCHRUN, cluster, log, on_all, playbook, put, result, role_vars, sb, slowest_tasks, timed

# The pytorch role's packages, and the firewall role's nftables (a node without firewalld or ufw).
PACKAGES = role_vars("pytorch", "vars")["__pytorch_packages"] + ["nftables"]
VENV = TORCHRUN["torchrun_venv"]
NPROC = 2


def pins() -> list[str]:
    defaults = role_vars("pytorch")
    return ["torch==" + defaults["pytorch_torch_version"], "lightning==" + defaults["pytorch_lightning_version"]] \
        + defaults["pytorch_tools"]


def parts(nodes: list[str]) -> dict[str, float]:
    host = "%s:%d" % (sb.HOST_ADDR, sb.PROXY_PORT)
    packages = timed(on_all, nodes, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq %s >/dev/null"
                     % " ".join(PACKAGES))
    wheels = timed(on_all, nodes, "python3 -m venv %s && PIP_CONFIG_FILE=/dev/null %s/bin/pip install --quiet "
                   "--disable-pip-version-check --no-index --find-links http://%s/wheels/ --trusted-host %s %s"
                   % (VENV, VENV, host, sb.HOST_ADDR, " ".join(pins())))
    script = (ROOT / "roles" / "launcher" / "files" / "lightning_synthetic.py").read_text()
    for node in nodes:
        put(node, "/root/job.py", script)
    master = sb.address_of(nodes[0])
    job = timed(on_all, nodes, lambda rank: (
        "cd /root && OMP_NUM_THREADS=1 GLOO_SOCKET_IFNAME=host0 PYTHONUNBUFFERED=1 TORCHRUN_CHECKPOINT_DIR=/root/checkpoints "
        "PL_TRAINER_DEVICES=%d PL_TRAINER_NUM_NODES=%d %s/bin/torchrun --nproc-per-node=%d --rdzv-backend=static "
        "--nnodes=%d --node-rank=%d --master-addr=%s --master-port=29500 --local-addr=%s --max-restarts=0 job.py"
        % (NPROC, len(nodes), VENV, NPROC, len(nodes), rank, master, sb.address_of(nodes[rank]))))
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
