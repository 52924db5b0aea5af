"""A small, bounded Zstandard (RFC 8878) decoder in pure Python.

CUDA 13's fatbinary compresses PTX entries by default, and every entry with ``-compress-all``,
as Zstandard frames (entry flag 0x8000, frames start with 28 b5 2f fd). Python 3.11 ships no
zstd module and airgap adds no dependency, so this decodes them: frames, raw / RLE / compressed
blocks, Huffman literals (1 and 4 streams, treeless), FSE sequences (predefined, RLE, compressed,
repeat) and the optional XXH64 content checksum. Dictionaries are not supported (fatbinary does
not use them). Every size is checked against the input and against ``max_output`` before any
work, so a corrupt or hostile frame ends in ``ZstdError``, never in unbounded memory or time.
"""

from __future__ import annotations

from collections.abc import Sequence

MAGIC = 0xFD2FB528
_SKIPPABLE_MIN, _SKIPPABLE_MAX = 0x184D2A50, 0x184D2A5F
_BLOCK_MAX = 128 * 1024


class ZstdError(ValueError):
    """The data is not a valid Zstandard frame (or exceeds the caller's limit)."""


# ----------------------------------------------------------------------------- bit readers


class _Backward:
    """Reads a bitstream from its end toward its start, as FSE and Huffman streams are written.

    The last byte holds a 1 bit marking where the data starts; bits are consumed from the most
    significant end. Bits read past the start of the stream read as zero; ``overflowed`` says so.
    """

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        if not data or data[-1] == 0:
            raise ZstdError("bitstream without its end marker")
        self.data = data
        self.pos = (len(data) - 1) * 8 + data[-1].bit_length() - 1  # bits left

    def read(self, n: int) -> int:
        if n == 0:
            return 0
        pos = self.pos - n
        self.pos = pos
        if pos >= 0:
            lo = pos >> 3
            hi = (pos + n + 7) >> 3
            return (int.from_bytes(self.data[lo:hi], "little") >> (pos & 7)) & ((1 << n) - 1)
        # partly (or wholly) before the start: the missing low bits are zeros
        top = pos + n
        if top <= 0:
            return 0
        value = int.from_bytes(self.data[0 : (top + 7) >> 3], "little") & ((1 << top) - 1)
        return value << (-pos)

    def peek(self, n: int) -> int:
        saved = self.pos
        value = self.read(n)
        self.pos = saved
        return value

    @property
    def overflowed(self) -> bool:
        return self.pos < 0


# ----------------------------------------------------------------------------- FSE


class _FseTable:
    __slots__ = ("accuracy", "baseline", "nbits", "symbol")

    def __init__(self, accuracy: int, symbol: list[int], nbits: list[int], baseline: list[int]):
        self.accuracy = accuracy
        self.symbol = symbol
        self.nbits = nbits
        self.baseline = baseline


def _fse_build(probs: Sequence[int], accuracy: int) -> _FseTable:
    size = 1 << accuracy
    symbol = [0] * size
    high = size - 1
    next_state = [0] * len(probs)
    for s, p in enumerate(probs):
        if p == -1:
            symbol[high] = s
            high -= 1
            next_state[s] = 1
        else:
            next_state[s] = p
    step = (size >> 1) + (size >> 3) + 3
    mask = size - 1
    pos = 0
    for s, p in enumerate(probs):
        for _ in range(max(p, 0)):
            symbol[pos] = s
            pos = (pos + step) & mask
            while pos > high:
                pos = (pos + step) & mask
    if pos != 0:
        raise ZstdError("FSE table: probabilities do not fill the table")
    nbits = [0] * size
    baseline = [0] * size
    for state in range(size):
        s = symbol[state]
        n = next_state[s]
        next_state[s] += 1
        b = accuracy - (n.bit_length() - 1)
        nbits[state] = b
        baseline[state] = (n << b) - size
    return _FseTable(accuracy, symbol, nbits, baseline)


def _fse_rle(sym: int) -> _FseTable:
    return _FseTable(0, [sym], [0], [0])


