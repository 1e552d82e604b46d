"""The README's plugin list, generated from each plugin's DOCUMENTATION (the one description).

    python tools/plugin_docs.py          # rewrite the list in README.md
    python tools/plugin_docs.py --check  # exit 1 when it is stale
"""

import ast
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Types a user calls by name; an action plugin is its module's controller half, listed as the module.
TYPES = (("modules", "module"), ("filter", "filter"))
BEGIN = "<!-- plugins: generated from each plugin's DOCUMENTATION by `make readme`; do not edit -->"
END = "<!-- plugins: end -->"


def documentation(path):
    """A plugin file's DOCUMENTATION, read without importing it (filters import ansible's runtime)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise SystemExit("%s: no DOCUMENTATION" % path)


def plugins():
    """(type, name, DOCUMENTATION) of every plugin a user calls, by type then name."""
    found = []
    for folder, kind in TYPES:
        for path in sorted((ROOT / "plugins" / folder).glob("*.py")):
            if path.name != "__init__.py":
                doc = documentation(path)
                found.append((kind, doc.get("name") or doc.get("module"), doc, path))
    return found


def render():
    lines = [BEGIN, "", "| plugin | type | since | what it does |", "| --- | --- | --- | --- |"]
    for kind, name, doc, path in plugins():
        action = " (runs on the controller)" if (ROOT / "plugins" / "action" / path.name).exists() else ""
        lines.append("| `onprem.torchrun.%s` | %s%s | %s | %s |" % (name, kind, action, doc.get("version_added", ""),
                                                               " ".join(str(doc.get("short_description", "")).split())))
    return "\n".join(lines + ["", END])


def rewrite(text):
    if BEGIN not in text or END not in text:
        raise SystemExit("README.md has no plugin list markers (%s ... %s)" % (BEGIN, END))
    head, rest = text.split(BEGIN, 1)
    return head + render() + rest.split(END, 1)[1]


def main(argv):
    current = README.read_text()
    text = rewrite(current)
    if text == current:
        return 0
    if "--check" in argv:
        print("README.md's plugin list is stale: run `make readme`", file=sys.stderr)
        return 1
    README.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
