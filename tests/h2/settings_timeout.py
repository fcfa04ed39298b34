"""A client that never acknowledges pibl's SETTINGS gets GOAWAY SETTINGS_TIMEOUT (RFC 9113
§6.5.3) and is closed once `client_header_timeout` has passed, while a client that did
acknowledge, connected at the same time, is served after that time on its connection.
Arguments 4 and 5: the most and the fewest seconds the GOAWAY may take."""

from h2test import *

SETTINGS_TIMEOUT = 4
within = float(sys.argv[4])
at_least = float(sys.argv[5])
started = time.time()
silent = Raw(read_settings=False)
polite = Client()
polite.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged))
last, code, debug = silent.goaway(within)
waited = time.time() - started
if code != SETTINGS_TIMEOUT:
    fail("GOAWAY code %d (%r), not SETTINGS_TIMEOUT" % (code, debug))
if waited < at_least:
    fail("GOAWAY after %.2fs, before client_header_timeout" % waited)
if not silent.closed_after(5):
    fail("still open after GOAWAY SETTINGS_TIMEOUT")
status, _, body, _ = polite.get("/after-settings-timeout")
if status != 200 or b"GET /after-settings-timeout" not in body:
    fail("the client that acknowledged: %r %r" % (status, body))
ok("GOAWAY SETTINGS_TIMEOUT after %.2fs (%s); the acknowledging client served after it" % (
    waited, debug.decode("utf-8", "replace")))
