"""Keys, signatures, DSSE envelopes and in-toto/SLSA attestations.

- :mod:`~packager.signing.keys`: ECDSA P-256 / Ed25519 keys as PEM files, keyids, passphrases;
- :mod:`~packager.signing.signature`: detached signatures and the ``.sig`` file format;
- :mod:`~packager.signing.dsse`: DSSE v1 envelopes (PAE, sign, verify);
- :mod:`~packager.signing.intoto`: in-toto Statement v1 with SLSA provenance v1;
- :mod:`~packager.signing.canonical`: the one JSON serialization signed payloads use;
- :mod:`~packager.signing.errors`: the exceptions, in :mod:`packager.errors`' hierarchy.

Pure where it can be: only :func:`~packager.signing.keys.load_private_key`,
:func:`~packager.signing.keys.load_public_key` and the passphrase prompt touch the system.
"""
