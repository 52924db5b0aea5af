"""Ascend stack rules: CANN against each chip, CANN against the NPU driver and firmware (the
Ascend HDK), and the serving images published per chip (MindIE, vLLM-Ascend) against both.

Codes: AG233 a CANN release that does not support a chip; AG234 a driver older than the HDK a
CANN release comes with; AG235 the same for firmware; AG236 a CANN constraint that matches no
release airgap knows; AG303 a serving image built for other hardware; AG304 a serving image whose
CANN the stack does not admit. The facts live in facts.yaml (each with its source); those marked
unsure give warnings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from packager.compat.facts import Chip, Facts, Hdk, ServingImage
from packager.compat.versions import Constraint, Version, VersionError
from packager.findings import Severity
from packager.manifest.model import Image, Target
from packager.manifest.yamlsource import JsonPath

#: (severity, code, message, path, hint) -> a finding in the manifest
Add = Callable[[Severity, str, str, JsonPath, "str | None"], None]


@dataclass(frozen=True)
class ImageTag:
    family: ServingImage
    version: str
    hardware: str  # the tag's hardware word: 800I-A2, A3, 300I-Duo; vllm-ascend: "", a3, 310p


def _tag(ref: str) -> tuple[str, str] | None:
    """(repository, tag) of an image reference; None without a tag."""
    name = ref.split("@", 1)[0]
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return None
    return repo.lower(), tag


def serving_image(facts: Facts, ref: str) -> ImageTag | None:
    """The MindIE or vLLM-Ascend release and hardware an image tag names."""
    parts = _tag(ref)
    if parts is None:
        return None
    repo, tag = parts
    last = repo.rsplit("/", 1)[-1]
    if last == "mindie" and "mindie" in facts.serving_images:
        family = facts.serving_images["mindie"]
        head = re.split(r"-py\d", tag, maxsplit=1)[0]
        version, _, hardware = head.partition("-")
        known = {h.lower(): h for h in family.hardware}
        if hardware.lower() not in known:
            return None
        return ImageTag(family, version, known[hardware.lower()])
    if last == "vllm-ascend" and "vllm-ascend" in facts.serving_images:
        family = facts.serving_images["vllm-ascend"]
        words = tag.lower().split("-")
        hardware = next((w for w in words[1:] if w in family.hardware and w), "")
        return ImageTag(family, words[0], hardware)
    return None


def _release(text: str) -> Version | None:
    try:
        return Version.parse(text)
    except VersionError:
        return None


def _parse(text: str | None) -> Constraint | None:
    if not text:
        return None
    try:
        return Constraint.parse(text)
    except VersionError:
        return None  # checks.py reports it (AG206)


def check_ascend_stack(facts: Facts, t: Target, chips: list[Chip], add: Add) -> None:
    if t.accelerator.vendor != "huawei":
        return
    at = (*t.json_path, "stack")
    st = t.stack
    cann = _parse(st.cann)
    driver = _parse(st.driver)
    firmware = _parse(st.firmware)
    admitted: list[Version] = []
    checked: set[Version] = set()  # CANN releases already held against the driver
    if cann is not None:
        low = cann.lower_bound()
        admitted = [
            r
            for r in facts.cann_releases
            if cann.admits(r) or (low is not None and low.startswith(r) and cann.admits(low))
        ]
        if not admitted:
            add(
                Severity.WARNING,
                "AG236",
                f"cann {cann} matches no CANN release airgap knows "
                f"({facts.cann_releases[0]} .. {facts.cann_releases[-1]})",
                (*at, "cann"),
                'write a released version such as ">=8.0.0"',
            )
        else:
            for chip in chips:
                _cann_for_chip(facts, chip, cann, admitted, (*at, "cann"), add)
            _hdk(facts, admitted[0], f"CANN {admitted[0]}", driver, firmware, at, add)
            checked.add(admitted[0])
    for image in t.images:
        _image(facts, image, chips, cann, driver, firmware, at, add, checked)


def _cann_for_chip(
    facts: Facts,
    chip: Chip,
    cann: Constraint,
    admitted: list[Version],
    path: JsonPath,
    add: Add,
) -> None:
    floor = facts.cann_min.get(chip.id)
    if floor is None:
        return
    bad = [r for r in admitted if r < floor.version]
    if not bad:
        return
    good = [r for r in admitted if r >= floor.version]
    known = [r for r in facts.cann_releases if r >= floor.version]
    span = f"{known[0]} .. {known[-1]}" if known else f">= {floor.version}"
    sure = floor.error_below is not None and bad[0] < floor.error_below
    if not good:
        message = (
            f"cann {cann} cannot run on {chip.id}: the first CANN that supports it is "
            f"{floor.version}"
        )
        if not sure and floor.error_below is not None:
            message += f" (releases from {floor.error_below} on may have had early access)"
        add(
            Severity.ERROR if sure else Severity.WARNING,
            "AG233",
            message,
            path,
            f'{chip.id} needs CANN {span}: write e.g. ">={floor.version}"',
        )
        return
    add(
        Severity.WARNING,
        "AG233",
        f"cann {cann} also admits CANN {bad[0]}, which does not support {chip.id} "
        f"(the first CANN for it is {floor.version})",
        path,
        f'narrow it: ">={floor.version}"',
    )


def _hdk(
    facts: Facts,
    release: Version,
    what: str,
    driver: Constraint | None,
    firmware: Constraint | None,
    at: JsonPath,
    add: Add,
) -> None:
    """``what`` (a CANN release, or an image carrying one) against the driver and firmware."""
    hdk: Hdk | None = next((h for r, h in facts.cann_hdk.items() if r == release), None)
    if hdk is None:
        return
    sev = Severity.WARNING if facts.cann_hdk_unsure else Severity.ERROR
    if driver is None:
        add(
            Severity.INFO,
            "AG234",
            f"no driver constraint; {what} is released with NPU driver {hdk.driver} (Ascend HDK)",
            at,
            f'add driver: ">={hdk.driver}" so that the probe holds the site to it',
        )
    else:
        _older_than(add, sev, "AG234", "driver", driver, hdk.driver, what, (*at, "driver"))
    if firmware is not None:
        _older_than(add, sev, "AG235", "firmware", firmware, hdk.firmware, what, (*at, "firmware"))


def _older_than(
    add: Add,
    severity: Severity,
    code: str,
    kind: str,
    constraint: Constraint,
    floor: Version,
    what: str,
    path: JsonPath,
) -> None:
    """``driver >=24.1.rc2`` admits a driver (or firmware) older than the HDK of ``what``."""
    low = constraint.lower_bound()
    if low is None or low < floor:
        add(
            severity,
            code,
            f"{kind} {constraint} admits NPU {kind} older than {floor}, the {kind} of the "
            f"Ascend HDK released with {what}",
            path,
            f'require {kind} ">={floor}" (or check hiascend.com\'s version-compatibility table '
            "for this CANN)",
        )


def _image(
    facts: Facts,
    image: Image,
    chips: list[Chip],
    cann: Constraint | None,
    driver: Constraint | None,
    firmware: Constraint | None,
    at: JsonPath,
    add: Add,
    checked: set[Version],
) -> None:
    tag = serving_image(facts, image.ref)
    if tag is None:
        return
    family = tag.family
    fits = set(family.hardware.get(tag.hardware, ()))
    ids = {c.id for c in chips}
    label = "MindIE" if family.name == "mindie" else "vLLM-Ascend"
    if ids and not ids <= fits:
        built = (
            f"{tag.hardware} ({', '.join(sorted(fits))})"
            if tag.hardware
            else (f"Atlas A2 ({', '.join(sorted(fits))})")
        )
        add(
            Severity.ERROR,
            "AG303",
            f"{label} image {image.ref!r} is built for {built}, not for "
            f"{', '.join(sorted(ids - fits))}: its operators are compiled per chip",
            (*image.json_path, "ref"),
            f"pick the {label} tag for the target hardware: "
            + ", ".join(
                f"{h or '(no suffix)'} ({'/'.join(c)})" for h, c in family.hardware.items()
            ),
        )
    release = _release(tag.version)
    carried = next(
        (c for r, c in family.cann.items() if release is not None and r == release), None
    )
    if carried is None:
        return
    if cann is not None and not cann.admits(carried):
        add(
            Severity.WARNING,
            "AG304",
            f"{label} {tag.version} ({image.ref}) is built on CANN {carried}, which cann {cann} "
            "does not admit",
            (*image.json_path, "ref"),
            f'set cann: ">={carried}" to match the image, or pick the {label} release built on '
            "your CANN",
        )
    if carried not in checked:
        checked.add(carried)
        what = f"CANN {carried} (in {label} {tag.version})"
        _hdk(facts, carried, what, driver, firmware, at, add)
