#!/usr/bin/env python3
"""Turn a root file system tar into a one-layer OCI image layout, byte for byte reproducibly.

    make_oci.py ROOT.tar OUT_DIR REF PLATFORM [KEY=VALUE ...]

OUT_DIR (new; written under a temporary name and renamed) gets ``oci-layout``, ``index.json`` and
``blobs/sha256/``: the tar itself as the one uncompressed layer, an image config (created at
SOURCE_DATE_EPOCH, default 0) and the image manifest; ``index.json`` names it with
``org.opencontainers.image.ref.name`` = REF's tag. PLATFORM is linux/amd64 or linux/arm64.
KEY=VALUE pairs set the config: ``entrypoint=JSON list``, ``cmd=JSON list``, ``port=N``,
``env=NAME=VALUE`` (repeatable), ``workdir=PATH``. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time


def canonical(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def put(blobs: str, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as fh:
        fh.write(data)
    return digest


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    root_tar, out, ref, platform = argv[:4]
    os_name, _, arch = platform.partition("/")
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    ports: dict[str, dict[str, str]] = {}
    workdir = "/"
    for item in argv[4:]:
        key, _, value = item.partition("=")
        if key == "entrypoint":
            entrypoint = json.loads(value)
        elif key == "cmd":
            cmd = json.loads(value)
        elif key == "env":
            env.append(value)
        elif key == "port":
            ports[f"{int(value)}/tcp"] = {}
        elif key == "workdir":
            workdir = value
        else:
            print(f"make_oci.py: unknown setting {key!r}", file=sys.stderr)
            return 2
    if os.path.exists(out):
        print(f"make_oci.py: {out} exists", file=sys.stderr)
        return 2
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".", dir=parent)
    try:
        blobs = os.path.join(work, "blobs", "sha256")
        os.makedirs(blobs)
        # the layer: the tar as it is, hashed while copied
        h = hashlib.sha256()
        size = 0
        tmp_layer = os.path.join(blobs, ".layer")
        with open(root_tar, "rb") as src, open(tmp_layer, "wb") as dst:
            while True:
                chunk = src.read(4 << 20)
                if not chunk:
                    break
                h.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        layer = h.hexdigest()
        os.replace(tmp_layer, os.path.join(blobs, layer))
        config: dict[str, object] = {"Env": env, "WorkingDir": workdir}
        if entrypoint is not None:
            config["Entrypoint"] = entrypoint
        if cmd is not None:
            config["Cmd"] = cmd
        if ports:
            config["ExposedPorts"] = ports
        config_bytes = canonical(
            {
                "architecture": arch,
                "os": os_name,
                "created": created,
                "config": config,
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer}"]},
                "history": [{"created": created, "created_by": "scripts/serving/build-image.sh"}],
            }
        )
        config_digest = put(blobs, config_bytes)
        manifest = canonical(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": f"sha256:{config_digest}",
                    "size": len(config_bytes),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": f"sha256:{layer}",
                        "size": size,
                    }
                ],
            }
        )
        manifest_digest = put(blobs, manifest)
        tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": f"sha256:{manifest_digest}",
                    "size": len(manifest),
                    "platform": {"architecture": arch, "os": os_name},
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }
            ],
        }
        with open(os.path.join(work, "index.json"), "wb") as fh:
            fh.write(canonical(index))
        with open(os.path.join(work, "oci-layout"), "wb") as fh:
            fh.write(b'{"imageLayoutVersion":"1.0.0"}')
        os.rename(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"sha256:{manifest_digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
