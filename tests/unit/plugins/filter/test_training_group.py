import re

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.training_group import FilterModule, training_group

GROUPS = {"all": ["node1", "node2", "login"], "trainers": ["node1", "node2"], "spare": [], "ungrouped": ["login"]}


def test_a_group_with_nodes_is_returned_unchanged():
    assert training_group("trainers", GROUPS) == "trainers"


@pytest.mark.parametrize(("name", "message"), [
    ("gpus", "inventory: group 'gpus' (torchrun_group) is missing or empty; list the training nodes in it, first the master node"),
    ("spare", "inventory: group 'spare' (torchrun_group) is missing or empty"),
    # A host pattern is not a group: node ranks are places in one group's list.
    ("trainers:!node2", "inventory: group 'trainers:!node2' (torchrun_group) is missing or empty"),
    ("", "inventory: torchrun_group must be the name of an inventory group, got ''"),
    (["trainers"], "inventory: torchrun_group must be the name of an inventory group, got ['trainers']"),
])
def test_a_missing_empty_or_malformed_group_is_refused_by_name(name, message):
    with pytest.raises(AnsibleFilterError, match="^" + re.escape(message)):
        training_group(name, GROUPS)


def test_without_groups_only_the_name_is_checked():
    # A play's hosts (check_group.yml refused a missing group before it; --syntax-check has no inventory).
    assert training_group("trainers") == "trainers"
    with pytest.raises(AnsibleFilterError, match="must be the name of an inventory group, got None"):
        training_group(None)


def test_groups_that_are_not_a_mapping_are_a_missing_group():
    with pytest.raises(AnsibleFilterError, match="group 'trainers' .* missing or empty"):
        training_group("trainers", ["trainers"])


def test_the_filter_is_registered():
    assert FilterModule().filters()["training_group"] is training_group
