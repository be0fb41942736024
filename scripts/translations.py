"""Writes translations/en.json from strings.json, resolving its [%key:...%] references.

Home Assistant resolves those references only for core integrations; a custom integration
ships the resolved file. Run with --check to fail when the file is out of date.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
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


def main() -> int:
    """Write or check translations/en.json."""
    strings = json.loads((PACKAGE / "strings.json").read_text(encoding="utf-8"))
    text = json.dumps(resolve(strings, strings), indent=2, ensure_ascii=False) + "\n"
    target = PACKAGE / "translations" / "en.json"
    if "--check" in sys.argv:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            print("translations/en.json is out of date: run python3 scripts/translations.py")
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
