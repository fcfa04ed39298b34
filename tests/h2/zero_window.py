"""Zero-window stall: the client sets INITIAL_WINDOW_SIZE 0, asks for a large response and never
opens the window. pibl sends the head, no DATA, holds bounded memory (the Rust side watches its
RSS) and times the connection out. Arguments 4 and 5: the response's size, and `hold SECONDS`
to only hold the stall that long and leave (the memory check without the timeout)."""

from h2test import *

SETTINGS_INITIAL_WINDOW_SIZE = 4
size = int(sys.argv[4]) if len(sys.argv) > 4 else 20_000_000
started = time.time()
r = Raw(settings=[(SETTINGS_INITIAL_WINDOW_SIZE, 0)])
r.headers(1, request_headers("/big?n=%d" % size))
r.until(lambda f: f[0] == HEADERS and f[2] == 1, 20)
print("head received after %.1fs" % (time.time() - started), flush=True)
hold = float(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "hold" else None
ended = None
while time.time() - started < (hold or 60):
    f = r.read_frame(1)
    if f is None:
        ended = "EOF"
        break
    if f is False:
        continue
    if f[0] == DATA and f[2] == 1 and len(f[3]) > 0:
        fail("DATA on a stream whose window is 0")
    if f[0] == GOAWAY:
        ended = "GOAWAY %d" % struct.unpack(">I", f[3][4:8])[0]
        break
    if f[0] == RST_STREAM:
        ended = "RST_STREAM %d" % struct.unpack(">I", f[3][:4])[0]
        break
if ended is None and hold:
    ok("stalled for %.0fs: the head, no DATA" % hold)
if ended is None:
    fail("the stalled connection was not timed out within 60 s")
ok("stalled stream ended by pibl after %.1fs: %s" % (time.time() - started, ended))
