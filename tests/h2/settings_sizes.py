"""pibl's SETTINGS carry the configured SETTINGS_MAX_FRAME_SIZE and MAX_HEADER_LIST_SIZE
(arguments 4 and 5: `http2_max_frame_size`, `http2_max_header_list_size`), and pibl holds to
them: a DATA frame of exactly the frame size is taken (the body echoed), one a byte larger is
GOAWAY FRAME_SIZE_ERROR (RFC 9113 §4.2); a header list of exactly the list size (name + value +
32 per field) is served, one a byte larger is GOAWAY ENHANCE_YOUR_CALM."""

from h2test import *

FRAME_SIZE_ERROR = 6
max_frame, max_list = int(sys.argv[4]), int(sys.argv[5])


def advertised(r):
    # MAX_FRAME_SIZE left out is the RFC's initial value, 16384.
    got = (r.server_settings.get(5, 16384), r.server_settings.get(6))
    if got != (max_frame, max_list):
        fail("SETTINGS MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE %r, not %r" % (got, (max_frame, max_list)))


def response(r, sid):
    """Reads stream `sid`'s response: its DATA bytes; fails on a reset or GOAWAY."""
    body = 0
    while True:
        f = r.until(lambda f: f[2] in (0, sid) and f[0] in (HEADERS, DATA, RST_STREAM, GOAWAY))
        if f[0] in (RST_STREAM, GOAWAY):
            fail("stream %d: frame type %d %r" % (sid, f[0], f[3]))
        if f[0] == DATA:
            body += len(f[3])
        if f[1] & END_STREAM:
            return body


def expect_goaway(r, code, last, what):
    got_last, got, debug = r.goaway()
    if (got, got_last) != (code, last):
        fail("%s: GOAWAY code %d last stream %d (%r)" % (what, got, got_last, debug))
    if not r.closed_after(5):
        fail("%s: still open after GOAWAY" % what)


def send_block(r, sid, block):
    """A header block in HEADERS + CONTINUATION of 16384 bytes (any client's default)."""
    first, rest = block[:16384], block[16384:]
    r.send(HEADERS, END_STREAM | (0 if rest else END_HEADERS), sid, first)
    while rest:
        piece, rest = rest[:16384], rest[16384:]
        r.send(CONTINUATION, 0 if rest else END_HEADERS, sid, piece)


def list_of(size):
    """A GET whose header list is `size` bytes as SETTINGS_MAX_HEADER_LIST_SIZE counts."""
    fields = request_headers("/big-head")
    used = sum(len(n) + len(v) + 32 for n, v in fields)
    return fields + [("x-big", "h" * (size - used - len("x-big") - 32))]


# Frames: one of the advertised size, then one a byte over.
r = Raw()
advertised(r)
body = b"f" * max_frame
r.headers(1, request_headers("/echo", "POST", [("content-length", str(max_frame))]), False)
r.send(DATA, END_STREAM, 1, body)
echoed = response(r, 1)
if echoed != max_frame:
    fail("a %d-byte DATA frame: %d bytes echoed" % (max_frame, echoed))
r.headers(3, request_headers("/echo", "POST", [("content-length", str(max_frame + 1))]), False)
r.send(DATA, END_STREAM, 3, b"f" * (max_frame + 1))
expect_goaway(r, FRAME_SIZE_ERROR, 3, "a frame a byte over")

# Header lists: one of the advertised size, then one a byte over.
r = Raw()
advertised(r)
send_block(r, 1, r.block(list_of(max_list)))
response(r, 1)
send_block(r, 3, r.block(list_of(max_list + 1)))
expect_goaway(r, ENHANCE_YOUR_CALM, 1, "a header list a byte over")
ok("SETTINGS MAX_FRAME_SIZE %d, MAX_HEADER_LIST_SIZE %d: each taken at the size, "
   "GOAWAY a byte over" % (max_frame, max_list))
