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
from PIL import Image
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


BRAND = PACKAGE / "brand"


def brand_image(name: str) -> Image.Image:
    image = Image.open(BRAND / name)
    image.load()
    return image


@pytest.mark.parametrize(("name", "size"), [("icon.png", (256, 256)), ("icon@2x.png", (512, 512))])
def test_icon_follows_the_brand_rules(name: str, size: tuple[int, int]) -> None:
    icon = brand_image(name)
    assert icon.format == "PNG"
    assert icon.size == size
    assert icon.mode == "RGBA"
    # Trimmed: the drawing reaches every edge; transparent where it does not (the corners).
    assert icon.getbbox() == (0, 0, *size)
    assert icon.getpixel((0, 0))[3] == 0


@pytest.mark.parametrize("prefix", ["", "dark_"])
def test_logo_follows_the_brand_rules(prefix: str) -> None:
    logo, double = brand_image(f"{prefix}logo.png"), brand_image(f"{prefix}logo@2x.png")
    assert logo.format == double.format == "PNG"
    assert logo.mode == double.mode == "RGBA"
    assert 128 <= min(logo.size) <= 256
    assert 256 <= min(double.size) <= 512
    assert abs(double.width - 2 * logo.width) <= 2
    assert abs(double.height - 2 * logo.height) <= 2
    for image in (logo, double):
        assert image.getbbox() == (0, 0, *image.size)
        # Transparent around the drawing, not a filled box.
        assert image.getchannel("A").getextrema()[0] == 0


def test_dark_logo_differs_and_only_known_images_ship() -> None:
    assert {path.name for path in BRAND.iterdir()} == {
        "icon.png",
        "icon@2x.png",
        "logo.png",
        "logo@2x.png",
        "dark_logo.png",
        "dark_logo@2x.png",
    }
    assert brand_image("logo.png").tobytes() != brand_image("dark_logo.png").tobytes()


def test_the_readme_shows_the_icon() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "custom_components/octoplugout/brand/icon.png" in readme.split("\n## ")[0]
