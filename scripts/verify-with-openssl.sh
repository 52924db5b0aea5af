#!/usr/bin/env bash
# scripts/verify-with-openssl.sh BUNDLE PUBKEY
#
# Verifies an airgap bundle for a site that does not have (or trust) airgap, with only tar,
# sha256sum, base64 and openssl (plus grep/sed/find/sort from coreutils and findutils):
#   1. BUNDLE is a .airgap.tar, or a .airgap.parts.json whose parts are checked and concatenated;
#   2. the tar holds only regular files and folders, no absolute or .. paths (checked before
#      anything is extracted), then it is extracted into a private temporary folder;
#   3. airgap/bundle.json.sig/<keyid>.sig, keyid = sha256 of PUBKEY in DER, verifies over
#      airgap/bundle.json (ECDSA P-256 with `openssl dgst -sha256 -verify`, Ed25519 with
#      `openssl pkeyutl -verify -rawin`);
#   4. every blob's sha256 is its name, every blob and file bundle.json lists is there with its
#      sha256, and nothing else is;
#   5. airgap/model.sig (the OpenSSF model signature), when there is one: its DSSE payload is the
#      statement whose sha256 bundle.json pins, and whether PUBKEY signed it (a note otherwise).
# Prints VERIFIED and exits 0, or prints each FAILED line and exits 1; 2 for usage errors.
set -euo pipefail
export LC_ALL=C

