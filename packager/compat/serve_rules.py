"""Rules for a target's ``serve:`` section (codes AG600-AG610).

| code  | severity | rule |
|-------|----------|------|
| AG600 | error    | ``serve.image`` names neither a role nor a ref of the target's images |
| AG601 | error    | a JSON path of an expectation is not one the probe reads (``$``, ``.name``, ``[N]``, ``['name']``) |
| AG602 | error    | an expectation gives no test, or more than one, of equals / range / length / contains |
| AG603 | error    | a ``range`` whose minimum is above its maximum |
| AG604 | error    | two checks with one name |
| AG605 | error    | a GET with a body |
| AG606 | error    | the weights mount would hide a system folder of the image (/, /usr, /etc, ...) |
| AG607 | warning  | ``$(NAME)`` names no variable of ``serve.env`` nor AIRGAP_SERVE_HOST / AIRGAP_SERVE_PORT |
| AG608 | warning  | ``serve.env`` sets AIRGAP_SERVE_HOST or AIRGAP_SERVE_PORT, which the probe and renderers set |
| AG609 | warning  | ``device_resource`` for a target without an accelerator (vendor none) |
| AG610 | error    | port, readiness or checks given neither by the target's serve nor the shared one |

Pure: a typed Target in, findings out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from packager.findings import Severity
from packager.manifest.model import Serve, Target
from packager.manifest.yamlsource import JsonPath
from packager.probe.serve import HOST_VAR, PORT_VAR, PathError, parse_path, referenced

#: where a mount would hide what the image needs to run
SYSTEM_FOLDERS = frozenset(
    {"/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys",
     "/usr", "/var", "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin", "/tmp"}
)  # fmt: skip
TESTS = ("equals", "range", "length", "contains")

Add = Callable[..., None]


def check_serve(add: Add, target: Target, raw: Callable[[JsonPath], Any]) -> None:
    """Every finding about ``target.serve``. ``add(severity, code, message, path, hint)`` records
    one; ``raw(path)`` reads the manifest's value at a path (None when absent)."""
    serve = target.serve
    if serve is None:
        return
    at = serve.json_path
    for key in serve.missing:
        add(
            Severity.ERROR,
            "AG610",
            f"the serve section of {'target ' + repr(target.id) if target.id else 'the target'} "
            f"has no {key!r}",
            at,
            f"give serve.{key} in the target's serve or in the shared one",
        )
    _image(add, target, serve, at)
    _mount(add, serve, at)
    _variables(add, serve, at)
    if serve.device_resource is not None and target.accelerator.vendor == "none":
        add(
            Severity.WARNING,
            "AG609",
            f"device_resource {serve.device_resource!r} is given, but the target has no accelerator",
            (*at, "device_resource"),
            "remove it, or set accelerator.vendor; rendering requests no device for vendor none",
        )
    seen: dict[str, JsonPath] = {}
    for check in serve.checks:
        if check.name in seen:
            add(
                Severity.ERROR,
                "AG604",
                f"two checks are named {check.name!r}",
                (*check.json_path, "name"),
                "give each check its own name: the probe reports them by name",
            )
        seen.setdefault(check.name, check.json_path)
        if check.method == "GET" and check.has_body:
            add(
                Severity.ERROR,
                "AG605",
                f"check {check.name!r} sends a body with GET",
                (*check.json_path, "method"),
                "use method: POST (the default when a body is given), or drop the body",
            )
        for e in check.json:
            _expectation(add, e.json_path, raw(e.json_path))


def _image(add: Add, target: Target, serve: Serve, at: JsonPath) -> None:
    roles = {i.role for i in target.images}
    refs = {i.ref for i in target.images}
    if serve.image in roles or serve.image in refs:
        return
    listed = ", ".join(sorted(f"{i.ref} ({i.role})" for i in target.images)) or "none"
    add(
        Severity.ERROR,
        "AG600",
        f"serve.image {serve.image!r} is neither a role nor a ref of the target's images "
        f"(images: {listed})",
        (*at, "image") if serve.image != "serving" else at,
        "add the serving image under runtime.images (role: serving), or name one of them",
    )


def _mount(add: Add, serve: Serve, at: JsonPath) -> None:
    folder = "/" + "/".join(p for p in serve.weights.split("/") if p)
    if folder in SYSTEM_FOLDERS:
        add(
            Severity.ERROR,
            "AG606",
            f"mounting the weights at {serve.weights} would hide the image's {folder}",
            (*at, "weights"),
            "mount them at a folder of their own, e.g. /weights or /models/NAME",
        )


def _variables(add: Add, serve: Serve, at: JsonPath) -> None:
    known = set(serve.env) | {HOST_VAR, PORT_VAR}
    for key in (HOST_VAR, PORT_VAR):
        if key in serve.env:
            add(
                Severity.WARNING,
                "AG608",
                f"serve.env sets {key}, which the probe and the rendered deployments set "
                "to where the server must listen",
                (*at, "env", key),
                f"remove it and say $({key}) where the server takes its address",
            )
    places: list[tuple[JsonPath, list[str]]] = [
        ((*at, "command"), list(serve.command)),
        ((*at, "args"), list(serve.args or ())),
    ]
    places += [((*at, "env", k), [v]) for k, v in serve.env.items()]
    for path, texts in places:
        for name in referenced(texts):
            if name not in known:
                add(
                    Severity.WARNING,
                    "AG607",
                    f"$({name}) names no variable of serve.env: it is passed on as written",
                    path,
                    f"define {name} under serve.env, or write $$({name}) for a literal $({name})",
                )


def _expectation(add: Add, at: JsonPath, raw: Any) -> None:
    if not isinstance(raw, dict):
        return
    try:
        parse_path(str(raw.get("path")))
    except PathError as exc:
        add(
            Severity.ERROR,
            "AG601",
            f"cannot read the JSON path: {exc}",
            (*at, "path"),
            "write $ then .name, [N] or ['name'] steps, e.g. $.data[0].embedding",
        )
    given = [k for k in TESTS if k in raw]
    if len(given) != 1:
        add(
            Severity.ERROR,
            "AG602",
            "an expectation needs exactly one of equals, range, length, contains"
            + (f" (given: {', '.join(given)})" if given else " (none given)"),
            at,
            "split it into one expectation per test",
        )
    span = raw.get("range")
    if (
        isinstance(span, list)
        and len(span) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in span)
        and span[0] > span[1]
    ):
        add(
            Severity.ERROR,
            "AG603",
            f"range [{span[0]}, {span[1]}]: the minimum is above the maximum",
            (*at, "range"),
            "write [min, max]",
        )
