"""Chip and stack knowledge: facts as data (facts.yaml) and the rules that apply them."""

from packager.compat.checks import check_manifest
from packager.compat.facts import Chip, Facts, load_facts, resolve_chip

__all__ = ["Chip", "Facts", "check_manifest", "load_facts", "resolve_chip"]
