"""The job unit's start-limit window and preflight's check of an explicit one: one rule (module_utils.contract)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.start_limit_window import start_limit_window
from ansible_collections.onprem.torchrun.plugins.module_utils import contract


def test_the_derived_window_holds_one_start_more_than_the_burst_each_with_its_start_up():
    # burst 5, join timeout 600 s, restart 5 s: six starts of 600 + 5 + 30 s.
    assert start_limit_window(5, 600, 5) == 6 * 635 == 3810
    assert start_limit_window("5", "600", "5", "0") == 3810  # numbers typed as text, as inventories give them
    assert start_limit_window(5, 600, 5, 900) == 900  # an explicit window is the site's


def test_the_derived_window_is_always_longer_than_what_preflight_requires_of_an_explicit_one():
    for burst in (1, 3, 5, 10):
        for timeout in (30, 600, 1800):
            for delay in (0, 5, 60):
                assert start_limit_window(burst, timeout, delay) > contract.start_span(burst, timeout, delay)


def test_non_numbers_are_refused():
    with pytest.raises(AnsibleFilterError, match="whole numbers"):
        start_limit_window("five", 600, 5)
