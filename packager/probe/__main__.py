"""Run the probe: ``python3 -m packager.probe`` or, inside a bundle, ``python3 airgap/probe``.

Run as a folder, ``__package__`` is empty: the folder is imported as a package under its own name
(``probe``; ``airgap_probe`` if that name is not an identifier), so its relative imports work, and
the folder itself is taken off ``sys.path`` so that none of its modules shadows another.
"""

from __future__ import annotations

import sys


def _standalone() -> int:
    import importlib
    import importlib.util
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    name = os.path.basename(here)
    if not name.isidentifier():
        name = "airgap_probe"
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(here, "__init__.py"), submodule_search_locations=[here]
    )
    if spec is None or spec.loader is None:
        print(f"cannot load the probe from {here}", file=sys.stderr)
        return 2
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    cli = importlib.import_module(name + ".cli")
    try:
        shown = os.path.relpath(here)
    except (OSError, ValueError):
        shown = here
    return int(cli.main(sys.argv[1:], prog="python3 " + shown))


def _run() -> int:
    if __package__:
        from .cli import main

        return main(sys.argv[1:])
    return _standalone()


if __name__ == "__main__":
    sys.exit(_run())
