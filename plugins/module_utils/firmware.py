# Copyright: onprem.torchrun developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node's Secure Boot state, which decides whether a kernel module DKMS builds is loaded: mokutil's
answer where mokutil is installed, else the firmware's SecureBoot EFI variable."""

from __future__ import annotations

import os

SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
DKMS_KEY = "/var/lib/dkms/mok.pub"


def secure_boot_state(mokutil_out: str | None, efivar: bytes | None, efi: bool) -> str:
    """enabled, disabled or unknown: mokutil's word where it answered, else the EFI variable (four
    bytes of attributes, then the value), else disabled without EFI."""
    if mokutil_out is not None:
        text = mokutil_out.lower()
        if "secureboot enabled" in text:
            return "enabled"
        if "secureboot disabled" in text or "not supported" in text:
            return "disabled"
    if efivar is not None and len(efivar) >= 5:
        return "enabled" if efivar[4] == 1 else "disabled"
    return "unknown" if efi else "disabled"


def secure_boot(module) -> dict:
    """The node's Secure Boot state and whether DKMS's signing key is enrolled (node_probe's secure_boot)."""
    mokutil = module.get_bin_path("mokutil")
    out, enrolled = None, False
    if mokutil:
        _rc, out, err = module.run_command([mokutil, "--sb-state"])
        out = (out or "") + (err or "")
        if os.path.exists(DKMS_KEY):
            _rc, test, err = module.run_command([mokutil, "--test-key", DKMS_KEY])
            enrolled = "already enrolled" in (test or "") + (err or "")
    try:
        with open(SECURE_BOOT_VAR, "rb") as handle:
            efivar = handle.read()
    except OSError:
        efivar = None
    return {"state": secure_boot_state(out, efivar, os.path.isdir("/sys/firmware/efi")), "dkms_key_enrolled": enrolled}
