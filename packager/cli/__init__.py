"""Presentation only: the typer app, rendering for people and machines, progress bars."""
