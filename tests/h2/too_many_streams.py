"""More streams than SETTINGS_MAX_CONCURRENT_STREAMS: the one over is refused with RST_STREAM
REFUSED_STREAM (RFC 9113 §5.1.2), the others go on; once one ends, a new stream is served."""

from h2test import *

SETTINGS_MAX_CONCURRENT_STREAMS = 3
r = Raw()
limit = r.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)
if not limit or limit > 1000:
    fail("pibl advertised SETTINGS_MAX_CONCURRENT_STREAMS %r" % limit)
# POSTs whose body never comes: each stream stays open.
open_ids = [2 * i + 1 for i in range(limit)]
for sid in open_ids:
    r.headers(sid, request_headers("/echo", "POST", [("content-length", "5")]), end_stream=False)
over = 2 * limit + 1
r.headers(over, request_headers("/echo", "POST", [("content-length", "5")]), end_stream=False)
f = r.until(lambda f: f[0] in (RST_STREAM, GOAWAY))
if f[0] == GOAWAY or f[2] != over:
    fail("expected RST_STREAM on stream %d, got frame %r" % (over, f[:3]))
code = struct.unpack(">I", f[3][:4])[0]
if code != REFUSED_STREAM:
    fail("stream %d reset with %d, not REFUSED_STREAM" % (over, code))
# The first stream finishes (its body arrives), which makes room for one more.
r.send(DATA, END_STREAM, open_ids[0], b"12345")
r.until(lambda f: f[2] == open_ids[0] and f[0] in (HEADERS, DATA) and f[1] & END_STREAM)
nxt = over + 2
r.headers(nxt, request_headers("/next"))
f = r.until(lambda f: f[2] == nxt and f[0] in (HEADERS, DATA, RST_STREAM) and (
    f[0] == RST_STREAM or f[1] & END_STREAM))
if f[0] == RST_STREAM:
    fail("stream %d reset after room was made" % nxt)
ok("stream %d of %d refused with REFUSED_STREAM; stream %d served after one ended" % (
    over, limit, nxt))
