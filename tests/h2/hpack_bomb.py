"""HPACK bomb: one dynamic-table entry of 4,000 bytes, then a block that references it 20,000
times (80 MB decoded from 24 KB). pibl bounds the decoded list: a connection error, the
decoded bytes never held."""

from h2test import *


def integer(value, prefix_bits, flags):
    """An HPACK integer (RFC 7541 §5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = [flags | limit]
    value -= limit
    while value >= 128:
        out.append(0x80 | value & 0x7F)
        value >>= 7
    out.append(value)
    return bytes(out)


_, port, ca = args()
auth = authority().encode()
block = b"\x82" + (b"\x87" if ca else b"\x86") + b"\x84"  # GET, scheme, path /
block += b"\x01" + integer(len(auth), 7, 0) + auth  # :authority, literal, not indexed
value = b"b" * 4000
block += b"\x40" + integer(6, 7, 0) + b"x-bomb" + integer(len(value), 7, 0) + value
block += b"\xbe" * 20000  # dynamic index 62: the entry just added
r = Raw()
first, rest = block[:16000], block[16000:]
r.send(HEADERS, END_STREAM, 1, first)
while rest:
    piece, rest = rest[:16000], rest[16000:]
    r.send(CONTINUATION, 0 if rest else END_HEADERS, 1, piece)
last, code, debug = r.goaway()
if code not in (ENHANCE_YOUR_CALM, COMPRESSION_ERROR):
    fail("GOAWAY code %d (%r)" % (code, debug))
ok("GOAWAY %d for a %d-byte block that decodes to %d bytes (%s)" % (
    code, len(block), 20000 * 4038, debug.decode("utf-8", "replace")))
