"""Every ESPHome device file validates with the real ESPHome (offline, test secrets)."""

from __future__ import annotations

from pathlib import Path
import shutil

import pytest

from rig.plug_firmware import ESPHOME_DIR, esphome

DEVICE_FILES = sorted(path.name for path in ESPHOME_DIR.glob("*.yaml"))
TEST_SECRETS = """\
wifi_ssid: test-network
wifi_password: test-password
fallback_ap_password: test-fallback
api_encryption_key: "J1+YsjxcmDnUHyCR3IRAMBqBOwGTjwhLW3RoRqTOEIk="
ota_password: test-ota-password
"""


@pytest.fixture
def esphome_copy(tmp_path: Path) -> Path:
    """The esphome folder with test secrets, so that a user's own secrets are never touched."""
    copy = tmp_path / "esphome"
    shutil.copytree(ESPHOME_DIR, copy, ignore=shutil.ignore_patterns(".esphome", "secrets.yaml"))
    (copy / "secrets.yaml").write_text(TEST_SECRETS)
    return copy


def test_there_are_device_files() -> None:
    assert {
        "octoplugout-s26.yaml",
        "octoplugout-sonoff-basic.yaml",
        "octoplugout-esp32-relay.yaml",
        "octoplugout-host.yaml",
    } <= set(DEVICE_FILES)


@pytest.mark.parametrize("device_file", DEVICE_FILES)
def test_device_file_is_valid(esphome_copy: Path, device_file: str) -> None:
    result = esphome("config", device_file, cwd=esphome_copy, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_secrets_have_no_defaults(esphome_copy: Path) -> None:
    (esphome_copy / "secrets.yaml").unlink()
    result = esphome("config", "octoplugout-s26.yaml", cwd=esphome_copy, timeout=120)
    assert result.returncode != 0


def test_a_board_without_the_relay_is_invalid(esphome_copy: Path) -> None:
    wiring = esphome_copy / "packages" / "gpio_plug.yaml"
    wiring.write_text(wiring.read_text().replace("id: relay_output", "id: some_other_relay"))
    result = esphome("config", "octoplugout-s26.yaml", cwd=esphome_copy, timeout=120)
    assert result.returncode != 0
    assert "relay_output" in result.stdout + result.stderr
