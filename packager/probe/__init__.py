"""The hardware probe: stdlib-only, Python >= 3.8, shipped inside every bundle as airgap/probe/.

Entry point: :func:`packager.probe.cli.main` (``airgap probe``, ``python3 -m packager.probe``,
``python3 BUNDLE/airgap/probe``). Every module here imports only the standard library and its
siblings (relative imports), so the folder runs on its own under any package name.
"""

#: the probe's own version, in every report
__version__ = "1.0"
