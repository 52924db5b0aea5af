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
| AG620 | error    | ``serve.install.file_mode`` does not let the owner read the files |
| AG621 | error    | ``serve.install.dir_mode`` does not let the owner list and enter the folders |
| AG622 | warning  | ``serve.install`` gives group or others read on files, but its folders do not let them in |
| AG623 | warning  | a MindIE server with files or folders wider than MindIE takes (files 0640, folders 0750), or with no serving user (uid) |

MindIE's rule (the source of AG623): its weight check refuses a file or folder whose mode
exceeds its limit ("Check Other group permission failed: Current permission is 4, but required
no greater than 0"); files at most 0640, folders at most 0750, owned by the user the server runs
as (MindIE's deployment documentation on weight permissions and its error text above, as
reported in MindIE/vLLM-Ascend deployment threads; recorded in issue 22). The same rule, over a
real tree, is the oracle of tests/support/mindie.py.

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
    _install(add, target, serve)
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


#: MindIE's limits (AG623): the widest modes its weight check takes
MINDIE_FILE_MAX = 0o640
MINDIE_DIR_MAX = 0o750


def _install(add: Add, target: Target, serve: Serve) -> None:
    inst = serve.install
    if inst is None:
        return
    at = inst.json_path
    if not inst.file_mode & 0o400:
        add(
            Severity.ERROR,
            "AG620",
            f"serve.install.file_mode {inst.file_mode:04o} does not let the owner read the files",
            (*at, "file_mode"),
            "give the owner read: e.g. 0440, or 0640 for MindIE",
        )
    if inst.dir_mode & 0o500 != 0o500:
        add(
            Severity.ERROR,
            "AG621",
            f"serve.install.dir_mode {inst.dir_mode:04o} does not let the owner list and enter "
            "the folders",
            (*at, "dir_mode"),
            "give the owner read and execute: e.g. 0550, or 0750 for MindIE",
        )
    for who, read, enter in (("group", 0o040, 0o010), ("others", 0o004, 0o001)):
        if inst.file_mode & read and not inst.dir_mode & enter:
            add(
                Severity.WARNING,
                "AG622",
                f"serve.install.file_mode {inst.file_mode:04o} lets {who} read the files, but "
                f"dir_mode {inst.dir_mode:04o} does not let {who} into the folders",
                (*at, "dir_mode"),
                f"add execute for {who} to dir_mode, or take read from file_mode",
            )
    if _is_mindie(target, serve):
        wide = []
        if inst.file_mode & ~MINDIE_FILE_MAX:
            wide.append(f"files {inst.file_mode:04o} (at most {MINDIE_FILE_MAX:04o})")
        if inst.dir_mode & ~MINDIE_DIR_MAX:
            wide.append(f"folders {inst.dir_mode:04o} (at most {MINDIE_DIR_MAX:04o})")
        if inst.uid is None:
            wide.append("no uid: the files stay the installer's, not the serving user's")
        if wide:
            add(
                Severity.WARNING,
                "AG623",
                'MindIE refuses weights like these ("Check Other group permission failed"): '
                + "; ".join(wide),
                at,
                'serve.install: {file_mode: "0640", dir_mode: "0750", uid: UID, gid: GID} '
                "with the user MindIE runs as (HwHiAiUser is often 1000)",
            )


def _is_mindie(target: Target, serve: Serve) -> bool:
    refs = [i.ref for i in target.images if serve.image in (i.role, i.ref)]
    return any("mindie" in r.lower() for r in refs)


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
