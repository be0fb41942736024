"""Writes translations/en.json from strings.json, resolving its [%key:...%] references.

Home Assistant resolves those references only for core integrations; a custom integration
ships the resolved file. Run with --check to fail when the file is out of date, or when another
language (translations/*.json, written by hand) lacks a string, has one English does not, or
names other placeholders than the English string.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import string
import sys
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent / "custom_components" / "octoplugout"
REFERENCE = re.compile(r"^\[%key:component::octoplugout::(.+)%\]$")


def resolve(node: Any, root: dict[str, Any]) -> Any:
    """Replace every reference with the text it points at."""
    if isinstance(node, dict):
        return {key: resolve(value, root) for key, value in node.items()}
    if isinstance(node, str) and (match := REFERENCE.match(node)):
        target: Any = root
        for part in match.group(1).split("::"):
            target = target[part]
        return resolve(target, root)
    return node


def leaves(node: Any, path: str = "") -> dict[str, str]:
    """Every string of a translation tree by its dotted key."""
    if isinstance(node, dict):
        found: dict[str, str] = {}
        for key, value in node.items():
            found |= leaves(value, f"{path}.{key}" if path else key)
        return found
    return {path: node}


def placeholders(text: str) -> set[str]:
    """The {placeholders} a string names."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def language_problems(english: dict[str, Any], language: dict[str, Any]) -> list[str]:
    """How a translation differs from English in its keys and placeholders."""
    ours, theirs = leaves(english), leaves(language)
    problems = [f"missing {key}" for key in sorted(ours.keys() - theirs.keys())]
    problems += [f"not in English: {key}" for key in sorted(theirs.keys() - ours.keys())]
    problems += [
        f"other placeholders in {key}"
        for key in sorted(ours.keys() & theirs.keys())
        if placeholders(ours[key]) != placeholders(theirs[key])
    ]
    return problems


def main() -> int:
    """Write or check translations/en.json; check the other languages against it."""
    strings = json.loads((PACKAGE / "strings.json").read_text(encoding="utf-8"))
    english = resolve(strings, strings)
    text = json.dumps(english, indent=2, ensure_ascii=False) + "\n"
    target = PACKAGE / "translations" / "en.json"
    if "--check" not in sys.argv:
        target.write_text(text, encoding="utf-8")
    elif not target.exists() or target.read_text(encoding="utf-8") != text:
        print("translations/en.json is out of date: run python3 scripts/translations.py")
        return 1
    failed = False
    for path in sorted((PACKAGE / "translations").glob("*.json")):
        problems = language_problems(english, json.loads(path.read_text(encoding="utf-8")))
        for problem in problems:
            print(f"translations/{path.name}: {problem}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
