"""Fixtures shared by the OctoPlugout tests."""

from __future__ import annotations

from collections.abc import Generator
from unittest.mock import MagicMock, patch

import pytest

# Imported before the hass fixture starts, so that HA finds this custom integration.
import custom_components.octoplugout  # noqa: F401


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> Generator[None]:
    """Let Home Assistant load custom integrations in every test."""
    yield


@pytest.fixture
def mock_setup_entry() -> Generator[MagicMock]:
    """Keep config flow tests from setting the entry up."""
    with patch("custom_components.octoplugout.async_setup_entry", return_value=True) as setup_entry:
        yield setup_entry
