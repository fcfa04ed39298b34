"""On reload (SIGHUP, sent by the test once the request is at the backend), pibl sends GOAWAY
NO_ERROR naming the last stream it took (1), the stream in flight finishes whole, and then
the connection closes. Raw frames: Python's h2 library stops taking frames after a GOAWAY,
which RFC 9113 §6.8 does not ask of a client (streams up to the last id go on)."""

from h2test import *

r = Raw()
r.headers(1, request_headers("/slow?head_ms=800&n=1000"), end_stream=True)
goaway, ended, body = None, False, 0
deadline = time.time() + 15
while time.time() < deadline:
    f = r.read_frame(1)
    if f is False:
        continue
    if f is None:
        break
    kind, flags, sid, payload = f
    if kind == GOAWAY:
        goaway = struct.unpack(">II", payload[:8])
    elif kind == DATA and sid == 1:
        body += len(payload)
        ended |= bool(flags & END_STREAM)
    elif kind == RST_STREAM:
        fail("stream %d reset" % sid)
else:
    fail("the connection stayed open (GOAWAY %r, stream ended %r)" % (goaway, ended))
if goaway != (1, NO_ERROR):
    fail("GOAWAY (last stream, code) %r" % (goaway,))
if not ended or body != 1000:
    fail("stream 1: ended %r, %d bytes" % (ended, body))
ok("GOAWAY NO_ERROR last stream 1; the stream in flight finished (1000 bytes); closed")
