#!/bin/sh
# airgap site launcher: runs airgap from the site kit a bundle carries, after checking it.
#
#   tar -xf BUNDLE.airgap.tar @SITE_DIR@
#   sh @SITE_DIR@/airgap BUNDLE COMMAND [ARGS...]      (BUNDLE: a .airgap.tar, a parts index
#                                                        .airgap.parts.json, or a layout folder)
#   e.g. sh @SITE_DIR@/airgap B.airgap.tar install --prefix /opt/ai --key pub.pem
#
# Needs only sh, openssl and python3 (@MIN_PYTHON@-@MAX_PYTHON@, its standard library only). Before
# any Python of the kit runs:
#   1. openssl checks that @BUNDLE_JSON@ is signed by the --key PUB given (any one of them), or
#      by a threshold of the unrevoked keys of the --trust POLICY given (or, with no --key/--trust,
#      of the site policy DIR/trust/policy.json of --prefix/--site DIR): ECDSA P-256 signatures
#      with `openssl dgst -sha256 -verify`, Ed25519 with `openssl pkeyutl -verify -rawin`;
#   2. `openssl dgst -sha256` of every kit file (@SITE_DIR@/...) must be the sha256 the signed
#      descriptor lists for it, and every kit file it lists must be there.
# The JSON (descriptor, trust policy, kit index) is read by python3 -I -S with its standard
# library only, never by the kit. The wheels the kit index names for this Python are unpacked
# with Python's zipfile into DIR/@SITE_KIT_INSTALL_DIR@/<kit>-cpXY/ (or, with no prefix, under
# ~/.cache/airgap/kits/), reused while the kit is unchanged; a site that already has a kit
# lets that airgap `verify` the new bundle before its kit replaces the current one. Then
# `python3 -I -S` runs airgap COMMAND from there.
# Exit: 1 when a check fails (nothing of the kit ran), 2 for usage errors, else airgap's own.
set -u
me=airgap-launcher

usage() {
    echo "usage: sh $0 BUNDLE COMMAND [ARGS...]   (COMMAND: verify, install, audit, probe, ...)" >&2
    echo "  the kit is checked with --key PUB or --trust POLICY (as the command takes them)," >&2
    echo "  or with the site policy of --prefix/--site DIR" >&2
}
if [ $# -lt 2 ]; then
    case "${1:-}" in -h | --help) usage; exit 0 ;; esac
    usage
    exit 2
fi

probe_hint="the standalone probe runs on Python 3.8 and later: tar -xf BUNDLE @PROBE_DIR@ && python3 @PROBE_DIR@ --bundle BUNDLE"
py=${AIRGAP_PYTHON:-python3}
if ! command -v "$py" >/dev/null 2>&1; then
    echo "$me: no $py on PATH: airgap needs Python @MIN_PYTHON@ to @MAX_PYTHON@ (set AIRGAP_PYTHON to use another interpreter)" >&2
    echo "$me: $probe_hint" >&2
    exit 1
fi
ver=$("$py" -c 'import sys; print("%d.%d.%d" % tuple(sys.version_info[:3]))' 2>/dev/null) || ver=""
major=${ver%%.*}
minor=${ver#*.}
minor=${minor%%.*}
case "$major.$minor" in
    [0-9]*.[0-9]*) ;;
    *)
        echo "$me: $py does not run (or does not say its version): airgap needs Python @MIN_PYTHON@ to @MAX_PYTHON@" >&2
        echo "$me: $probe_hint" >&2
        exit 1
        ;;
esac
if [ "$major" -ne 3 ] || [ "$minor" -lt "$(echo @MIN_PYTHON@ | cut -d. -f2)" ]; then
    echo "$me: found Python $ver ($(command -v "$py")); airgap needs Python @MIN_PYTHON@ to @MAX_PYTHON@" >&2
    echo "$me: $probe_hint" >&2
    exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
    echo "$me: no openssl on PATH: the launcher checks the kit's signature with it before running it" >&2
    exit 1
fi

