"""The golden bundle: a fixed manifest, lock and Ed25519 key build a byte-identical tar.

`tests/fixtures/golden/` holds the inputs and the lock; the key is derived from a fixed seed (a
test key, never a real one). The digests below were recorded before the code was restructured
(issue "house plan"); a change that moves code must keep them. A change that means to alter the
bundle's bytes (the descriptor's content, the probe payload, the archive) updates them in the same
commit and says why in its message.

History: 72d734b1.../dd8cbc16... from before the restructure, kept through it (issue 12); changed
by the hardening (issue 14): bundle.json lists the attestation's payload and the manifest's
validity (valid_for_s), and each signature has a signed time record beside it; then by the
site-truth probe (issue 13) and the serving check (issue 17), which change the probe it carries; then
by the model-signature record (issue 18) and the fuzz fixes to the probe's readers; then by the
probe that runs nothing from an unverified bundle (issue 14); then the tar alone (bundle.json is
unchanged) by the archive order of issue 15: the blobs first, the model files in the lock's order,
so a cold build writes each model file as it reads and hashes it; then by the probe it carries
(issue 15: a delta's probe names its version's content digest, and refuses a number too large to write back).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.golden import build_golden

#: sha256 of airgap/bundle.json (the content digest) and of the whole tar
CONTENT_DIGEST = "sha256:46c377d4f4b5f7888f3780b52bc7e6a6a0195526928ced34b28d1692e997ec0b"
TAR_SHA256 = "045c91344072524b57eaa3866aab6d616e18f88466a50e9bbc96c508d107d1af"


def test_the_golden_bundle_is_byte_identical(tmp_path: Path) -> None:
    from packager.commands.inspect_bundle import content_digest

    (tar,) = build_golden(tmp_path / "out")
    assert content_digest(tar) == CONTENT_DIGEST
    assert hashlib.sha256(tar.read_bytes()).hexdigest() == TAR_SHA256
