"""Which target of a combined bundle this host runs, for ``airgap install`` without
``--target``: the host's accelerators detected as the probe detects them, and its platform,
against each target's descriptor (packager.bundle.combined.match_host decides)."""

from __future__ import annotations

from pathlib import Path

from packager.bundle.reader import Bundle
from packager.util.progress import Reporter


def target_for_host(b: Bundle, prefix_path: Path, rep: Reporter) -> str | None:
    """For a combined bundle given no ``--target`` (``b``, opened by the Verifier): the one
    target this host fits (its accelerators, detected as the probe does, and its platform),
    read from each target's descriptor only to choose; the chosen one is then verified as any
    bundle. None for a single-target bundle, or when no target or several fit (then the
    Verifier asks, listing them)."""
    from packager.bundle.combined import TargetView, match_host, targets_of
    from packager.bundle.errors import BundleFormatError

    try:
        targets = targets_of(b.members())
        if not targets:
            return None
        specs = {}
        for t in targets:
            _, doc = TargetView(b, t).descriptor()
            specs[t] = (doc.target.accelerator.vendor, doc.target.platform)
    except BundleFormatError:
        return None  # the Verifier names what is wrong
    rep.phase("detecting this host's accelerators (a combined bundle: which target?)")
    from packager.compat.probe_facts import export_probe_facts
    from packager.probe.chipfacts import load_facts
    from packager.probe.detect import detect
    from packager.probe.system import LiveSystem

    facts, _ = load_facts(export_probe_facts())
    where = prefix_path if prefix_path.exists() else prefix_path.parent
    det = detect(LiveSystem(15), facts, str(where))
    vendors = {
        v
        for v, present in (("nvidia", det.nvidia.present), ("huawei", det.ascend.present))
        if present
    }
    return match_host(specs, vendors, det.host.platform)
