#!/usr/bin/python
# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open TCP connections from this node to many targets at once and report each outcome."""

from __future__ import annotations

DOCUMENTATION = r"""
module: tcp_probe
author: onprem.torchrun developers (@onprem)
version_added: 0.1.0
short_description: Check TCP connections from a node to many targets in parallel
description:
  - Connects from the managed node to every target at once (one thread each) and reports, per
    target, whether the connection was accepted, refused, timed out or had no route.
  - A refused connection is retried until O(timeout) passes, so a listener that is still
    starting is not reported as missing.
  - Sends no data and changes nothing on any host.
options:
  targets:
    description: The endpoints to connect to.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A label for the target, such as the peer's inventory name.
        type: str
        required: true
      host:
        description: The address to connect to.
        type: str
        required: true
      port:
        description: The TCP port.
        type: int
        required: true
  source:
    description: Local address to connect from (the node's cluster address); empty lets the kernel choose.
    type: str
    default: ""
  timeout:
    description: Seconds to wait for each target.
    type: float
    default: 5
extends_documentation_fragment:
  - onprem.torchrun.cluster.read_only
"""

EXAMPLES = r"""
- name: Check that this node reaches the master's rendezvous port
  onprem.torchrun.tcp_probe:
    targets:
      - {name: node1, host: 10.10.10.16, port: 29500}
    timeout: 5
"""

RETURN = r"""
results:
  description: One entry per target, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The target's label.
      type: str
    host:
      description: The address tried.
      type: str
    port:
      description: The port tried.
      type: int
    ok:
      description: Whether the connection was accepted.
      type: bool
    reason:
      description: C(connected), C(refused), C(timed out), C(no route) or the system's error text.
      type: str
    seconds:
      description: Time until the outcome, in seconds.
      type: float
failed_targets:
  description: The labels of the targets that could not be reached.
  returned: always
  type: list
  elements: str
"""

import errno
import socket
import threading
import time

from ansible.module_utils.basic import AnsibleModule

REASONS = {
    errno.ECONNREFUSED: "refused",
    errno.EHOSTUNREACH: "no route",
    errno.ENETUNREACH: "no route",
    errno.ETIMEDOUT: "timed out",
}


def probe(target, source, timeout):
    """Try one target until it answers, refuses for good, or the time is up."""
    start = time.monotonic()
    deadline = start + timeout
    reason = "timed out"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            sock = socket.create_connection(
                (target["host"], target["port"]), timeout=left, source_address=(source, 0) if source else None
            )
        except socket.timeout:
            reason = "timed out"
            break
        except OSError as err:
            reason = REASONS.get(err.errno, err.strerror or str(err))
            if err.errno != errno.ECONNREFUSED:
                break
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
            continue
        sock.close()
        return dict(target, ok=True, reason="connected", seconds=round(time.monotonic() - start, 3))
    return dict(target, ok=False, reason=reason, seconds=round(time.monotonic() - start, 3))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(name=dict(type="str", required=True), host=dict(type="str", required=True), port=dict(type="int", required=True)),
            ),
            source=dict(type="str", default=""),
            timeout=dict(type="float", default=5),
        ),
        supports_check_mode=True,
    )
    targets = module.params["targets"]
    results = [None] * len(targets)

    def worker(index):
        results[index] = probe(targets[index], module.params["source"], module.params["timeout"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = ["%s:%d" % (r["name"], r["port"]) for r in results if not r["ok"]]
    module.exit_json(changed=False, results=results, failed_targets=failed)


if __name__ == "__main__":
    main()
