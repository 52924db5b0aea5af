"""What the fuzzer mutates and which commands read it.

:func:`build_fixtures` makes the untouched inputs once (the golden bundle as a tar, a layout
folder and parts, keys, a trust policy, an install prefix, the manifests). Each kind of document
has a ``prepare`` function that, for one case, copies what the command needs into a fresh
workspace, puts the mutated document in place and says which ``airgap`` command line reads it.
A case's command, container and options come from its number and seeded ``Random``, so
(kind, seed, number) names it completely.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.cli import EXAMPLES
from tests.support.fuzz.mutate import Mutant, mutate, same_json
from tests.support.golden import FIXTURE, build_golden, signing_key, write_private_key

SPLIT_SIZE = 131072  # the golden tar (500 KB) in four parts
PASSPHRASE = "fuzz throwaway passphrase"
THROWAWAY_SEED = b"airgap fuzz throwaway key"
MACHINE = FIXTURE.parent / "machines" / "h100x8-driver550"
STEM = "golden-1.0.0"
BUNDLE_JSON = "airgap/bundle.json"
BYSTANDERS = ("notes.txt", "other-2.0.0.airgap.tar.000")


@dataclass(frozen=True)
class Fixtures:
    """The untouched inputs, built once per run and only ever read (or copied) by cases."""

    root: Path
    tar: Path
    layout: Path
    split: Path  # the folder holding the parts and their index
    index: Path
    pub: Path  # the golden public key (for --key)
    private: Path  # a throwaway encrypted private key (for sign --key)
    policy: Path  # a trust policy that trusts the golden key
    prefix: Path  # an install prefix holding the golden bundle
    manifests: tuple[Path, ...]  # seed manifests: golden.yaml first, then the examples


def _cli(*args: str) -> None:
    from tests.support.cli import cli

    r = cli(*args)
    if r.returncode != 0:
        raise RuntimeError(f"fixture step failed: airgap {' '.join(args)}\n{r.stdout}{r.stderr}")


def build_fixtures(root: Path) -> Fixtures:
    """Everything the cases start from, under ``root`` (about two seconds)."""
    from tests.support.golden import write_public_key

    root.mkdir(parents=True, exist_ok=True)
    (tar,) = build_golden(root / "tar")
    (layout,) = build_golden(root / "layout", layout_only=True)
    split_files = build_golden(root / "split", split=SPLIT_SIZE)
    index = next(p for p in split_files if p.name.endswith(".parts.json"))
    keys = root / "keys"
    keys.mkdir()
    pub = write_public_key(keys)
    private = write_private_key(keys, PASSPHRASE, THROWAWAY_SEED, "throwaway")
    write_public_key(keys, THROWAWAY_SEED, "throwaway")
    policy = root / "trust.json"
    _cli("trust", "init", str(policy))
    _cli("trust", "add", str(policy), str(pub), "--name", "golden builder")
    prefix = root / "site"
    _cli("install", str(tar), "--prefix", str(prefix), "--key", str(pub), "--no-probe")
    _cli("gc", "--prefix", str(prefix))  # a second audit log entry
    manifests = (FIXTURE / "golden.yaml", *sorted(EXAMPLES.glob("*.yaml")))
    return Fixtures(root, tar, layout, index.parent, index, pub, private, policy, prefix, manifests)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder``: relative path -> sha256 (links: their target)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            else:
                with open(path, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def clone_tree(src: Path, dst: Path, *, link: bool = False) -> None:
    """A copy of ``src`` at ``dst``: links stay links, hard-linked files stay linked together.
    ``link``: hard links to the source files instead of copies (for commands that only read)."""
    seen: dict[tuple[int, int], str] = {}

    def copy(s: str, d: str) -> str:
        st = os.lstat(s)
        first = seen.get((st.st_dev, st.st_ino))
        if first is not None:
            os.link(first, d)
        elif link:
            os.link(s, d)
        else:
            shutil.copy2(s, d)
        seen.setdefault((st.st_dev, st.st_ino), d)
        return d

    shutil.copytree(src, dst, symlinks=True, copy_function=copy)


def replace_file(path: Path, data: bytes) -> None:
    """``data`` at ``path`` as a new file (a hard link there is left to its other names)."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


# ------------------------------------------------------------------------------ cases