# everything below is Python's standard library (-I: no environment, no user site; -S: no
# site-packages), run before any file of the kit is trusted
exec "$py" -I -S -c '
import base64, glob, hashlib, json, os, re, shutil, subprocess, sys, tarfile, tempfile, zipfile

ME = "airgap-launcher"
BUNDLE_JSON = "@BUNDLE_JSON@"
SIG_DIR = "@SIGNATURES_DIR@"
SITE_DIR = "@SITE_DIR@"
KIT_INDEX = "@SITE_KIT_INDEX@"
WHEELS_DIR = "@SITE_WHEELS_DIR@"
INSTALL_DIR = "@SITE_KIT_INSTALL_DIR@"
BUNDLES_DIR = "@SITE_BUNDLES_DIR@"
INSTALLED_WHEELS = "@INSTALLED_WHEELS_DIR@"
KIT_FORMAT = @SITE_KIT_FORMAT@
MAX_JSON = 32 * 1024 * 1024
MAX_FILE = 512 * 1024 * 1024
#: commands that take the bundle as their first argument, and those that take --key/--trust
TAKES_BUNDLE = {"verify", "install", "audit", "inspect", "images", "digest"}
TAKES_TRUST = {"verify", "install", "audit", "probe"}
PY = "cp%d%d" % sys.version_info[:2]


def say(msg):
    text = "".join(c if c.isprintable() else "\\x%02x" % ord(c) for c in str(msg))
    sys.stderr.write(ME + ": " + text + "\n")


def fail(msg, code=1):
    say(msg)
    sys.exit(code)


def _stopped(kind, value, tb):
    say("stopped: %s: %s" % (kind.__name__, value))
    os._exit(130 if issubclass(kind, KeyboardInterrupt) else 1)


sys.excepthook = _stopped


