"""Each role's README.md, generated from its meta/argument_specs.yml (the one description).

    python tools/role_docs.py          # rewrite roles/*/README.md
    python tools/role_docs.py --check  # exit 1 when one is stale
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[1] / "roles"
# C(), M(), O(), P(name#type)...; the text may hold one level of parentheses, as in C(torch.cuda.is_available()).
MARKUP = re.compile(r"\b[CMOVRIBLP]\(((?:[^()#]|\([^()]*\))*)(?:#[a-z_]+)?\)")


def words(text):
    """Ansible doc markup (C(), M(), O()...) as Markdown code."""
    if isinstance(text, list):
        text = " ".join(text)
    return MARKUP.sub(lambda m: "`%s`" % m.group(1), " ".join(str(text or "").split()))


def paragraphs(text):
    return [words(p) for p in (text if isinstance(text, list) else [text]) if p]


def cell(text):
    return text.replace("|", "\\|")


def default(spec):
    if "default" not in spec:
        return "(computed, see description)" if "Default" in words(spec.get("description")) else ""
    return "`%s`" % json.dumps(spec["default"])


def render(role):
    specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    lines = []
    for entry, spec in specs.items():
        title = "Variables" + ("" if entry == "main" else " (tasks_from: %s)" % entry)
        lines += ["## %s" % title, "", words(spec.get("short_description")), ""]
        for para in paragraphs(spec.get("description")):
            lines += [para, ""]
        options = spec.get("options") or {}
        if entry != "main" and options == (specs["main"].get("options") or {}):
            lines += ["Takes the same variables as the role's main entry point.", ""]
        elif options:
            lines += ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
            for name, option in options.items():
                kind = option.get("type", "")
                if option.get("elements"):
                    kind += " of %s" % option["elements"]
                if option.get("choices"):
                    kind += " (%s)" % ", ".join(map(str, option["choices"]))
                lines.append("| `%s` | %s | %s | %s |" % (name, cell(kind), cell(default(option)), cell(words(option.get("description")))))
            lines.append("")
        else:
            lines += ["No variables of its own: it reads the cluster-wide `torchrun_*` contract.", ""]
    return "\n".join(lines).rstrip() + "\n"


BEGIN = "<!-- Generated from meta/argument_specs.yml by `make readme`; edit the specs, not this part. -->"
END = "<!-- end of the generated part -->"


def document(role, current):
    """The role's README: its own text (a title when new) and the generated part."""
    head = current.split(BEGIN)[0].rstrip() if current else "# onprem.torchrun.%s" % role
    return head + "\n\n" + BEGIN + "\n\n" + render(role) + "\n" + END + "\n"


def main(argv):
    stale = []
    for path in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        role = path.parts[-3]
        readme = ROLES / role / "README.md"
        current = readme.read_text() if readme.exists() else ""
        text = document(role, current)
        if current == text:
            continue
        if "--check" in argv:
            stale.append(str(readme))
        else:
            readme.write_text(text)
    if stale:
        print("stale (run `make readme`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
