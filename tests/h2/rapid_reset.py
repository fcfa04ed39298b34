"""Rapid reset (CVE-2023-44487): streams opened and reset at once, in a loop. pibl counts the
resets per rate window and ends the connection with GOAWAY ENHANCE_YOUR_CALM."""

from h2test import *

r = Raw()
sid, sent = 1, 0
goaway = None
while sid < 200_000 and goaway is None:
    batch = b""
    for _ in range(50):
        batch += r.frame(HEADERS, END_HEADERS | END_STREAM, sid, r.block(request_headers("/rr")))
        batch += r.frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
        sid += 2
    if not r.write(batch):
        break
    sent += 50
    for f in r.poll():
        if f is None:
            break
        if f[0] == GOAWAY:
            goaway = f
if goaway is None:
    goaway = r.until(lambda f: f[0] == GOAWAY)
code = struct.unpack(">I", goaway[3][4:8])[0]
if code != ENHANCE_YOUR_CALM:
    fail("GOAWAY code %d after %d resets, not ENHANCE_YOUR_CALM" % (code, sent))
ok("GOAWAY ENHANCE_YOUR_CALM after %d streams opened and reset" % sent)
