"""Errors of the signing layer, in the package's one hierarchy (:mod:`packager.errors`).

Input errors (exit 2) are about key files and passphrases the user gave; check failures (exit 1)
are about signed material that does not verify. No message ever contains a passphrase.
"""

from __future__ import annotations

from packager.errors import CheckFailed, InputError


class KeyFileError(InputError):
    """A key file that cannot be used: missing, unreadable, not a key, the wrong kind of key."""


class WrongPassphrase(KeyFileError):
    """The passphrase does not decrypt the private key (or the encrypted key is corrupt)."""


class UnencryptedPrivateKey(KeyFileError):
    """A private key stored in the clear; airgap keeps private keys as encrypted PKCS#8."""


class UnsupportedKeyAlgorithm(KeyFileError):
    """A key of an algorithm airgap does not sign with (RSA, ECDSA P-384, ...)."""


class PassphraseUnavailable(InputError):
    """No passphrase could be had: the environment variable is unset and there is no terminal."""


class SignatureFormatError(CheckFailed):
    """A signature file that is not what airgap writes (not base64, empty, too large)."""


class EnvelopeError(CheckFailed):
    """A DSSE envelope that is malformed, of an unexpected payload type, or not validly signed."""


class StatementError(CheckFailed):
    """A DSSE payload that is not the in-toto Statement v1 airgap writes."""


class OmsError(CheckFailed):
    """An OpenSSF model signature (model.sig) that is malformed or does not verify."""
