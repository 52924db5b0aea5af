"""PKCS#11 URIs (RFC 7512) for --key: what names a signing key, and what is refused."""

from __future__ import annotations

import pytest

from packager.signing.pkcs11_uri import Pkcs11UriError, is_pkcs11_uri, parse_pkcs11_uri


@pytest.mark.parametrize(
    ("text", "token", "obj", "key_id", "module"),
    [
        ("pkcs11:token=release;object=airgap", "release", "airgap", None, None),
        ("PKCS11:token=release;object=airgap", "release", "airgap", None, None),
        ("pkcs11:token=My%20Token;object=k%3B1", "My Token", "k;1", None, None),
        ("pkcs11:token=t;id=%01%ff", "t", None, b"\x01\xff", None),
        ("pkcs11:token=t;object=k;type=private", "t", "k", None, None),
        (
            "pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so",
            "t",
            "k",
            None,
            "/usr/lib/softhsm/libsofthsm2.so",
        ),
        ("pkcs11:serial=0123abcd;object=k", None, "k", None, None),
    ],
)
def test_a_uri_names_a_token_and_a_key(
    text: str, token: str | None, obj: str | None, key_id: bytes | None, module: str | None
) -> None:
    uri = parse_pkcs11_uri(text)
    assert (uri.token, uri.object, uri.id, uri.module_path) == (token, obj, key_id, module)
    assert is_pkcs11_uri(text)
    # what messages show parses back to the same key, and never holds a PIN
    again = parse_pkcs11_uri(uri.display())
    assert (again.token, again.object, again.id) == (token, obj, key_id)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("pkcs11:token=t;object=k?pin-value=1234", "PIN in the pkcs11: URI is refused"),
        ("pkcs11:token=t;object=k?pin-source=file:/tmp/pin", "PIN in the pkcs11: URI is refused"),
        ("pkcs11:token=t;objekt=k", "did you mean 'object'"),
        ("pkcs11:token=t;object=k;object=j", "object is given twice"),
        ("pkcs11:object=k", "names no token"),
        ("pkcs11:token=t", "names no key"),
        ("pkcs11:token=t;object=k;type=public", "type=public cannot sign"),
        ("pkcs11:token=t;object", "is not NAME=VALUE"),
        ("pkcs11:token=a b;object=k", "no spaces or control characters"),
        ("pkcs11:token=t;object=k;slot-id=x1", "not a decimal number"),
        ("pkcs11:token=t;object=%ff", "not UTF-8"),
        ("pkcs11:token=t;object=k?module-name=softhsm2", "module-name is not supported"),
        ("/keys/release.key.pem", "not a pkcs11: URI"),
    ],
)
def test_a_bad_uri_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(Pkcs11UriError) as exc:
        parse_pkcs11_uri(text)
    assert says in exc.value.message
    assert exc.value.exit_code == 2
