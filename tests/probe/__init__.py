"""Tests for the stdlib-only hardware probe (packager/probe)."""
