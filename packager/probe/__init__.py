"""The hardware probe: stdlib-only, Python >= 3.8, shipped inside every bundle as airgap/probe/."""
