"""The preflight catalogue (preflight_cases.yml) and the README table made from it.

    python tools/catalogue.py          # rewrite the README's "Common mistakes" table
    python tools/catalogue.py --check  # exit 1 when the README's table is stale

The tests load the cases from here too (tests/unit/plugins/test_validate.py, tests/integration/test_preflight.py).
"""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "integration" / "preflight_cases.yml"
README = ROOT / "README.md"
BEGIN = "<!-- mistakes: generated from tests/integration/preflight_cases.yml by `make readme`; do not edit -->"
END = "<!-- mistakes: end -->"


def load(path=CASES):
    cases = yaml.safe_load(path.read_text())
    names = [case["mistake"] for case in cases]
    assert len(names) == len(set(names)), "two cases share a mistake text"
    return cases


def table(cases):
    rows = ["| mistake | what preflight prints |", "| --- | --- |"]
    for case in cases:
        message = case["message"].replace("|", "\\|")
        rows.append("| %s | `%s ...` |" % (case["mistake"], message))
    return "\n".join(rows)


def render(readme, cases):
    head, sep, rest = readme.partition(BEGIN)
    _old, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise SystemExit("README.md has no %s ... %s markers" % (BEGIN, END))
    return head + BEGIN + "\n" + table(cases) + "\n" + END + tail


def main(argv):
    text = README.read_text()
    fresh = render(text, load())
    if "--check" in argv:
        if fresh != text:
            print("README.md's common-mistakes table is stale: run `make readme`", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