def openssl(*args, data=None):
    try:
        r = subprocess.run(("openssl",) + args, input=data, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        fail("openssl did not run: %s" % exc)
    return r


def sha256_file(path):
    r = openssl("dgst", "-sha256", "-r", path)
    m = re.match(rb"([0-9a-f]{64}) ", r.stdout)
    if r.returncode != 0 or not m:
        fail("openssl dgst -sha256 failed on %s" % path)
    return m.group(1).decode()


# ------------------------------------------------------------------ the arguments
argv = sys.argv[1:]
launcher_path, bundle, command, rest = argv[0], argv[1], argv[2], argv[3:]
keys, trusts, prefix, passed = [], [], None, []
opts = {"--key": keys, "--trust": trusts}
i = 0
while i < len(rest):
    a = rest[i]
    name, eq, val = a.partition("=")
    if name in ("--key", "--trust", "--prefix", "--site") and not (eq or i + 1 < len(rest)):
        fail("%s needs a value" % name, 2)
    if name in ("--key", "--trust", "--prefix", "--site"):
        if not eq:
            i += 1
            val = rest[i]
        if name in opts:
            opts[name].append(val)
        else:
            prefix = val
        passed += [name, val]
    else:
        passed.append(a)
    i += 1
site_audit = command == "audit" and ("--site" in passed)
if prefix is None and os.environ.get("AIRGAP_PREFIX"):
    prefix = os.environ["AIRGAP_PREFIX"]  # the site commands default to it
if command not in TAKES_TRUST or site_audit:
    # the launcher uses them; the command does not take them
    out, j = [], 0
    while j < len(passed):
        if passed[j] in ("--key", "--trust"):
            j += 2
            continue
        out.append(passed[j])
        j += 1
    passed = out
if command in TAKES_BUNDLE and not site_audit:
    passed = [bundle] + passed
elif command == "probe" and "--installed" not in passed and "--bundle" not in passed:
    passed = ["--bundle", bundle] + passed

site_policy = os.path.join(prefix, "trust", "policy.json") if prefix else None
if not keys and not trusts:
    if site_policy and os.path.isfile(site_policy):
        trusts = [site_policy]
    else:
        fail("give --key PUB or --trust POLICY: the launcher checks that %s is signed by it "
             "before it runs anything from the kit" % BUNDLE_JSON, 2)

work = tempfile.mkdtemp(prefix="airgap-launcher.")
try:
    # -------------------------------------------------------------- read airgap/ of the bundle
    def wanted(name):
        return (name == BUNDLE_JSON or name.startswith(SIG_DIR + "/")
                or name.startswith(SITE_DIR + "/"))

    safe = re.compile(r"[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*")
    got = {}

    def keep(name, size, read):
        if not safe.fullmatch(name) or ".." in name.split("/"):
            fail("%s: the bundle holds an unsafe name %r" % (bundle, name))
        if name in got:
            fail("%s: %s is in the bundle twice" % (bundle, name))
        if size > (MAX_JSON if name == BUNDLE_JSON else MAX_FILE):
            fail("%s: %s is too large (%d bytes)" % (bundle, name, size))
        dest = os.path.join(work, "b", name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            n = 0
            while True:
                chunk = read(1 << 20)
                if not chunk:
                    break
                n += len(chunk)
                if n > size:
                    fail("%s: %s is longer than its header says" % (bundle, name))
                f.write(chunk)
        got[name] = dest

    class Concat:
        """The parts of a split bundle as one seekable file (tarfile skips file data by seeking)."""

        def __init__(self, paths):
            self.parts, self.pos, start = [], 0, 0
            for p in paths:
                size = os.path.getsize(p)
                self.parts.append((start, size, p))
                start += size
            self.size = start

        def seek(self, offset, whence=0):
            self.pos = offset if whence == 0 else (self.pos + offset if whence == 1
                                                   else self.size + offset)
            return self.pos

        def tell(self):
            return self.pos

        def read(self, n=-1):
            if n is None or n < 0:
                n = self.size - self.pos
            out = []
            while n > 0 and self.pos < self.size:
                start, size, path = next(x for x in self.parts if x[0] <= self.pos < x[0] + x[1])
                with open(path, "rb") as f:
                    f.seek(self.pos - start)
                    data = f.read(min(n, start + size - self.pos))
                if not data:
                    break
                out.append(data)
                self.pos += len(data)
                n -= len(data)
            return b"".join(out)

    if os.path.isdir(bundle):
        for root, dirs, files in os.walk(os.path.join(bundle, "airgap")):
            for fn in files:
                full = os.path.join(root, fn)
                name = os.path.relpath(full, bundle).replace(os.sep, "/")
                if wanted(name):
                    st = os.lstat(full)
                    if not os.path.isfile(full) or os.path.islink(full):
                        fail("%s: %s is not a regular file" % (bundle, name))
                    with open(full, "rb") as src:
                        keep(name, st.st_size, src.read)
    else:
        try:
            if bundle.endswith(".airgap.parts.json"):
                with open(bundle, "rb") as f:
                    index = json.loads(f.read(MAX_JSON))
                parts = [p["name"] for p in index["parts"]]
                if any(not isinstance(p, str) or "/" in p or p in ("", ".", "..") for p in parts):
                    fail("%s: a part name is not a plain file name" % bundle)
                stream = Concat(os.path.join(os.path.dirname(bundle) or ".", p) for p in parts)
            else:
                stream = open(bundle, "rb")
            # every header is read (a co-signature may be appended at the end), file data is
            # skipped by seeking
            with tarfile.open(fileobj=stream, mode="r:") as tf:
                for m in tf:
                    if not wanted(m.name) or m.isdir():
                        continue
                    if not m.isfile():
                        fail("%s: %s is not a regular file" % (bundle, m.name))
                    keep(m.name, m.size, tf.extractfile(m).read)
        except (OSError, tarfile.TarError, ValueError, KeyError, TypeError) as exc:
            fail("%s: cannot read the bundle: %s" % (bundle, exc), 2)
    if BUNDLE_JSON not in got:
        fail("%s: no %s: not an airgap bundle" % (bundle, BUNDLE_JSON), 2)

    # what the signatures cover: a delta signs its version without its delta record, written as
    # the build writes bundle.json (sorted keys, 2-space indent, UTF-8, a final newline)
    signed = got[BUNDLE_JSON]
    with open(signed, "rb") as f:
        raw_desc = f.read()
    if b"\"delta\"" in raw_desc:
        try:
            whole = json.loads(raw_desc.decode("utf-8"))
            content = None
            if isinstance(whole, dict) and "delta" in whole:
                content = (json.dumps({k: v for k, v in whole.items() if k != "delta"},
                                      sort_keys=True, indent=2, ensure_ascii=False,
                                      allow_nan=False) + "\n").encode("utf-8")
        except (ValueError, RecursionError):  # no document airgap writes: the raw bytes are
            content = None  # checked, and fail
        if content is not None:
            signed = os.path.join(work, "content.json")
            with open(signed, "wb") as f:
                f.write(content)

    # -------------------------------------------------------------- 1. the signature, by openssl
    def pem_keyid(pem_path, where):
        r = openssl("pkey", "-pubin", "-in", pem_path, "-outform", "DER")
        if r.returncode != 0 or not r.stdout:
            fail("%s: not a public key openssl can read" % where, 2)
        return hashlib.sha256(r.stdout).hexdigest()

    def is_ed25519(pem_path):
        r = openssl("pkey", "-pubin", "-in", pem_path, "-noout", "-text")
        return b"ED25519" in r.stdout.upper()

    def verifies(pem_path, keyid):
        sig = got.get("%s/%s.sig" % (SIG_DIR, keyid))
        if sig is None:
            return False
        try:
            with open(sig, "rb") as f:
                raw = base64.b64decode(f.read().strip(), validate=True)
        except (ValueError, OSError):
            return False
        sig_bin = os.path.join(work, keyid + ".bin")
        with open(sig_bin, "wb") as f:
            f.write(raw)
        if is_ed25519(pem_path):
            if not rawin_ok():
                cannot.append(keyid)
                return False
            r = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pem_path, "-rawin",
                        "-in", signed, "-sigfile", sig_bin)
        else:
            r = openssl("dgst", "-sha256", "-verify", pem_path, "-signature", sig_bin, signed)
        return r.returncode == 0

    cannot = []  # Ed25519 keys this openssl cannot check

    def rawin_ok():
        """OpenSSL 1.1.1 has no one-shot (Ed25519) verification on its command line."""
        r = openssl("pkeyutl", "-help")
        return b"-rawin" in r.stdout + r.stderr

    signers = []
    if keys:
        for k in keys:
            if not os.path.isfile(k):
                fail("--key %s: no such file" % k, 2)
            kid = pem_keyid(k, "--key " + k)
            if verifies(k, kid):
                signers.append("%s (%s...)" % (os.path.basename(k), kid[:16]))
        needed, what = 1, "the key(s) given with --key"
    else:
        policy_path = trusts[-1]
        try:
            with open(policy_path, "rb") as f:
                doc = json.loads(f.read(MAX_JSON))
            if isinstance(doc, dict) and "signed" in doc:
                doc = doc["signed"]
            needed = doc["threshold"]
            listed = doc["keys"]
            revoked = {r["keyid"] for r in doc["revoked"]}
            if type(needed) is not int or needed < 1 or not isinstance(listed, list):
                raise ValueError("threshold or keys")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fail("--trust %s: not a trust policy the launcher can read (%s)" % (policy_path, exc), 2)
        seen = set()
        for n, k in enumerate(listed):
            try:
                pem, kid, kname = k["public_key"], k["keyid"], str(k["name"])
            except (KeyError, TypeError):
                fail("--trust %s: keys[%d] has no public_key/keyid/name" % (policy_path, n), 2)
            pem_path = os.path.join(work, "key%d.pem" % n)
            with open(pem_path, "w") as f:
                f.write(str(pem))
            real = pem_keyid(pem_path, "--trust %s: keys[%d]" % (policy_path, n))
            if real != kid:
                fail("--trust %s: keys[%d] (%s) is listed as %s... but its key is %s..."
                     % (policy_path, n, kname, str(kid)[:16], real[:16]), 2)
            if real in revoked or real in seen:
                continue
            seen.add(real)
            if verifies(pem_path, real):
                signers.append("%s (%s...)" % (kname, real[:16]))
        what = "threshold %d of the unrevoked keys of %s" % (needed, policy_path)
    if len(signers) < needed:
        if cannot:
            version = openssl("version").stdout.decode(errors="replace").strip()
            say("%s cannot verify Ed25519 signatures (it has no pkeyutl -rawin; OpenSSL 3 has): "
                "%d key(s) could not count; ECDSA P-256 keys work with OpenSSL 1.1.1"
                % (version, len(set(cannot))))
        fail("%s: %s is not signed by %s (%d valid signature(s)): nothing of its site kit ran"
             % (bundle, BUNDLE_JSON, what, len(signers)))

    # -------------------------------------------------------------- 2. the kit files, by openssl
    with open(got[BUNDLE_JSON], "rb") as f:
        desc = json.loads(f.read())
    listed = {}
    for entry in desc.get("files", []):
        if entry["path"].startswith(SITE_DIR + "/"):
            listed[entry["path"]] = entry["sha256"]
    if not listed:
        fail("%s: the bundle carries no site kit (it was built with --no-site-kit)" % bundle)
    delta = desc.get("delta")  # transport metadata, outside the signature: only a hint of
    delta = delta if isinstance(delta, dict) else {}  # where a listed kit file may be found
    hinted = delta.get("not_carried_files")
    left_out = set(p for p in hinted if isinstance(p, str)) if isinstance(hinted, list) else set()
    unfetched = []  # kit wheels a delta leaves out that no installed version here keeps
    from_site = []  # and those read from an installed version of --prefix
    for path, want in sorted(listed.items()):
        if path not in got and path in left_out:
            # a delta leaves out the kit wheels its base has: an installed version of the site
            # keeps each (same name, hashed below like every kit file)
            name = path.rsplit("/", 1)[1]
            found = sorted(glob.glob(os.path.join(glob.escape(prefix), BUNDLES_DIR, "*", "*",
                                                  INSTALLED_WHEELS, glob.escape(name)))
                           ) if prefix else []
            for candidate in found:
                if os.path.isfile(candidate) and not os.path.islink(candidate) \
                        and sha256_file(candidate) == want:
                    got[path] = candidate
                    from_site.append(name)
                    break
            if path not in got:  # needed only if this kit is not unpacked yet (below)
                unfetched.append(name)
                continue
        if path not in got:
            fail("%s: the kit file %s that %s lists is missing" % (bundle, path, BUNDLE_JSON))
        have = sha256_file(got[path])
        if have != want:
            fail("%s: the kit file %s has sha256 %s, the signed %s says %s: the kit was changed"
                 % (bundle, path, have, BUNDLE_JSON, want))
    for path in got:
        if path.startswith(SITE_DIR + "/") and path not in listed:
            fail("%s: %s is not listed in the signed %s" % (bundle, path, BUNDLE_JSON))
    kit_id = hashlib.sha256("".join("%s %s\n" % kv for kv in sorted(listed.items())).encode()
                            ).hexdigest()[:24]
    if KIT_INDEX not in listed:
        fail("%s: %s does not list the kit index %s" % (bundle, BUNDLE_JSON, KIT_INDEX))
    with open(got[KIT_INDEX], "rb") as f:
        kit = json.loads(f.read())
    if kit.get("format") != KIT_FORMAT:
        fail("%s: kit format %r, this launcher reads %d" % (bundle, kit.get("format"), KIT_FORMAT))
    pyver = "%d.%d" % sys.version_info[:2]
    wheels = kit["pythons"].get(pyver)
    if not wheels:
        fail("the kit has no wheels for Python %s (%s); it has %s"
             % (pyver, sys.executable, ", ".join(sorted(kit["pythons"]))))
    try:
        with open(launcher_path, "rb") as f:
            mine = hashlib.sha256(f.read()).hexdigest()
        if mine != listed.get(SITE_DIR + "/airgap"):
            say("note: this launcher is not the one %s carries" % bundle)
    except OSError:
        pass
    say("%s: signed by %s; %d kit files match it (kit %s)"
        % (bundle, ", ".join(signers), len(listed) - len(unfetched), kit_id[:12])
        + (" (%d read from versions installed in %s)" % (len(from_site), prefix)
           if from_site else "")
        + (" (%d left out by this delta)" % len(unfetched) if unfetched else ""))

    # -------------------------------------------------------------- 3. the kit, unpacked once
    if prefix:
        base = os.path.join(prefix, INSTALL_DIR)
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(cache, "airgap", "kits")
    target = os.path.join(base, "%s-%s" % (kit_id, PY))
    lib = os.path.join(target, "lib")
    run = ("import sys; sys.path[:0] = [sys.argv.pop(1)]; sys.argv[0] = \"airgap\"; "
           "from packager.cli.app import main; sys.exit(main())")
    current = os.path.join(base, "current")

    if not os.path.isfile(os.path.join(target, "complete")):
        if unfetched:
            dbase = delta.get("base") if isinstance(delta.get("base"), dict) else {}
            fail("%s is a delta from %s %s: it leaves out %d wheel(s) of its site kit (first %s), "
                 "which no installed version %s keeps, and this kit is not unpacked in %s; "
                 "install the full bundle, or run the airgap the site has"
                 % (bundle, dbase.get("name"), dbase.get("version"), len(unfetched), unfetched[0],
                    "of --prefix %s" % prefix if prefix else "(no --prefix given)", base))
        if prefix and os.path.isfile(os.path.join(current, "complete")):
            old = os.path.realpath(current)
            say("the installed airgap (%s) verifies %s before its kit replaces it"
                % (os.path.basename(old), bundle))
            trust_args = [a for k in keys for a in ("--key", k)] or ["--trust", trusts[-1]]
            r = subprocess.run([sys.executable, "-I", "-S", "-c", run, os.path.join(old, "lib"),
                                "verify", bundle] + trust_args)
            if r.returncode != 0:
                fail("the installed airgap did not verify %s: its kit is not installed" % bundle)
        os.makedirs(base, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".partial-", dir=base)
        for w in wheels:
            path = "%s/%s" % (WHEELS_DIR, w)
            if path not in listed:
                fail("%s: the kit index names %s, which %s does not list" % (bundle, w, BUNDLE_JSON))
            with zipfile.ZipFile(got[path]) as zf:
                for info in zf.infolist():
                    name = info.filename
                    parts = name.split("/")
                    if name.startswith("/") or ".." in parts or "\\" in name:
                        fail("%s: %s holds an unsafe name %r" % (bundle, w, name))
                    if len(parts) > 2 and parts[0].endswith(".data"):
                        if parts[1] not in ("purelib", "platlib"):
                            continue  # scripts, headers, data: not needed to run airgap
                        parts = parts[2:]
                    if name.endswith("/"):
                        continue
                    dest = os.path.join(tmp, "lib", *parts)
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    with zf.open(info) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
        with open(os.path.join(tmp, "complete"), "w") as f:
            json.dump({"kit": kit_id, "python": pyver, "airgap": kit.get("airgap"),
                       "platform": kit.get("platform"), "wheels": wheels}, f, indent=1)
        try:
            os.rename(tmp, target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another run installed it first
            if not os.path.isfile(os.path.join(target, "complete")):
                fail("cannot install the kit into %s" % target)
        say("kit installed in %s" % target)
    else:
        say("kit reused from %s" % target)
    if prefix:
        link = os.path.join(base, ".current.%d" % os.getpid())
        os.symlink(os.path.basename(target), link)
        os.replace(link, current)
finally:
    shutil.rmtree(work, ignore_errors=True)
sys.stderr.flush()
os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", run, lib, command] + passed)
' "$0" "$@"
