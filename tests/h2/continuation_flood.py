"""CONTINUATION flood (2024): a header block that never ends, in large frames and in empty
ones. pibl bounds the block and the number of frames: GOAWAY ENHANCE_YOUR_CALM long before
memory grows (the Rust side watches pibl's RSS)."""

from h2test import *


def flood(fragment, what):
    r = Raw()
    r.send(HEADERS, END_STREAM, 1, r.block(request_headers("/cf")))
    sent = 0
    frame = r.frame(CONTINUATION, 0, 1, fragment)
    goaway = None
    closed = False
    while sent < 64 * 1024 * 1024 and goaway is None and not closed:
        for _ in range(16):
            if not r.write(frame):
                closed = True
                break
            sent += len(frame)
        for f in r.poll():
            if f is None:
                break
            if f[0] == GOAWAY:
                goaway = f
    if goaway is None:
        goaway = r.until(lambda f: f[0] == GOAWAY)
    code = struct.unpack(">I", goaway[3][4:8])[0]
    if code != ENHANCE_YOUR_CALM:
        fail("%s: GOAWAY code %d, not ENHANCE_YOUR_CALM" % (what, code))
    if not r.closed_after(5):
        fail("%s: the connection stayed open after GOAWAY" % what)
    return sent


# Literal fields without indexing (`x-flood: aaa...`), 16,000 bytes a frame.
field = b"\x00\x07x-flood" + bytes([0x7F]) + bytes([0x80 | (3000 - 127) & 0x7F, (3000 - 127) >> 7]) + b"a" * 3000
big = flood(field * 5, "large CONTINUATION frames")
empty = flood(b"", "empty CONTINUATION frames")
ok("GOAWAY ENHANCE_YOUR_CALM after %d bytes of large frames and %d bytes of empty ones" % (big, empty))
