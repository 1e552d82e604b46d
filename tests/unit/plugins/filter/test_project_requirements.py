"""A project's requirements file (plugin_utils/requirements.py and the project_requirements filter):
what pip gets, what the stack report compares, and every line that would not install the same way
on every node from the site's sources."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.onprem.torchrun.plugins.filter.project_requirements import project_requirements
from ansible_collections.onprem.torchrun.plugins.plugin_utils import requirements

HASH = "--hash=sha256:" + "0" * 64


def test_plain_lines_become_pip_specifiers_with_their_names():
    found = requirements.parse("# the project's packages\n"
                               "tabulate==0.9.0  # tables\n"
                               "PyYAML >= 6.0, < 7\n"
                               "rich[jupyter]===13.7.1\n"
                               "\n"
                               "numpy\n"
                               "tabulate==0.9.0\n")
    assert found.problems == []
    assert found.names == ["tabulate", "PyYAML", "rich", "numpy"]
    assert found.specifiers == ["tabulate==0.9.0", "PyYAML>=6.0,<7", "rich[jupyter]===13.7.1", "numpy", "tabulate==0.9.0"]
    assert found.unpinned == ["PyYAML", "numpy"]
    assert not found.hashed


@pytest.mark.parametrize("text", [
    "tabulate==0.9.0 \\\n    %s \\\n    %s\n" % (HASH, HASH),   # a lock with hashes (continued lines)
    'tabulate==0.9.0; python_version >= "3.8"\n',             # a marker
    "--pre\ntabulate==0.9.0\n",                                  # a global option pip reads from the file
])
def test_a_file_pip_must_read_itself_is_installed_as_a_file(text):
    found = requirements.parse(text)
    assert found.problems == []
    assert found.specifiers is None
    assert found.names == ["tabulate"] and found.unpinned == []
    assert found.hashed == ("--hash" in text)


@pytest.mark.parametrize("line, says", [
    ("-r base.txt", "includes another file"),
    ("--requirement=base.txt", "includes another file"),
    ("-c constraints.txt", "includes another file"),
    ("-e ./vendor/lib", "editable install"),
    ("--editable git+https://example.invalid/lib.git#egg=lib", "editable install"),
    ("-i https://example.invalid/simple", "package source of its own"),
    ("--extra-index-url https://example.invalid/simple", "package source of its own"),
    ("--find-links /wheels", "package source of its own"),
    ("--no-index", "package source of its own"),
    ("--trusted-host example.invalid", "package source of its own"),
    ("./vendor/lib", "is a path or URL"),
    ("/opt/wheels/lib-1.0-py3-none-any.whl", "is a path or URL"),
    ("https://example.invalid/lib-1.0.tar.gz", "is a path or URL"),
    ("lib @ https://example.invalid/lib-1.0.tar.gz", "is a path or URL"),
    ("lib@git+https://example.invalid/lib.git", "is a path or URL"),
    ("lib == 1.0 extra", "not a requirement pip understands"),
    ("lib=1.0", "not a requirement pip understands"),
    ("-lib", None),  # an option pip itself refuses; not ours to name
    ("lib==1.0 --install-option=--x", "options other than --hash"),
    ("lib==1.0\x07", "control characters"),
])
def test_lines_that_would_not_install_the_same_on_every_node_are_named(line, says):
    found = requirements.parse("good==1.0\n%s\n" % line)
    if says is None:
        assert found.problems == []
        return
    assert len(found.problems) == 1, found.problems
    assert found.problems[0].startswith("line 2 (")
    assert says in found.problems[0], found.problems


def test_a_lock_with_a_line_without_hash_is_named():
    found = requirements.parse("a==1.0 %s\nb==2.0\n" % HASH)
    assert found.problems == ["line 2 (b==2.0) has no --hash while other lines have one; pip then refuses the whole file: "
                              "hash every line (pip-compile --generate-hashes)"]


def test_the_filter_reads_the_file_and_installs_nothing_without_one(tmp_path):
    assert project_requirements(str(tmp_path), "requirements.txt")["path"] == ""  # the conventional name is optional
    assert project_requirements(str(tmp_path), "")["names"] == []
    assert project_requirements("", "requirements.txt")["path"] == ""
    with pytest.raises(AnsibleFilterError, match="requirements/train.txt is not a file on the controller"):
        project_requirements(str(tmp_path), "requirements/train.txt")
    (tmp_path / "requirements.txt").write_text("tabulate==0.9.0\nnumpy\n")
    assert project_requirements(str(tmp_path), "requirements.txt") == {
        "path": str(tmp_path / "requirements.txt"), "names": ["tabulate", "numpy"], "specifiers": ["tabulate==0.9.0", "numpy"],
        "unpinned": ["numpy"], "hashed": False}
    (tmp_path / "requirements.txt").write_text("-r other.txt\n")
    with pytest.raises(AnsibleFilterError, match="line 1 .* includes another file"):
        project_requirements(str(tmp_path), "requirements.txt")
