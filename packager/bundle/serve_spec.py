"""The manifest's ``serve:`` (packager.manifest.model.Serve) as the descriptor carries it."""

from __future__ import annotations

from packager.bundle.descriptor import (
    JsonExpectationSpec,
    ReadinessSpec,
    ServeCheckSpec,
    ServeModes,
    ServeSpec,
)
from packager.manifest.model import Serve, ServeInstall


def serve_modes(install: ServeInstall) -> ServeModes:
    """``serve.install`` as the descriptor's ``install.modes``."""
    return ServeModes(install.file_mode, install.dir_mode, install.uid, install.gid)


def serve_spec(serve: Serve) -> ServeSpec:
    return ServeSpec(
        image=serve.image,
        command=tuple(serve.command),
        args=tuple(serve.args) if serve.args is not None else None,
        env=dict(sorted(serve.env.items())),
        port=serve.port,
        weights=serve.weights,
        readiness=ReadinessSpec(
            serve.readiness.path, serve.readiness.status, serve.readiness.timeout_s
        ),
        checks=tuple(
            ServeCheckSpec(
                c.name,
                c.method,
                c.path,
                c.body,
                c.has_body,
                c.status,
                c.latency_ms,
                tuple(JsonExpectationSpec(e.path, e.kind, e.value) for e in c.json),
            )
            for c in serve.checks
        ),
        device_resource=serve.device_resource,
    )
