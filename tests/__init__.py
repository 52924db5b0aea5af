"""Tests for the airgap packager."""
