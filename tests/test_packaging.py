"""What HACS and Home Assistant's validator read besides the code: hacs.json, the manifest,
one integration in the repository.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant.helpers import config_validation as cv
import pytest
import voluptuous as vol

from custom_components.octoplugout.const import DOMAIN

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "custom_components" / DOMAIN
# The oldest Home Assistant the suite runs on; hacs.json may not ask for a newer one.
OLDEST_TESTED = AwesomeVersion("2025.4.0")

# HACS' rules for hacs.json: a name, and only the keys HACS knows.
HACS_JSON = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any(str, [str]),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): vol.Coerce(AwesomeVersion),
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): vol.Coerce(AwesomeVersion),
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
    },
    extra=vol.PREVENT_EXTRA,
)
# What HACS requires of an integration's manifest (Home Assistant requires more, below).
HACS_MANIFEST = vol.Schema(
    {
        vol.Required("codeowners"): [str],
        vol.Required("documentation"): cv.url,
        vol.Required("domain"): str,
        vol.Required("issue_tracker"): cv.url,
        vol.Required("name"): str,
        vol.Required("version"): vol.Coerce(AwesomeVersion),
    },
    extra=vol.ALLOW_EXTRA,
)


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def manifests_in(root: Path) -> list[Path]:
    """Every manifest.json in the project, outside hidden folders (environments, git)."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found += [Path(folder, name) for name in files if name == "manifest.json"]
    return found


def test_one_integration_manifest_in_the_repository() -> None:
    # The validators take every manifest.json they find for an integration of its own.
    assert manifests_in(ROOT) == [PACKAGE / "manifest.json"]


def test_hacs_json_passes_hacs_rules() -> None:
    hacs = HACS_JSON(load(ROOT / "hacs.json"))
    assert hacs["name"] == load(PACKAGE / "manifest.json")["name"]
    assert hacs["homeassistant"] <= OLDEST_TESTED


def test_hacs_json_rules_refuse_an_unknown_key() -> None:
    with pytest.raises(vol.Invalid):
        HACS_JSON({"name": "OctoPlugout", "zip": True})


def test_manifest_passes_hacs_and_home_assistant_rules() -> None:
    manifest = HACS_MANIFEST(load(PACKAGE / "manifest.json"))
    assert manifest["domain"] == DOMAIN == PACKAGE.name
    assert manifest["codeowners"]
    assert manifest["version"].valid
    # Home Assistant's own order: domain, name, then the rest alphabetically.
    keys = list(load(PACKAGE / "manifest.json"))
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["config_flow"] is True
    assert manifest["iot_class"] in ("local_polling", "local_push")
