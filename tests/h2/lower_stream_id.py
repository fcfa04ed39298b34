"""HEADERS on a stream id lower than one already opened is a connection PROTOCOL_ERROR
(RFC 9113 §5.1.1): GOAWAY with that code and the last stream pibl processed."""

from h2test import *

r = Raw()
r.headers(5, request_headers("/five"))
r.until(lambda f: f[2] == 5 and f[0] in (HEADERS, DATA) and f[1] & END_STREAM)
r.headers(3, request_headers("/three"))
last, code, debug = r.goaway()
if code != PROTOCOL_ERROR:
    fail("GOAWAY code %d (%r), not PROTOCOL_ERROR" % (code, debug))
if last != 5:
    fail("GOAWAY last stream %d, not 5" % last)
if not r.closed_after(5):
    fail("the connection stayed open after GOAWAY")
ok("GOAWAY PROTOCOL_ERROR, last stream 5 (%s)" % debug.decode("utf-8", "replace"))