def _fse_read_description(
    data: bytes, start: int, end: int, max_symbol: int, max_accuracy: int
) -> tuple[_FseTable, int]:
    """Reads an FSE table description (RFC 8878 4.1.1); returns the table and the end offset."""
    bitpos = 0

    def bits(n: int) -> int:
        nonlocal bitpos
        lo = start + (bitpos >> 3)
        hi = start + ((bitpos + n + 7) >> 3)
        if hi > end:
            raise ZstdError("FSE table description runs past its block")
        v = (int.from_bytes(data[lo:hi], "little") >> (bitpos & 7)) & ((1 << n) - 1)
        return v

    accuracy = bits(4) + 5
    bitpos += 4
    if accuracy > max_accuracy:
        raise ZstdError(f"FSE accuracy log {accuracy} above the maximum {max_accuracy}")
    remaining = (1 << accuracy) + 1
    threshold = 1 << accuracy
    nb = accuracy + 1
    probs: list[int] = []
    while remaining > 1:
        if len(probs) > max_symbol:
            raise ZstdError("FSE table description names too many symbols")
        maxv = (2 * threshold - 1) - remaining
        low = bits(nb - 1)
        if low < maxv:
            count = low
            bitpos += nb - 1
        else:
            count = bits(nb)
            if count >= threshold:
                count -= maxv
            bitpos += nb
        count -= 1
        remaining -= abs(count)
        probs.append(count)
        if count == 0:
            while True:
                repeat = bits(2)
                bitpos += 2
                probs.extend([0] * repeat)
                if repeat != 3:
                    break
            if len(probs) > max_symbol + 1:
                raise ZstdError("FSE table description names too many symbols")
        while remaining < threshold and threshold > 1:
            nb -= 1
            threshold >>= 1
    if remaining != 1:
        raise ZstdError("FSE table description: probabilities do not add up")
    return _fse_build(probs, accuracy), start + ((bitpos + 7) >> 3)


# ----------------------------------------------------------------------------- Huffman


class _Huffman:
    __slots__ = ("max_bits", "nbits", "symbol")

    def __init__(self, max_bits: int, symbol: list[int], nbits: list[int]) -> None:
        self.max_bits = max_bits
        self.symbol = symbol
        self.nbits = nbits


def _huffman_from_weights(weights: list[int]) -> _Huffman:
    if not weights or len(weights) > 255:
        raise ZstdError("Huffman table with no symbols or too many")
    total = sum((1 << (w - 1)) for w in weights if w > 0)
    if total == 0:
        raise ZstdError("Huffman table with all weights zero")
    max_bits = total.bit_length()  # the next power of two above total
    rest = (1 << max_bits) - total
    if rest & (rest - 1):
        raise ZstdError("Huffman weights do not complete a power of two")
    weights = [*weights, rest.bit_length()]
    if max_bits > 11:
        raise ZstdError(f"Huffman code length {max_bits} above the maximum 11")
    size = 1 << max_bits
    symbol = [0] * size
    nbits = [0] * size
    pos = 0
    for w in range(1, max_bits + 1):
        span = 1 << (w - 1)
        bits = max_bits + 1 - w
        for s, sw in enumerate(weights):
            if sw == w:
                symbol[pos : pos + span] = [s] * span
                nbits[pos : pos + span] = [bits] * span
                pos += span
    if pos != size:
        raise ZstdError("Huffman weights do not fill the table")
    return _Huffman(max_bits, symbol, nbits)


