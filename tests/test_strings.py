"""Every user-facing string passes the checks Home Assistant's own validator (hassfest) makes,
in every language, and every language has every string.
"""

from __future__ import annotations

from collections.abc import Iterator
import importlib.util
import json
from pathlib import Path
import re
import string
from typing import Any

from homeassistant.helpers import config_validation as cv
import pytest
import voluptuous as vol

PACKAGE = Path(__file__).resolve().parent.parent / "custom_components" / "octoplugout"
FILES = [PACKAGE / "strings.json", *sorted((PACKAGE / "translations").glob("*.json"))]
OTHER_LANGUAGES = [path for path in FILES[1:] if path.stem != "en"]
# hassfest's rules, as its documentation and its messages state them.
KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")
QUOTED_PLACEHOLDER = re.compile(r"'{\w+}'")
COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
URL = re.compile(
    r"(((ftp|ftps|scp|http|https|mqtt|mqtts|socket|socks5)://|www\.)"
    r"[a-z0-9]+([\-.][a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(/.*)?)",
    re.IGNORECASE,
)


def leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string in a translation file, with the keys leading to it."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    else:
        yield path, node


def problems_of(text: str) -> list[str]:
    """What hassfest says of one translated string (nothing when it passes)."""
    found = []
    try:
        cv.string_with_no_html(text)
    except vol.Invalid:
        found.append("looks like HTML")
    if QUOTED_PLACEHOLDER.search(text):
        found.append("placeholder in single quotes")
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field]
    except ValueError:
        found.append("unbalanced braces")
    else:
        found += [f"placeholder {field!r}" for field in fields if not field.isidentifier()]
    if COMBINED_REFERENCE.search(text):
        found.append("combined reference")
    if text != text.strip():
        found.append("leading or trailing space")
    if URL.search(text):
        found.append("a URL (use a placeholder)")
    return found


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_string_passes_home_assistants_checks(path: Path) -> None:
    found = {
        ".".join(keys): problems
        for keys, text in leaves(load(path))
        if (problems := problems_of(text))
    }
    assert found == {}


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_key_is_a_translation_key(path: Path) -> None:
    keys = {key for keys, _ in leaves(load(path)) for key in keys}
    assert sorted(key for key in keys if not KEY.match(key)) == []


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_described_field_exists(path: Path) -> None:
    translations = load(path)
    orphans = [
        f"{flow}.{step_id}.{field}"
        for flow in ("config", "options")
        for step_id, step in translations.get(flow, {}).get("step", {}).items()
        for field in step.get("data_description", {})
        if field not in step.get("data", {})
    ]
    assert orphans == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("takes its commands from <root>/switch", "looks like HTML"),
        ("see https://example.com/help", "a URL (use a placeholder)"),
        ("the '{user}' user", "placeholder in single quotes"),
        ("{user name}", "placeholder 'user name'"),
        (" padded", "leading or trailing space"),
    ],
)
def test_the_checks_find_what_hassfest_refuses(text: str, problem: str) -> None:
    assert problem in problems_of(text)


def test_every_language_has_every_string() -> None:
    english = {keys for keys, _ in leaves(load(PACKAGE / "translations" / "en.json"))}
    for path in FILES[1:]:
        assert {keys for keys, _ in leaves(load(path))} == english, path.name


def _translations_script() -> Any:
    path = PACKAGE.parent.parent / "scripts" / "translations.py"
    spec = importlib.util.spec_from_file_location("translations_script", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", OTHER_LANGUAGES, ids=lambda path: path.name)
def test_every_language_names_the_same_placeholders(path: Path) -> None:
    script = _translations_script()
    english = load(PACKAGE / "translations" / "en.json")
    assert script.language_problems(english, load(path)) == []


def test_the_language_check_finds_what_a_translator_misses() -> None:
    script = _translations_script()
    english = {"issues": {"a": {"title": "{title} broke", "description": "Fix it."}}}
    translated = {"issues": {"a": {"title": "kapot"}, "b": {"title": "extra"}}}
    assert script.language_problems(english, translated) == [
        "missing issues.a.description",
        "not in English: issues.b.title",
        "other placeholders in issues.a.title",
    ]


def test_dutch_and_german_are_there() -> None:
    assert {path.stem for path in FILES[1:]} >= {"en", "nl", "de"}