[[ $# -eq 2 ]] || { echo "usage: $0 BUNDLE(.airgap.tar|.airgap.parts.json) PUBKEY.pem" >&2; exit 2; }
bundle=$1 pub=$2
[[ -f "$bundle" ]] || { echo "no such bundle: $bundle" >&2; exit 2; }
[[ -f "$pub" ]] || { echo "no such public key: $pub" >&2; exit 2; }
pub="$(cd "$(dirname "$pub")" && pwd)/$(basename "$pub")"
bundle="$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() { echo "FAILED: $*"; failed=1; }

# 1. parts: each listed part's sha256, then one tar
tar_file=$bundle
if [[ "$bundle" == *.airgap.parts.json ]]; then
    dir=$(dirname "$bundle")
    tar_file="$work/bundle.tar"
    : >"$tar_file"
    # the index is written by airgap with one "name"/"sha256" per part, in order
    names=$(grep -o '"name": "[^"]*"' "$bundle" | sed 's/.*: "\(.*\)"/\1/')
    sums=$(grep -o '"sha256": "[0-9a-f]\{64\}"' "$bundle" | sed 's/.*: "\(.*\)"/\1/')
    paste -d' ' <(echo "$names") <(echo "$sums") | while read -r name sum; do
        [[ "$name" == */* ]] && { echo "FAILED: part name $name"; exit 1; }
        got=$(sha256sum "$dir/$name" 2>/dev/null | cut -d' ' -f1) || got=missing
        [[ "$got" == "$sum" ]] || { echo "FAILED: part $name: sha256 $got, the index says $sum"; exit 1; }
        cat "$dir/$name" >>"$tar_file"
    done || exit 1
fi

# 2. the listing first: only files and folders, no absolute or .. paths
listing=$(tar -tvf "$tar_file") || { echo "FAILED: not a readable tar"; exit 1; }
if grep -v '^[-d]' <<<"$listing" >/dev/null; then
    fail "the tar holds links or special files: $(grep -v '^[-d]' <<<"$listing" | head -3 | tr '\n' ' ')"
fi
names=$(tar -tf "$tar_file")
if grep -E '(^/|(^|/)\.\.(/|$))' <<<"$names" >/dev/null; then
    fail "the tar holds absolute or .. paths"
fi
[[ $failed -eq 0 ]] || exit 1
mkdir "$work/b"
tar --no-same-owner --no-same-permissions -xf "$tar_file" -C "$work/b"
cd "$work/b"
[[ -f airgap/bundle.json ]] || { echo "FAILED: no airgap/bundle.json"; exit 1; }

# 3. the signature by PUBKEY
keyid=$(openssl pkey -pubin -in "$pub" -outform DER | sha256sum | cut -d' ' -f1)
sig="airgap/bundle.json.sig/$keyid.sig"
if [[ ! -f "$sig" ]]; then
    fail "no signature by key $keyid"
else
    base64 -d "$sig" >"$work/sig.bin" || fail "signature is not base64"
    if openssl pkey -pubin -in "$pub" -noout -text | grep -q ED25519; then
        openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in airgap/bundle.json \
            -sigfile "$work/sig.bin" >/dev/null 2>&1 || fail "the signature does not verify over bundle.json"
    else
        openssl dgst -sha256 -verify "$pub" -signature "$work/sig.bin" airgap/bundle.json \
            >/dev/null 2>&1 || fail "the signature does not verify over bundle.json"
    fi
fi
[[ $failed -eq 0 ]] || exit 1  # nothing else in the bundle is trusted before the signature

# 4. every blob and listed file; nothing extra
# bundle.json is written with sorted keys and a 2-space indent: the top-level "blobs" and "files"
# lists are the line ranges from '  "blobs": [' and '  "files": [' to the next '  ]'
section() { sed -n "/^  \"$1\": \[/,/^  \]/p" airgap/bundle.json; }
section blobs | grep -o '"digest": "sha256:[0-9a-f]\{64\}"' | sed 's/.*sha256:\([0-9a-f]*\)"/\1/' | sort -u >"$work/blobs"
: >"$work/listed"
while read -r d; do
    echo "blobs/sha256/$d" >>"$work/listed"
    [[ -f "blobs/sha256/$d" ]] || { fail "blob $d is missing"; continue; }
    got=$(sha256sum "blobs/sha256/$d" | cut -d' ' -f1)
    [[ "$got" == "$d" ]] || fail "blob $d: content is sha256 $got"
done <"$work/blobs"
# files: each entry's "path" and "sha256" lines follow each other (sorted keys)
section files | grep -A1 '"path": "' |
    grep -o '"\(path\|sha256\)": "[^"]*"' | sed 's/.*: "\(.*\)"/\1/' | paste -d' ' - - >"$work/files"
while read -r path sum; do
    echo "$path" >>"$work/listed"
    [[ -f "$path" ]] || { fail "$path is missing"; continue; }
    got=$(sha256sum "$path" | cut -d' ' -f1)
    [[ "$got" == "$sum" ]] || fail "$path: sha256 $got, bundle.json says $sum"
done <"$work/files"
{ echo airgap/bundle.json; echo airgap/attestation.dsse.json; } >>"$work/listed"

# 5. airgap/model.sig: a Sigstore bundle whose DSSE payload bundle.json pins by sha256
if [[ -f airgap/model.sig ]]; then
    echo airgap/model.sig >>"$work/listed"
    want=$(sed -n '/^  "model_signature": {/,/^  }/p' airgap/bundle.json |
        grep -o '"statement_sha256": "[0-9a-f]\{64\}"' | sed 's/.*: "\(.*\)"/\1/')
    b64() { grep -o "\"$1\": \"[A-Za-z0-9+/=]*\"" airgap/model.sig | head -1 | sed 's/.*: "\(.*\)"/\1/'; }
    if [[ -z "$want" ]]; then
        fail "airgap/model.sig: bundle.json has no model_signature"
    elif ! b64 payload | base64 -d >"$work/payload" 2>/dev/null; then
        fail "airgap/model.sig: its payload is not base64"
    elif [[ "$(sha256sum "$work/payload" | cut -d' ' -f1)" != "$want" ]]; then
        fail "airgap/model.sig signs another statement than bundle.json pins"
    else
        type=application/vnd.in-toto+json
        { printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c <"$work/payload")"; cat "$work/payload"; } >"$work/pae"
        if b64 sig | base64 -d >"$work/msig.bin" 2>/dev/null &&
            openssl dgst -sha256 -verify "$pub" -signature "$work/msig.bin" "$work/pae" >/dev/null 2>&1; then
            model_note="; model.sig signed by $keyid"
        else
            model_note="; model.sig (its statement checked) is signed by another key"
        fi
    fi
fi
find . -type f | sed 's|^\./||' | grep -v '^airgap/bundle\.json\.sig/[0-9a-f]\{64\}\.\(sig\|time\.json\)$' | sort >"$work/found"
sort -u "$work/listed" -o "$work/listed"
while read -r extra; do fail "$extra is not listed in bundle.json"; done < <(comm -23 "$work/found" "$work/listed")

if [[ $failed -eq 0 ]]; then
    echo "VERIFIED: $(grep -c . "$work/blobs") blobs and $(grep -c . "$work/files") files match bundle.json, signed by $keyid${model_note:-}"
    exit 0
fi
exit 1
