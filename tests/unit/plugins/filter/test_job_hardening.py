"""The job's hardening, one list for its unit, the health check and gpu-check."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.torchrun.plugins.filter.job_hardening import job_hardening


def settings(spec):
    return dict(s.split("=", 1) for s in job_hardening(spec) if not s.startswith("DeviceAllow="))


def test_the_job_writes_its_own_folders_only_and_every_other_device_is_closed():
    found = job_hardening({"write_paths": ["/var/lib/torchrun/train", "/srv/shared/train"], "read_paths": ["/data/imagenet"]})
    assert found[:6] == ["NoNewPrivileges=yes", "CapabilityBoundingSet=", "AmbientCapabilities=", "ProtectSystem=strict",
                         "ReadWritePaths=/var/lib/torchrun/train /srv/shared/train", "ReadOnlyPaths=/data/imagenet"]
    values = settings({"write_paths": ["/var/lib/torchrun/train"]})
    assert values["DevicePolicy"] == "closed" and values["ProtectHome"] == "yes" and values["UMask"] == "0027"
    assert "ReadOnlyPaths" not in values and not [s for s in job_hardening({"write_paths": ["/j"]}) if s.startswith("DeviceAllow=")]
    # What would break a GPU job is never there: PrivateDevices hides /dev/nvidia*, MemoryDenyWriteExecute stops Triton.
    assert "PrivateDevices" not in values and "MemoryDenyWriteExecute" not in values
    assert values["RestrictAddressFamilies"] == "AF_UNIX AF_INET AF_INET6 AF_NETLINK"


def test_cuda_opens_the_nvidia_devices_and_nothing_else():
    allowed = [s for s in job_hardening({"write_paths": ["/j"], "accelerator": "cuda"}) if s.startswith("DeviceAllow=")]
    assert allowed == ["DeviceAllow=char-%s rw" % g for g in
                       ("nvidiactl", "nvidia-frontend", "nvidia-uvm", "nvidia-caps", "nvidia-caps-imex-channels")]
    assert job_hardening({"write_paths": ["/j"], "accelerator": "cuda"})[-1] == "UMask=0027"


@pytest.mark.parametrize(("spec", "message"), [
    ({"write_paths": []}, "write_paths is empty"),
    ({"write_paths": "/j"}, "write_paths must be a list"),
    ({"write_paths": ["relative"]}, "write_paths has 'relative'"),
    ({"write_paths": ["/j"], "read_paths": ["/a b"]}, "read_paths has '/a b'"),
    (["/j"], "needs a dict"),
])
def test_bad_input_is_named(spec, message):
    with pytest.raises(AnsibleFilterError, match=message):
        job_hardening(spec)
