"""Tests for OctoPlugout."""
