# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall a node runs besides ours: active managers (firewalld, ufw), their defaults and zone,
and the nftables tables that are live or declared (node_probe reads them for preflight)."""

from __future__ import annotations

import re

from ansible_collections.onprem.torchrun.plugins.module_utils.envfile import assignments
from ansible_collections.onprem.torchrun.plugins.module_utils.sockets import read

TABLE = re.compile(r"^\s*table\s+(ip|ip6|inet|arp|bridge|netdev)\s+([A-Za-z0-9_.-]+)", re.M)


def declared_tables(text: str) -> list[str]:
    """``<family> <name>`` of each table a ruleset file declares."""
    return ["%s %s" % match for match in TABLE.findall(text)]


def firewall_managers(module) -> list[str]:
    active = []
    systemctl = module.get_bin_path("systemctl")
    if systemctl and module.run_command([systemctl, "is-active", "--quiet", "firewalld.service"])[0] == 0:
        active.append("firewalld")
    ufw = module.get_bin_path("ufw")
    if ufw:
        rc, out, _err = module.run_command([ufw, "status"], environ_update={"LC_ALL": "C"})
        if rc == 0 and re.search(r"^Status: active", out, re.M):
            active.append("ufw")
    return active


def ufw_defaults(text: str) -> dict:
    """The default input policy and the IPv6 switch of /etc/default/ufw."""
    values = assignments(text)
    return {"ufw_default_input": values.get("DEFAULT_INPUT_POLICY", "DROP").upper(),
            "ufw_ipv6": values.get("IPV6", "yes").lower() == "yes"}


def firewall_site(module, active: list[str], interface: str) -> dict:
    site: dict = {}
    if "firewalld" in active:
        cmd = module.get_bin_path("firewall-cmd") or "firewall-cmd"
        rc, out, _err = module.run_command([cmd, "--get-zone-of-interface=" + interface]) if interface else (1, "", "")
        if rc != 0:
            rc, out, _err = module.run_command([cmd, "--get-default-zone"])
        zone = out.strip()
        rc, target, _err = module.run_command([cmd, "--permanent", "--zone=" + zone, "--get-target"])
        site.update(firewalld_zone=zone, firewalld_target=target.strip() if rc == 0 else "")
    if "ufw" in active:
        site.update(ufw_defaults(read("/etc/default/ufw")))
    return site


def nft_tables(module) -> list[str]:
    tables = declared_tables(read("/etc/nftables.conf"))
    nft = module.get_bin_path("nft")
    if nft:
        rc, out, _err = module.run_command([nft, "list", "tables"])
        if rc == 0:
            tables += declared_tables(out)
    return sorted(set(tables))
