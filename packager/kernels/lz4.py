"""The LZ4 block format, decoding only, bounded.

fatbinary's older compression (entry flag 0x2000; CUDA 11.x-12.x ``-compress-all``, and CUDA 13's
``-compress-mode=speed``) stores each payload as one LZ4 block: tokens whose high nibble is a
literal length and low nibble a match length minus 4, each length extended by 255-bytes, a 2-byte
little-endian match offset. The block ends after a literal run. Nothing here trusts a length
without checking it against the input and the declared output size.
"""

from __future__ import annotations


class Lz4Error(ValueError):
    """The data is not a valid LZ4 block of the declared size."""


def decompress_block(data: bytes, size: int) -> bytes:
    """Decodes one LZ4 block that must decode to exactly ``size`` bytes."""
    out = bytearray()
    pos = 0
    n = len(data)
    if n == 0:
        raise Lz4Error("empty LZ4 block")
    while True:
        if pos >= n:
            raise Lz4Error("LZ4 block ends inside a sequence")
        token = data[pos]
        pos += 1
        lit = token >> 4
        if lit == 15:
            while True:
                if pos >= n:
                    raise Lz4Error("LZ4 literal length runs past the block")
                b = data[pos]
                pos += 1
                lit += b
                if b != 255:
                    break
        if pos + lit > n:
            raise Lz4Error("LZ4 literals run past the block")
        if len(out) + lit > size:
            raise Lz4Error(f"LZ4 block decodes to more than the declared {size} bytes")
        out += data[pos : pos + lit]
        pos += lit
        if pos == n or len(out) == size:
            break  # the last sequence is literals only (padding may follow)
        if pos + 2 > n:
            raise Lz4Error("LZ4 match offset runs past the block")
        offset = data[pos] | (data[pos + 1] << 8)
        pos += 2
        if offset == 0 or offset > len(out):
            raise Lz4Error(f"LZ4 match offset {offset} outside the decoded data")
        ml = (token & 15) + 4
        if token & 15 == 15:
            while True:
                if pos >= n:
                    raise Lz4Error("LZ4 match length runs past the block")
                b = data[pos]
                pos += 1
                ml += b
                if b != 255:
                    break
        if len(out) + ml > size:
            raise Lz4Error(f"LZ4 block decodes to more than the declared {size} bytes")
        start = len(out) - offset
        if offset >= ml:
            out += out[start : start + ml]
        else:
            chunk = bytes(out[start:])
            out += (chunk * (ml // offset + 1))[:ml]
    if any(data[pos:]):
        raise Lz4Error("bytes after the end of the LZ4 block")
    if len(out) != size:
        raise Lz4Error(f"LZ4 block decodes to {len(out)} bytes, not the declared {size}")
    return bytes(out)
