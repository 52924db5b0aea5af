"""The golden bundle: a fixed manifest, lock and Ed25519 key build a byte-identical tar.

`tests/fixtures/golden/` holds the inputs and the lock; the key is derived from a fixed seed (a
test key, never a real one). The digests below were recorded before the code was restructured
(issue "house plan"); a change that moves code must keep them. A change that means to alter the
bundle's bytes (the descriptor's content, the probe payload, the archive) updates them in the same
commit and says why in its message.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.golden import build_golden

#: sha256 of airgap/bundle.json (the content digest) and of the whole tar
CONTENT_DIGEST = "sha256:72d734b1ed4da23aa288ed50e116621937df8d47e7c526e75118314e3d3c668d"
TAR_SHA256 = "dd8cbc16b92198050097f502bd7ac7b0adc1a5b3726441462077523d36769e8d"


def test_the_golden_bundle_is_byte_identical(tmp_path: Path) -> None:
    from packager.commands.inspect_bundle import content_digest

    (tar,) = build_golden(tmp_path / "out")
    assert content_digest(tar) == CONTENT_DIGEST
    assert hashlib.sha256(tar.read_bytes()).hexdigest() == TAR_SHA256