def _huffman_read_description(data: bytes, start: int, end: int) -> tuple[_Huffman, int]:
    if start >= end:
        raise ZstdError("Huffman table description missing")
    header = data[start]
    pos = start + 1
    weights: list[int] = []
    if header >= 128:
        count = header - 127
        nbytes = (count + 1) // 2
        if pos + nbytes > end:
            raise ZstdError("Huffman weights run past their block")
        for i in range(count):
            byte = data[pos + i // 2]
            weights.append(byte >> 4 if i % 2 == 0 else byte & 15)
        return _huffman_from_weights(weights), pos + nbytes
    size = header
    if pos + size > end:
        raise ZstdError("Huffman weights run past their block")
    table, tpos = _fse_read_description(data, pos, pos + size, 255, 6)
    stream = _Backward(bytes(data[tpos : pos + size]))
    s1 = stream.read(table.accuracy)
    s2 = stream.read(table.accuracy)
    while True:
        if len(weights) > 254:
            raise ZstdError("Huffman weights: too many")
        weights.append(table.symbol[s1])
        s1 = table.baseline[s1] + stream.read(table.nbits[s1])
        if stream.overflowed:
            weights.append(table.symbol[s2])
            break
        weights.append(table.symbol[s2])
        s2 = table.baseline[s2] + stream.read(table.nbits[s2])
        if stream.overflowed:
            weights.append(table.symbol[s1])
            break
    if any(w > 11 for w in weights):
        raise ZstdError("Huffman weight above 11")
    return _huffman_from_weights(weights), pos + size


def _huffman_stream(table: _Huffman, data: bytes, count: int, out: bytearray) -> None:
    stream = _Backward(data)
    max_bits = table.max_bits
    symbol, nbits = table.symbol, table.nbits
    for _ in range(count):
        state = stream.peek(max_bits)
        out.append(symbol[state])
        stream.pos -= nbits[state]
    if stream.pos != 0:
        raise ZstdError("Huffman stream does not end where its literals end")


# ----------------------------------------------------------------------------- sequences

_LL_BASE = [
    *range(16),
    16,
    18,
    20,
    22,
    24,
    28,
    32,
    40,
    48,
    64,
    128,
    256,
    512,
    1024,
    2048,
    4096,
    8192,
    16384,
    32768,
    65536,
]
_LL_BITS = [0] * 16 + [1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
_ML_BASE = [
    *range(3, 35),
    35,
    37,
    39,
    41,
    43,
    47,
    51,
    59,
    67,
    83,
    99,
    131,
    259,
    515,
    1027,
    2051,
    4099,
    8195,
    16387,
    32771,
    65539,
]
_ML_BITS = [0] * 32 + [1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]

_LL_DEFAULT = _fse_build(
    [
        4,
        3,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        1,
        1,
        1,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        2,
        3,
        2,
        1,
        1,
        1,
        1,
        1,
        -1,
        -1,
        -1,
        -1,
    ],
    6,
)
_ML_DEFAULT = _fse_build(
    [
        1,
        4,
        3,
        2,
        2,
        2,
        2,
        2,
        2,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        -1,
        -1,
        -1,
        -1,
        -1,
        -1,
        -1,
    ],
    6,
)
_OF_DEFAULT = _fse_build(
    [1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1], 5
)


class _State:
    """What persists between the blocks of one frame."""

    def __init__(self) -> None:
        self.huffman: _Huffman | None = None
        self.ll: _FseTable | None = None
        self.of: _FseTable | None = None
        self.ml: _FseTable | None = None
        self.reps = [1, 4, 8]


def _literals(data: bytes, pos: int, end: int, st: _State) -> tuple[bytes, int]:
    if pos >= end:
        raise ZstdError("compressed block without a literals section")
    b0 = data[pos]
    kind = b0 & 3
    fmt = (b0 >> 2) & 3
    if kind in (0, 1):  # raw, RLE
        if fmt in (0, 2):
            size, hdr = b0 >> 3, 1
        elif fmt == 1:
            if pos + 2 > end:
                raise ZstdError("literals header runs past its block")
            size, hdr = (b0 >> 4) + (data[pos + 1] << 4), 2
        else:
            if pos + 3 > end:
                raise ZstdError("literals header runs past its block")
            size, hdr = (b0 >> 4) + (data[pos + 1] << 4) + (data[pos + 2] << 12), 3
        pos += hdr
        if size > _BLOCK_MAX:
            raise ZstdError("literals larger than a block")
        if kind == 0:
            if pos + size > end:
                raise ZstdError("raw literals run past their block")
            return bytes(data[pos : pos + size]), pos + size
        if pos + 1 > end:
            raise ZstdError("RLE literals run past their block")
        return bytes([data[pos]]) * size, pos + 1
    # compressed (2) or treeless (3)
    hdr = {0: 3, 1: 3, 2: 4, 3: 5}[fmt]
    if pos + hdr > end:
        raise ZstdError("literals header runs past its block")
    h = int.from_bytes(data[pos : pos + hdr], "little")
    bits = {0: 10, 1: 10, 2: 14, 3: 18}[fmt]
    regen = (h >> 4) & ((1 << bits) - 1)
    comp = (h >> (4 + bits)) & ((1 << bits) - 1)
    streams = 1 if fmt == 0 else 4
    pos += hdr
    if regen > _BLOCK_MAX or pos + comp > end:
        raise ZstdError("compressed literals run past their block")
    lend = pos + comp
    if kind == 2:
        st.huffman, pos = _huffman_read_description(data, pos, lend)
    elif st.huffman is None:
        raise ZstdError("treeless literals without an earlier Huffman table")
    table = st.huffman
    assert table is not None
    out = bytearray()
    if streams == 1:
        _huffman_stream(table, bytes(data[pos:lend]), regen, out)
    else:
        if pos + 6 > lend:
            raise ZstdError("Huffman jump table runs past its block")
        s1 = int.from_bytes(data[pos : pos + 2], "little")
        s2 = int.from_bytes(data[pos + 2 : pos + 4], "little")
        s3 = int.from_bytes(data[pos + 4 : pos + 6], "little")
        pos += 6
        if pos + s1 + s2 + s3 > lend:
            raise ZstdError("Huffman streams run past their block")
        each = (regen + 3) // 4
        if 3 * each > regen:
            raise ZstdError("Huffman streams: sizes do not fit the literals")
        bounds = [pos, pos + s1, pos + s1 + s2, pos + s1 + s2 + s3, lend]
        for i in range(4):
            n = each if i < 3 else regen - 3 * each
            _huffman_stream(table, bytes(data[bounds[i] : bounds[i + 1]]), n, out)
    return bytes(out), lend


def _sequence_table(
    data: bytes,
    pos: int,
    end: int,
    mode: int,
    default: _FseTable,
    prev: _FseTable | None,
    max_symbol: int,
    max_accuracy: int,
) -> tuple[_FseTable, int]:
    if mode == 0:
        return default, pos
    if mode == 1:
        if pos >= end:
            raise ZstdError("RLE sequence table runs past its block")
        if data[pos] > max_symbol:
            raise ZstdError("RLE sequence symbol out of range")
        return _fse_rle(data[pos]), pos + 1
    if mode == 2:
        return _fse_read_description(data, pos, end, max_symbol, max_accuracy)
    if prev is None:
        raise ZstdError("repeat sequence table without an earlier table")
    return prev, pos


def _block(data: bytes, pos: int, end: int, out: bytearray, frame_start: int, st: _State) -> None:
    literals, pos = _literals(data, pos, end, st)
    if pos >= end:
        raise ZstdError("compressed block without a sequences section")
    b0 = data[pos]
    if b0 == 0:
        nseq, pos = 0, pos + 1
    elif b0 < 128:
        nseq, pos = b0, pos + 1
    elif b0 < 255:
        if pos + 2 > end:
            raise ZstdError("sequences header runs past its block")
        nseq, pos = ((b0 - 128) << 8) + data[pos + 1], pos + 2
    else:
        if pos + 3 > end:
            raise ZstdError("sequences header runs past its block")
        nseq, pos = data[pos + 1] + (data[pos + 2] << 8) + 0x7F00, pos + 3
    if nseq == 0:
        if pos != end:
            raise ZstdError("bytes after a block with no sequences")
        out += literals
        return
    if pos >= end:
        raise ZstdError("sequences header runs past its block")
    modes = data[pos]
    pos += 1
    if modes & 3:
        raise ZstdError("reserved bits set in the sequence modes")
    st.ll, pos = _sequence_table(data, pos, end, modes >> 6, _LL_DEFAULT, st.ll, 35, 9)
    st.of, pos = _sequence_table(data, pos, end, (modes >> 4) & 3, _OF_DEFAULT, st.of, 31, 8)
    st.ml, pos = _sequence_table(data, pos, end, (modes >> 2) & 3, _ML_DEFAULT, st.ml, 52, 9)
    ll_t, of_t, ml_t = st.ll, st.of, st.ml
    stream = _Backward(bytes(data[pos:end]))
    ll_s = stream.read(ll_t.accuracy)
    of_s = stream.read(of_t.accuracy)
    ml_s = stream.read(ml_t.accuracy)
    reps = st.reps
    lit = 0
    produced = len(out) - frame_start
    for i in range(nseq):
        of_code = of_t.symbol[of_s]
        ml_code = ml_t.symbol[ml_s]
        ll_code = ll_t.symbol[ll_s]
        if of_code > 31:
            raise ZstdError("offset code out of range")
        offset_value = (1 << of_code) + stream.read(of_code)
        ml = _ML_BASE[ml_code] + stream.read(_ML_BITS[ml_code])
        ll = _LL_BASE[ll_code] + stream.read(_LL_BITS[ll_code])
        if offset_value > 3:
            offset = offset_value - 3
            reps[2], reps[1], reps[0] = reps[1], reps[0], offset
        else:
            idx = offset_value - 1 if ll else offset_value  # 0, 1, 2 or 3 ("rep1 - 1")
            if idx == 0:
                offset = reps[0]
            elif idx == 3:
                offset = reps[0] - 1
                if offset <= 0:
                    raise ZstdError("repeat offset of zero")
                reps[2], reps[1], reps[0] = reps[1], reps[0], offset
            else:
                offset = reps[idx]
                if idx == 2:
                    reps[2] = reps[1]
                reps[1] = reps[0]
                reps[0] = offset
        if lit + ll > len(literals):
            raise ZstdError("sequence takes more literals than the block holds")
        out += literals[lit : lit + ll]
        lit += ll
        produced += ll
        if offset > produced:
            raise ZstdError("match offset before the start of the frame")
        if ml > _BLOCK_MAX:
            raise ZstdError("match longer than a block")
        start = len(out) - offset
        if offset >= ml:
            out += out[start : start + ml]
        else:
            chunk = out[start:]
            out += (chunk * (ml // offset + 1))[:ml]
        produced += ml
        if i != nseq - 1:
            ll_s = ll_t.baseline[ll_s] + stream.read(ll_t.nbits[ll_s])
            ml_s = ml_t.baseline[ml_s] + stream.read(ml_t.nbits[ml_s])
            of_s = of_t.baseline[of_s] + stream.read(of_t.nbits[of_s])
    if stream.pos != 0:
        raise ZstdError("sequence bitstream does not end where its sequences end")
    out += literals[lit:]


# ----------------------------------------------------------------------------- XXH64

_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5
_M64 = (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * _P2) & _M64, 31) * _P1) & _M64


def xxh64(data: bytes, seed: int = 0) -> int:
    """XXH64 of ``data`` (the hash a zstd content checksum keeps the low 32 bits of)."""
    n = len(data)
    pos = 0
    if n >= 32:
        v1 = (seed + _P1 + _P2) & _M64
        v2 = (seed + _P2) & _M64
        v3 = seed
        v4 = (seed - _P1) & _M64
        while pos + 32 <= n:
            a = int.from_bytes(data[pos : pos + 8], "little")
            b = int.from_bytes(data[pos + 8 : pos + 16], "little")
            c = int.from_bytes(data[pos + 16 : pos + 24], "little")
            d = int.from_bytes(data[pos + 24 : pos + 32], "little")
            v1, v2, v3, v4 = _round(v1, a), _round(v2, b), _round(v3, c), _round(v4, d)
            pos += 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M64
        for v in (v1, v2, v3, v4):
            h = ((h ^ _round(0, v)) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while pos + 8 <= n:
        k = _round(0, int.from_bytes(data[pos : pos + 8], "little"))
        h = (_rotl(h ^ k, 27) * _P1 + _P4) & _M64
        pos += 8
    if pos + 4 <= n:
        h = (
            _rotl(h ^ (int.from_bytes(data[pos : pos + 4], "little") * _P1 & _M64), 23) * _P2 + _P3
        ) & _M64
        pos += 4
    while pos < n:
        h = (_rotl(h ^ (data[pos] * _P5 & _M64), 11) * _P1) & _M64
        pos += 1
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    h ^= h >> 32
    return h


# ----------------------------------------------------------------------------- frames


def frame_content_size(data: bytes) -> int | None:
    """The decompressed size a frame header declares, or None when it declares none."""
    if len(data) < 5 or int.from_bytes(data[:4], "little") != MAGIC:
        raise ZstdError("not a Zstandard frame (magic 28 b5 2f fd missing)")
    fhd = data[4]
    fcs_flag, single = fhd >> 6, (fhd >> 5) & 1
    did_size = (0, 1, 2, 4)[fhd & 3]
    pos = 5 + (0 if single else 1) + did_size
    fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if fcs_size == 0:
        return None
    if pos + fcs_size > len(data):
        raise ZstdError("frame header runs past the data")
    value = int.from_bytes(data[pos : pos + fcs_size], "little")
    return value + 256 if fcs_size == 2 else value


def decompress(data: bytes, max_output: int) -> bytes:
    """Decompresses every frame in ``data``; raises ZstdError when it is corrupt or too large."""
    out = bytearray()
    pos = 0
    n = len(data)
    if n == 0:
        raise ZstdError("no data")
    while pos < n:
        if pos + 4 > n:
            raise ZstdError("truncated frame magic")
        magic = int.from_bytes(data[pos : pos + 4], "little")
        if _SKIPPABLE_MIN <= magic <= _SKIPPABLE_MAX:
            if pos + 8 > n:
                raise ZstdError("truncated skippable frame")
            size = int.from_bytes(data[pos + 4 : pos + 8], "little")
            if pos + 8 + size > n:
                raise ZstdError("skippable frame runs past the data")
            pos += 8 + size
            continue
        if magic != MAGIC:
            raise ZstdError(f"not a Zstandard frame at byte {pos} (magic {magic:#010x})")
        pos = _frame(data, pos, out, max_output)
    return bytes(out)


def _frame(data: bytes, pos: int, out: bytearray, max_output: int) -> int:
    n = len(data)
    if pos + 5 > n:
        raise ZstdError("truncated frame header")
    fhd = data[pos + 4]
    if fhd & 0x08:
        raise ZstdError("reserved bit set in the frame header")
    single = (fhd >> 5) & 1
    checksum = (fhd >> 2) & 1
    did_size = (0, 1, 2, 4)[fhd & 3]
    fcs_size = (1 if single else 0, 2, 4, 8)[fhd >> 6]
    hp = pos + 5
    window = None
    if not single:
        if hp >= n:
            raise ZstdError("truncated frame header")
        wd = data[hp]
        exponent, mantissa = wd >> 3, wd & 7
        base = 1 << (10 + exponent)
        window = base + (base // 8) * mantissa
        hp += 1
    if hp + did_size + fcs_size > n:
        raise ZstdError("truncated frame header")
    if did_size and int.from_bytes(data[hp : hp + did_size], "little") != 0:
        raise ZstdError("frame needs a dictionary (not supported)")
    hp += did_size
    content_size = None
    if fcs_size:
        content_size = int.from_bytes(data[hp : hp + fcs_size], "little")
        if fcs_size == 2:
            content_size += 256
        hp += fcs_size
    if content_size is not None and len(out) + content_size > max_output:
        raise ZstdError(f"frame declares {content_size} bytes, above the limit {max_output}")
    if window is not None and window > max(max_output, 1 << 10) * 2 and window > (1 << 27):
        raise ZstdError("frame window larger than airgap accepts")
    start = len(out)
    st = _State()
    pos = hp
    while True:
        if pos + 3 > n:
            raise ZstdError("truncated block header")
        bh = int.from_bytes(data[pos : pos + 3], "little")
        pos += 3
        last, btype, bsize = bh & 1, (bh >> 1) & 3, bh >> 3
        if btype == 3:
            raise ZstdError("reserved block type")
        if btype == 1:
            if pos + 1 > n:
                raise ZstdError("truncated RLE block")
            if bsize > _BLOCK_MAX:
                raise ZstdError("block larger than 128 KiB")
            if len(out) + bsize > max_output:
                raise ZstdError(f"output above the limit {max_output}")
            out += bytes([data[pos]]) * bsize
            pos += 1
        else:
            if bsize > _BLOCK_MAX:
                raise ZstdError("block larger than 128 KiB")
            if pos + bsize > n:
                raise ZstdError("block runs past the end of the data")
            if btype == 0:
                if len(out) + bsize > max_output:
                    raise ZstdError(f"output above the limit {max_output}")
                out += data[pos : pos + bsize]
            else:
                _block(data, pos, pos + bsize, out, start, st)
                if len(out) > max_output:
                    raise ZstdError(f"output above the limit {max_output}")
            pos += bsize
        if last:
            break
    if content_size is not None and len(out) - start != content_size:
        raise ZstdError(f"frame declares {content_size} bytes but decodes to {len(out) - start}")
    if checksum:
        if pos + 4 > n:
            raise ZstdError("truncated content checksum")
        want = int.from_bytes(data[pos : pos + 4], "little")
        got = xxh64(bytes(out[start:])) & 0xFFFFFFFF
        if want != got:
            raise ZstdError("content checksum mismatch")
        pos += 4
    return pos