@dataclass
class Prepared:
    """One case, ready to run."""

    argv: list[str]
    label: str  # the command without paths, for the table: "verify --key"
    document: str  # what was mutated: "tar airgap/bundle.json"
    mutant: Mutant
    changed: bool  # the mutant's data differs from the original's
    judged: bool  # exit 0 on a changed document counts as ACCEPTED
    guard: Callable[[int], str | None] | None = None  # after the run: damage, or None
    replay_files: dict[str, Path] = field(default_factory=dict)


class Context:
    """What a worker keeps between cases: the fixtures and the golden tar's members."""

    def __init__(self, fixtures: Fixtures) -> None:
        self.fx = fixtures
        self.descriptor = (fixtures.layout / BUNDLE_JSON).read_bytes()
        with tarfile.open(fixtures.tar) as tf:
            self.members = [(m, tf.extractfile(m).read() if m.isfile() else b"") for m in tf]  # type: ignore[union-attr]
        self.vocabulary = sorted({m.name for m, _ in self.members} | {"../" + STEM + ".airgap.tar"})
        self.keyid = signing_key().keyid
        self.signature_name = f"airgap/bundle.json.sig/{self.keyid}.sig"

    def write_tar(self, path: Path, replace: dict[str, bytes]) -> None:
        """The golden tar with some members' content replaced, entries in the same order."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as out:
            for info, data in self.members:
                new = replace.get(info.name, data)
                copy = tarfile.TarInfo(info.name)
                copy.mode, copy.mtime, copy.type = info.mode, info.mtime, info.type
                copy.uid = copy.gid = 0
                copy.uname = copy.gname = ""
                copy.size = len(new) if info.isfile() else 0
                out.addfile(copy, io.BytesIO(new) if info.isfile() else None)
        path.write_bytes(buf.getvalue())


def _json_flag(rng: random.Random, argv: list[str]) -> list[str]:
    return [*argv, "--json"] if rng.random() < 0.3 else argv


def _signature_file(raw: bytes) -> bytes:
    from packager.signing.signature import signature_file_content

    return signature_file_content(signing_key().sign(raw))


BUNDLE_COMMANDS = ("verify --key", "inspect", "audit --key", "images", "digest", "probe --bundle")


def _bundle_argv(label: str, bundle: Path, ctx: Context, rng: random.Random) -> list[str]:
    fx = ctx.fx
    argv = {
        "verify --key": ["verify", str(bundle), "--key", str(fx.pub)],
        "inspect": ["inspect", str(bundle)],
        "audit --key": ["audit", str(bundle), "--key", str(fx.pub)],
        "images": ["images", str(bundle)],
        "digest": ["digest", str(bundle)],
        "probe --bundle": ["probe", "--bundle", str(bundle), "--sysroot", str(MACHINE)],
    }[label]
    return _json_flag(rng, argv)


def _prepare_descriptor(
    ctx: Context, rng: random.Random, number: int, ws: Path, *, resign: bool
) -> Prepared:
    label = BUNDLE_COMMANDS[number % len(BUNDLE_COMMANDS)]
    as_tar = (number // len(BUNDLE_COMMANDS)) % 2 == 1
    mutant = mutate(ctx.descriptor, rng, extra=ctx.vocabulary)
    replace = {BUNDLE_JSON: mutant.data}
    if resign:
        replace[ctx.signature_name] = _signature_file(mutant.data)
    if as_tar:
        bundle = ws / f"{STEM}.airgap.tar"
        ctx.write_tar(bundle, replace)
    else:
        bundle = ws / STEM
        clone_tree(ctx.fx.layout, bundle, link=True)
        for name, data in replace.items():
            replace_file(bundle / name, data)
    return Prepared(
        argv=_bundle_argv(label, bundle, ctx, rng),
        label=label,
        document=f"{'tar' if as_tar else 'layout'} {BUNDLE_JSON}"
        + (" (re-signed)" if resign else ""),
        mutant=mutant,
        changed=not same_json(ctx.descriptor, mutant.data),
        judged=not resign and label in ("verify --key", "audit --key"),
        replay_files={"bundle.json": bundle / BUNDLE_JSON if not as_tar else bundle},
    )


def prepare_descriptor(ctx: Context, rng: random.Random, number: int, ws: Path) -> Prepared:
    """``airgap/bundle.json`` changed, its signature kept: every verdict must be a refusal."""
    return _prepare_descriptor(ctx, rng, number, ws, resign=False)


def prepare_signed_descriptor(ctx: Context, rng: random.Random, number: int, ws: Path) -> Prepared:
    """``airgap/bundle.json`` changed and signed again by the trusted key: what a compromised or
    buggy builder could ship. Verify may accept it (the change may be harmless) but nothing may
    crash on it."""
    return _prepare_descriptor(ctx, rng, number, ws, resign=True)


PARTS_COMMANDS = ("verify --key", "inspect", "sign --key")


def prepare_parts(ctx: Context, rng: random.Random, number: int, ws: Path) -> Prepared:
    """The parts index changed; the parts as built, and two files of someone else beside them."""
    fx = ctx.fx
    label = PARTS_COMMANDS[number % len(PARTS_COMMANDS)]
    original = fx.index.read_bytes()
    parts_names = sorted(p.name for p in fx.split.iterdir())
    # a stray part of the bundle's own name, one past its last part
    stray = f"{STEM}.airgap.tar.{sum(1 for n in parts_names if '.airgap.tar.' in n):03d}"
    extra = [*parts_names, *BYSTANDERS, stray, "../" + BYSTANDERS[0]]
    mutant = mutate(original, rng, extra=extra)
    folder = ws / "parts"
    clone_tree(fx.split, folder, link=label != "sign --key")
    # a stray part of the same name beside the parts in some cases: a reader stops at it early
    bystanders = (*BYSTANDERS, stray) if rng.random() < 0.3 else BYSTANDERS
    for i, name in enumerate(bystanders):
        assert not (folder / name).exists(), name  # never written through a link to a fixture
        (folder / name).write_bytes(f"someone else's file {i}\n".encode())
    index = folder / fx.index.name
    replace_file(index, mutant.data)
    arg = index if rng.random() < 0.8 else folder / f"{STEM}.airgap.tar.000"
    argv = {
        "verify --key": ["verify", str(arg), "--key", str(fx.pub)],
        "inspect": ["inspect", str(arg)],
        "sign --key": ["sign", str(arg), "--key", str(fx.private)],
    }[label]
    before = snapshot(folder)

    def guard(code: int) -> str | None:
        after = snapshot(folder)
        for name in bystanders:
            if after.get(name) != before[name]:
                return f"{name} (not the bundle's) was {'changed' if name in after else 'deleted'}"
        if label != "sign --key" or code != 0:
            lost = sorted(set(before) - set(after))
            changed = sorted(n for n in before if n in after and after[n] != before[n])
            added = sorted(set(after) - set(before))
            if lost or changed or added:
                return f"exit {code} but files changed: deleted {lost}, changed {changed}, added {added}"
        return None

    return Prepared(
        argv=_json_flag(rng, argv) if label != "sign --key" else argv,
        label=label,
        document="parts index",
        mutant=mutant,
        changed=not same_json(original, mutant.data),
        judged=label == "verify --key",
        guard=guard,
        replay_files={"index": index},
    )


def prepare_manifest(ctx: Context, rng: random.Random, number: int, ws: Path) -> Prepared:
    """A manifest changed: golden.yaml (validate, and lock --offline: its inputs are local) and
    every example (validate)."""
    fx = ctx.fx
    plans = [(fx.manifests[0], "validate"), (fx.manifests[0], "lock --offline")]
    plans += [(m, "validate") for m in fx.manifests[1:]]
    source, label = plans[number % len(plans)]
    original = source.read_bytes()
    mutant = mutate(original, rng, yaml_mode=True, extra=["./weights", "weights", "serving.conf"])
    folder = ws / "m"
    if source.parent == FIXTURE:
        clone_tree(FIXTURE, folder, link=True)
        (folder / "golden.lock.json").unlink()
    else:
        folder.mkdir()
        for req in EXAMPLES.glob("*.txt"):
            os.link(req, folder / req.name)
    manifest = folder / source.name
    replace_file(manifest, mutant.data)
    if label == "validate":
        argv = ["validate", str(manifest)]
    else:
        argv = ["lock", str(manifest), "--offline", "--timeout", "2"]
    return Prepared(
        argv=_json_flag(rng, argv),
        label=f"{label} ({'golden' if source.parent == FIXTURE else 'examples'})",
        document=f"manifest {source.name}",
        mutant=mutant,
        changed=True,
        judged=False,
        replay_files={"manifest": manifest},
    )


TRUST_COMMANDS = ("trust show", "verify --trust")


def prepare_trust(ctx: Context, rng: random.Random, number: int, ws: Path) -> Prepared:
    """A trust policy changed; the bundle verified against it is the untouched tar."""
    fx = ctx.fx
    label = TRUST_COMMANDS[number % len(TRUST_COMMANDS)]
    original = fx.policy.read_bytes()
    other = (fx.private.parent / "throwaway.pub.pem").read_text()
    mutant = mutate(original, rng, extra=[ctx.keyid, other, "ecdsa-p256-sha256", "90d", "0d"])
    policy = ws / "trust.json"
    replace_file(policy, mutant.data)
    if label == "trust show":
        argv = ["trust", "show", str(policy)]
    else:
        argv = ["verify", str(fx.tar), "--trust", str(policy)]
    return Prepared(
        argv=_json_flag(rng, argv),
        label=label,
        document="trust policy",
        mutant=mutant,
        changed=not same_json(original, mutant.data),
        judged=False,
        replay_files={"policy": policy},
    )


SITE_COMMANDS = ("audit --site", "list")


def _same_lines(a: bytes, b: bytes) -> bool:
    la, lb = a.split(b"\n"), b.split(b"\n")
    return len(la) == len(lb) and all(x == y or same_json(x, y) for x, y in zip(la, lb))


def prepare_site(ctx: Context, rng: random.Random, number: int, ws: Path) -> Prepared:
    """A receipt, the audit log (one line, or its lines) or the log's head changed in a copy of
    an install prefix."""
    fx = ctx.fx
    label = SITE_COMMANDS[number % len(SITE_COMMANDS)]
    which = rng.choice(["receipts/golden/1.0.0.json", "audit.log", "audit.log", "audit.log.head"])
    prefix = ws / "site"
    clone_tree(fx.prefix, prefix)
    original = (fx.prefix / which).read_bytes()
    extra = ["golden", "1.0.0", "install", "gc", "uninstall", "0" * 64]
    if which == "audit.log" and rng.random() < 0.75:
        lines = original.split(b"\n")
        i = rng.randrange(len(lines) - 1)  # the last item is the empty text after the final \n
        one = mutate(lines[i], rng, extra=extra)
        data = b"\n".join([*lines[:i], one.data.replace(b"\n", b""), *lines[i + 1 :]])
        mutant = Mutant(data, (f"line {i + 1}:", *one.ops))
    else:
        mutant = (
            mutate(original, rng, extra=extra) if which != "audit.log" else _lines(original, rng)
        )
    replace_file(prefix / which, mutant.data)
    argv = (
        ["audit", "--site", str(prefix)]
        if label == "audit --site"
        else ["list", "--prefix", str(prefix)]
    )
    changed = not (_same_lines if which == "audit.log" else same_json)(original, mutant.data)
    return Prepared(
        argv=_json_flag(rng, argv),
        label=label,
        document=which.split("/")[0].replace("receipts", "receipt"),
        mutant=mutant,
        changed=changed,
        judged=label == "audit --site" and which != "receipts/golden/1.0.0.json",
        replay_files={which: prefix / which},
    )


def _lines(original: bytes, rng: random.Random) -> Mutant:
    """The audit log's lines dropped, repeated, swapped or cut, or its bytes corrupted."""
    lines = original.split(b"\n")
    what = rng.choice(["drop", "dup", "swap", "cut", "blank", "bytes"])
    i, j = rng.randrange(len(lines) - 1), rng.randrange(len(lines) - 1)
    if what == "drop":
        del lines[i]
    elif what == "dup":
        lines.insert(j, lines[i])
    elif what == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif what == "cut":
        lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
    elif what == "blank":
        lines.insert(i, rng.choice([b"", b" ", b"{}", b"\x1b[2J"]))
    else:
        from tests.support.fuzz.mutate import Mutator

        m = Mutator(rng, None, yaml_mode=False)
        return Mutant(m.byte_op(original), tuple(m.ops))
    return Mutant(b"\n".join(lines), (f"log:{what} line {i + 1} (and {j + 1})",))


Prepare = Callable[[Context, random.Random, int, Path], Prepared]

#: document kind -> (how a case is prepared, its share of a run's cases)
KINDS: dict[str, tuple[Prepare, int]] = {
    "descriptor": (prepare_descriptor, 3),
    "descriptor-signed": (prepare_signed_descriptor, 2),
    "parts": (prepare_parts, 2),
    "manifest": (prepare_manifest, 3),
    "trust": (prepare_trust, 1),
    "site": (prepare_site, 1),
}


def shares(total: int, kinds: Sequence[str]) -> dict[str, int]:
    """``total`` cases spread over ``kinds`` by their weights (every kind at least one)."""
    weight = sum(KINDS[k][1] for k in kinds)
    out = {k: max(1, total * KINDS[k][1] // weight) for k in kinds}
    out[kinds[0]] += max(0, total - sum(out.values()))
    return out
