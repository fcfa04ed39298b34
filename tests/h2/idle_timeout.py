"""An idle connection (no stream open) is closed after the keep-alive timeout: GOAWAY NO_ERROR
with the last stream served, then close. Arguments 4 and 5: the most and the fewest seconds
it may take (the keep-alive timeout and its slack)."""

from h2test import *

within = float(sys.argv[4]) if len(sys.argv) > 4 else 30
at_least = float(sys.argv[5]) if len(sys.argv) > 5 else 0
started = time.time()
r = Raw()
r.headers(1, request_headers("/before-idle"))
r.until(lambda f: f[2] == 1 and f[0] in (HEADERS, DATA) and f[1] & END_STREAM)
last, code, debug = r.goaway(within)
waited = time.time() - started
if code != NO_ERROR or last != 1:
    fail("GOAWAY code %d last stream %d (%r)" % (code, last, debug))
if waited < at_least:
    fail("GOAWAY after %.1fs, before the keep-alive timeout" % waited)
if not r.closed_after(5):
    fail("still open after GOAWAY")
ok("idle connection: GOAWAY NO_ERROR, last stream 1, closed after %.1fs" % waited)
