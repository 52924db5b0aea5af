"""``--serve``: the serving check as probe checks and the report's ``serve`` document.

One check row for the server itself (``serve``: started, ready, time-to-ready) and one per golden
request (``serve check NAME``: status, expectations and latency). A FAIL makes the probe exit 1,
a NOT RUN (no engine, no image, no device, a recorded machine) exit 3, as for every other check.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from .bundle import Requirements
from .checks import FAIL, NOT_RUN, PASS, Check
from .serve import ServeReport, run_serve

_REMEDY_NOT_READY = (
    "read the container's log lines in the JSON report (serve.logs); check the image, the "
    "weights mount (serve.weights) and the readiness path"
)


def serve_checks(
    req: Requirements | None,
    *,
    live: bool,
    engine: str,
    network: str,
    timeout: float,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Check], dict[str, Any]]:
    """The checks and the report's ``serve`` document."""
    if req is None:
        report = ServeReport(NOT_RUN, "no bundle: --serve needs --installed NAME --prefix DIR")
    elif req.serve_spec is None:
        report = ServeReport(NOT_RUN, "the bundle has no serve section (manifest `serve:`)")
    elif not live:
        report = ServeReport(NOT_RUN, "a recorded machine: the server runs only on the live host")
    elif req.location[0] != "installed":
        report = ServeReport(
            NOT_RUN,
            "the serving check mounts the installed weights: use --installed NAME --prefix DIR",
        )
    else:
        weights = os.path.join(req.location[1], "model")
        try:
            report = run_serve(
                req.serve_spec,
                req.target_spec,
                req.image_specs,
                weights,
                engine=engine,
                network=network,
                timeout=timeout,
                progress=progress,
            )
        except (OSError, ValueError, TypeError) as exc:  # the probe reports, it does not crash
            report = ServeReport(NOT_RUN, f"the serving check failed: {type(exc).__name__}: {exc}")
    remedy = None
    if report.status == FAIL and not report.checks:
        remedy = _REMEDY_NOT_READY
    elif report.status == NOT_RUN and "not in the" in report.reason:
        remedy = "load the bundle's images into the engine first"
    checks = [Check("serve", "serving", report.status, report.reason, remedy)]
    for c in report.checks:
        checks.append(
            Check(
                "serve",
                f"serve check {c.name}",
                c.status,
                c.reason,
                None if c.status == PASS else "the server answers, but not what the bundle expects",
            )
        )
    return checks, report.to_json()
