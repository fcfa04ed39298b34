"""The SETTINGS and PING floods' common part (settings_flood.py, ping_flood.py)."""

from h2test import *


def flood(kind, payload, what):
    r = Raw(rcvbuf=4096)
    frame = r.frame(kind, 0, 0, payload)
    sent = 0
    while sent < 500_000:
        if not r.write(frame * 1000):
            break
        sent += 1000
    # Now read what pibl sent: ACKs, then its GOAWAY.
    acks = 0
    while True:
        f = r.read_frame(10)
        if not f:
            fail("%s flood: %d sent, %d ACKs read, then %s without GOAWAY" % (
                what, sent, acks, "EOF" if f is None else "silence"))
        if f[0] == kind and f[1] & ACK:
            acks += 1
        if f[0] == GOAWAY:
            code = struct.unpack(">I", f[3][4:8])[0]
            if code != ENHANCE_YOUR_CALM:
                fail("%s flood: GOAWAY code %d" % (what, code))
            ok("%s flood: GOAWAY ENHANCE_YOUR_CALM after %d frames sent, %d ACKs" % (
                what, sent, acks))
