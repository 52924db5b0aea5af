"""Helpers shared by the tests (real services, fixtures support)."""
