#!/usr/bin/env bash
# Compare pibl with nginx and HAProxy as reverse proxies on loopback (issue 7).
#
#   benches/compare.sh          throughput matrix: proxies x scenarios x connection counts x rounds
#   benches/compare.sh idle     memory per idle keep-alive client connection
#
# Settings (environment):
#   DURATION=10        seconds of each timed wrk run          WARMUP=2   seconds of warm-up before it
#   CONNS="64 256"     wrk connection counts                  ROUNDS=5   rounds, interleaved
#   SCENARIOS="small 4k 1m cache" (also: close, routed, tls-small, tls-close, tls-resume, tls-1m,
#                      text, text-cache, text-br, small-compress)
#                      routed: small through pibl with a routing table of 50 sites and 200 routes
#                      (the request's host is a site in the middle); nginx and HAProxy serve it
#                      as small, so pibl's routed/small ratios in one run are routing's cost
#                      text: a 100 KB HTML page asked with Accept-Encoding: gzip, compression on
#                      (pibl compress on, nginx gzip on, HAProxy compression, all at gzip level
#                      GZIP_LEVEL); text-cache: the same page from each proxy's cache (nginx
#                      gzips every hit; pibl serves its stored gzip variant); text-br: the page
#                      with Accept-Encoding: br (pibl only: Debian's nginx has no brotli);
#                      small-compress: small (no Accept-Encoding) through the compression-on
#                      instances, so small-compress/small is what compression on costs identity
#   GZIP_LEVEL=2       the gzip level of the text scenarios (pibl's default)
#   h2-small, h2-4k:   HTTP/2 over TLS (ALPN h2), driven by h2load: H2_CONNS connections of
#                      H2_STREAMS concurrent streams each (not CONNS); nginx 'listen ... ssl http2',
#                      HAProxy 'alpn h2,http/1.1', pibl's TLS listener (h2 on by default)
#   H2_CONNS="8"       h2load connection counts        H2_STREAMS=100  streams per connection
#   PROXIES="nginx haproxy pibl"                              IDLE_TRANSPORTS="plain" (also: tls, h2)
#   IDLE_CONNS=10000   connections held in idle mode          IDLE_PROXIES="pibl nginx haproxy"
#   BASE_PORT=18100    first of the loopback ports used (BASE_PORT .. BASE_PORT+50)
#   KEEP_WORKDIR=1     keep the temp work dir even when nothing failed (it is always kept: it holds
#                      the CSV; set KEEP_WORKDIR=0 to delete it on exit)
#
# Installs nothing. Needs nginx, haproxy, wrk, curl, python3 and cargo (cargo only when pibl is
# in the run); the TLS scenarios also openssl and cc. Only ever talks to 127.0.0.1. Stops
# everything it started on exit. See docs/performance.md for what the figures mean.
set -euo pipefail

MODE=${1:-compare}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-"64 256"}
ROUNDS=${ROUNDS:-5}
SCENARIOS=${SCENARIOS:-"small 4k 1m cache"}
PROXIES=${PROXIES:-"nginx haproxy pibl"}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_PROXIES=${IDLE_PROXIES:-"pibl nginx haproxy"}
IDLE_TRANSPORTS=${IDLE_TRANSPORTS:-"plain"}
BASE_PORT=${BASE_PORT:-18100}
KEEP_WORKDIR=${KEEP_WORKDIR:-1}
GZIP_LEVEL=${GZIP_LEVEL:-2}
H2_CONNS=${H2_CONNS:-"8"}
H2_STREAMS=${H2_STREAMS:-100}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}

REPO=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '%s\n' "$*" >&2; }
die() { say "compare.sh: $*"; exit 1; }

case $MODE in
  compare | idle) ;;
  -h | --help | help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown mode '$MODE' (expected: compare, idle)" ;;
esac

# ---------------------------------------------------------------------------------------------
# What this run needs.
for n in $DURATION $WARMUP $ROUNDS $IDLE_CONNS $BASE_PORT $GZIP_LEVEL $H2_STREAMS $CONNS $H2_CONNS; do
  [[ $n =~ ^[0-9]+$ ]] || die "expected a number, got '$n'"
done
ALL_SCENARIOS="small 4k 1m cache close routed tls-small tls-close tls-resume tls-1m text text-cache text-br small-compress h2-small h2-4k"
for s in $SCENARIOS; do
  [[ " $ALL_SCENARIOS " == *" $s "* ]] || die "unknown scenario '$s' ($ALL_SCENARIOS)"
done
for p in $PROXIES $IDLE_PROXIES; do
  case $p in nginx | haproxy | pibl) ;; *) die "unknown proxy '$p' (nginx haproxy pibl)" ;; esac
done
for t in $IDLE_TRANSPORTS; do
  case $t in plain | tls | h2) ;; *) die "unknown idle transport '$t' (plain tls h2)" ;; esac
done
# The proxies and transports this mode runs.
if [[ $MODE == idle ]]; then
  RUN_PROXIES=$IDLE_PROXIES
  RUN_TLS=0 RUN_H2=0
  [[ " $IDLE_TRANSPORTS " == *" tls "* ]] && RUN_TLS=1
  [[ " $IDLE_TRANSPORTS " == *" h2 "* ]] && RUN_TLS=1 RUN_H2=1
else
  RUN_PROXIES=$PROXIES
  RUN_TLS=0 RUN_H2=0
  [[ " $SCENARIOS " == *" tls-"* ]] && RUN_TLS=1
  [[ " $SCENARIOS " == *" h2-"* ]] && RUN_TLS=1 RUN_H2=1
fi
RUN_PIBL=0
[[ " $RUN_PROXIES " == *" pibl "* ]] && RUN_PIBL=1

# ---------------------------------------------------------------------------------------------
# Tools: check, never install.
missing=()
tools=(nginx haproxy wrk curl python3 getconf)
((RUN_PIBL)) && tools+=(cargo)
((RUN_TLS)) && tools+=(openssl cc)
((RUN_H2)) && [[ $MODE == compare ]] && tools+=(h2load)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  say "compare.sh: missing: ${missing[*]}"
  say "Install them first, e.g. on Debian/Ubuntu:"
  say "    sudo apt-get install nginx-light haproxy wrk curl python3 openssl gcc nghttp2-client python3-h2"
  say "and Rust (cargo) from https://rustup.rs"
  exit 1
fi
CLK_TCK=$(getconf CLK_TCK)
if ((RUN_H2)) && [[ $MODE == idle ]] && ! python3 -c 'import h2' 2>/dev/null && ! /usr/bin/python3 -c 'import h2' 2>/dev/null; then
  die "the h2 idle transport needs Python's h2 library (apt-get install python3-h2)"
fi

# ---------------------------------------------------------------------------------------------
# Ports (all on 127.0.0.1).
ORIGIN_PORTS=($((BASE_PORT + 1)) $((BASE_PORT + 2)) $((BASE_PORT + 3)))
declare -A PORT=(
  [nginx]=$((BASE_PORT + 10)) [haproxy]=$((BASE_PORT + 11)) [pibl]=$((BASE_PORT + 12))
  [pibl-routed]=$((BASE_PORT + 13))
  [nginx-cache]=$((BASE_PORT + 20)) [haproxy-cache]=$((BASE_PORT + 21)) [pibl-cache]=$((BASE_PORT + 22))
  [nginx-tls]=$((BASE_PORT + 30)) [haproxy-tls]=$((BASE_PORT + 31)) [pibl-tls]=$((BASE_PORT + 32))
  [nginx-gzip]=$((BASE_PORT + 40)) [haproxy-gzip]=$((BASE_PORT + 41)) [pibl-gzip]=$((BASE_PORT + 42))
  [nginx-gzip-cache]=$((BASE_PORT + 43)) [haproxy-gzip-cache]=$((BASE_PORT + 44)) [pibl-gzip-cache]=$((BASE_PORT + 45))
  [nginx-h2]=$((BASE_PORT + 46)) [haproxy-h2]=$((BASE_PORT + 47)) [pibl-h2]=$((BASE_PORT + 48))
)

# ---------------------------------------------------------------------------------------------
# Build pibl (only when it is in the run).
PIBL_BIN=$CARGO_TARGET_DIR/release/pibl
if ((RUN_PIBL)); then
  say "== building pibl (release) in $CARGO_TARGET_DIR"
  (cd "$REPO" && cargo build --release --quiet --bin pibl) || die "cargo build --release failed"
  [[ -x $PIBL_BIN ]] || die "no binary at $PIBL_BIN"
fi

# ---------------------------------------------------------------------------------------------
# Work dir and clean-up.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pibl-compare.XXXXXX")
# nginx workers drop to 'nobody' when started as root: they must be able to read the files.
chmod 755 "$WORK"
declare -A PID=()        # instance name -> pid of the process we started (nginx: master)
STARTED_PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p
  for p in "${STARTED_PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [[ $KEEP_WORKDIR == 0 && $rc == 0 ]]; then
    rm -rf "$WORK"
  else
    say "work dir: $WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Enough descriptors for 256 clients x 2 sides, and for idle mode.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------------------------------------
# Python helpers: port check, pre-flight check, idle connection holder, summary.
cat >"$WORK/helper.py" <<'PY'
import csv, http.client, os, resource, select, socket, ssl, statistics, sys, time

def tls_context(cafile):
    """A client context that verifies the proxy against the bench CA and offers http/1.1."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx

def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()

def cmd_ports(ports):
    busy = [p for p in ports if not port_free(int(p))]
    if busy:
        print(" ".join(busy))
        sys.exit(1)

def cmd_check(port, path, size, cafile=""):
    """Three requests on one connection: each 200 with the expected body size; report backends.
    With cafile: over TLS, verifying the proxy's certificate, and the session's parameters too."""
    if cafile:
        c = http.client.HTTPSConnection("127.0.0.1", int(port), timeout=5, context=tls_context(cafile))
    else:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
    seen = []
    try:
        for _ in range(3):
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            if r.status != 200 or len(body) != int(size):
                print(f"GET {path}: status {r.status}, {len(body)} bytes (expected 200, {size})")
                sys.exit(1)
            tag = r.getheader("X-Origin", "?")
            cache = r.getheader("X-Cache-Status") or (r.getheader("Age") and "HIT(Age)")
            seen.append(tag + ("/" + cache if cache else ""))
        tls = ""
        if cafile:
            tls = f" ({c.sock.version()}, {c.sock.cipher()[0]}, ALPN {c.sock.selected_alpn_protocol()})"
    except (OSError, http.client.HTTPException) as e:
        print(f"GET {path}: {type(e).__name__}: {e}")
        sys.exit(1)
    c.close()
    print(",".join(seen) + tls)

def cmd_coding(port, path, page, coding):
    """Three requests with Accept-Encoding: coding on one connection: each 200 in that coding,
    decoding to the page's bytes (gzip here; br with the brotli tool when it is installed).
    Prints the coded body's size and what was checked."""
    import gzip, shutil, subprocess
    want = open(page, "rb").read()
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
    sizes = []
    try:
        for _ in range(3):
            c.request("GET", path, headers={"Accept-Encoding": coding})
            r = c.getresponse()
            body = r.read()
            got = r.getheader("Content-Encoding", "")
            if r.status != 200 or got != coding:
                print(f"status {r.status}, Content-Encoding '{got}' (expected 200, {coding})")
                sys.exit(1)
            if coding == "gzip":
                plain = gzip.decompress(body)
            elif shutil.which("brotli"):
                plain = subprocess.run(["brotli", "-d", "-c"], input=body, capture_output=True, check=True).stdout
            else:
                plain = want
            if plain != want:
                print(f"{coding} body decodes to {len(plain)} bytes that differ from the page's {len(want)}")
                sys.exit(1)
            sizes.append(len(body))
    except (OSError, http.client.HTTPException, subprocess.CalledProcessError) as e:
        print(f"{type(e).__name__}: {e}")
        sys.exit(1)
    c.close()
    print(f"{sizes[-1]} bytes on the wire for {len(want)} (x{len(want) / sizes[-1]:.2f}), decoded and compared 3 times")

def h2_get(s, conn, path, port):
    """One GET on an HTTP/2 connection (the h2 library's), read to its end: (status, body)."""
    import h2.events
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "https"),
                            (":authority", f"127.0.0.1:{port}")], end_stream=True)
    s.sendall(conn.data_to_send())
    status, body = None, b""
    while True:
        data = s.recv(65536)
        if not data:
            raise OSError("connection closed by the proxy")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                status = int(dict(ev.headers)[b":status"])
            elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                s.sendall(conn.data_to_send())
                return status, body
            elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise OSError(f"{type(ev).__name__}: {ev}")
        out = conn.data_to_send()
        if out:
            s.sendall(out)

def h2_connect(port, cafile):
    """A TLS connection that agreed h2 by ALPN, with the client preface and SETTINGS sent."""
    import h2.config, h2.connection
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=10), server_hostname="127.0.0.1")
    if s.selected_alpn_protocol() != "h2":
        raise OSError(f"ALPN agreed {s.selected_alpn_protocol()!r}, not h2")
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    return s, conn

def cmd_h2check(port, path, size, cafile):
    """Three GETs on one HTTP/2 connection (ALPN h2 over TLS): each 200 with the expected size.
    Uses Python's h2 library when it is there, else curl --http2."""
    try:
        import h2  # noqa: F401
    except ImportError:
        import subprocess
        for _ in range(3):
            out = subprocess.run(["curl", "-s", "--http2", "--cacert", cafile, "-o", "/dev/null", "-w",
                                  "%{http_version} %{http_code} %{size_download}",
                                  f"https://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
            if out != f"2 200 {size}":
                print(f"curl --http2 {path}: '{out}' (expected '2 200 {size}')")
                sys.exit(1)
        print("3 x 200 over h2 (curl)")
        return
    try:
        s, conn = h2_connect(port, cafile)
        for _ in range(3):
            status, body = h2_get(s, conn, path, port)
            if status != 200 or len(body) != int(size):
                print(f"GET {path} over h2: status {status}, {len(body)} bytes (expected 200, {size})")
                sys.exit(1)
        s.close()
    except (OSError, ssl.SSLError) as e:
        print(f"GET {path} over h2: {type(e).__name__}: {e}")
        sys.exit(1)
    print("3 x 200 over h2")

def cmd_idle_h2(port, n, ready_file, stop_file, max_hold, cafile):
    """Open n HTTP/2 connections (TLS, ALPN h2), one GET /small each, read it, hold them idle."""
    n = int(n)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 100) if hard != resource.RLIM_INFINITY else n + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    socks = []
    for i in range(n):
        try:
            s, conn = h2_connect(port, cafile)
            status, _ = h2_get(s, conn, "/small", port)
            if status != 200:
                raise OSError(f"status {status}")
        except (OSError, ssl.SSLError) as e:
            print(f"connection {i + 1}: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1)
        s.setblocking(False)
        socks.append(s)
    hold(socks, ready_file, stop_file, max_hold)

def cmd_h2load_summary(log):
    """p50 and p99 in ms from h2load's --log-file (start us, status, duration us per request)."""
    times = []
    for line in open(log):
        parts = line.split()
        if len(parts) >= 3:
            times.append(int(parts[2]) / 1000)
    if not times:
        print(" ")
        return
    times.sort()
    q = lambda f: times[min(len(times) - 1, int(f * len(times)))]
    print(f"{q(0.5):.4f} {q(0.99):.4f}")

def recv_ready(s):
    """The bytes a non-blocking socket has now (b"" when a TLS record held no data, e.g. a
    session ticket), None at end of stream."""
    got = b""
    while True:
        try:
            data = s.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return got
        if not data:
            return got if got else None
        got += data

def cmd_idle(port, n, ready_file, stop_file, max_hold, cafile=""):
    """Open n connections, one GET /small each, read every response, hold them idle.
    With cafile: TLS connections, each handshake complete (and verified) before its request."""
    n = int(n)
    ctx = tls_context(cafile) if cafile else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 100) if hard != resource.RLIM_INFINITY else n + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < n + 20:
        print(f"fd limit {hard} too low for {n} connections", file=sys.stderr)
        sys.exit(1)
    req = f"GET /small HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    socks = []
    ep = select.epoll()
    pending = {}
    batch = 200  # connect in batches so the listen backlog never overflows
    for start in range(0, n, batch):
        for _ in range(min(batch, n - start)):
            try:
                s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
                if ctx:
                    s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
            except OSError as e:
                print(f"connection {len(socks) + 1}: {type(e).__name__}: {e}", file=sys.stderr)
                sys.exit(1)
            s.setblocking(False)
            s.send(req)
            socks.append(s)
            pending[s.fileno()] = [s, b""]
            ep.register(s.fileno(), select.EPOLLIN)
        deadline = time.time() + 30
        while len(pending) > 0 and time.time() < deadline:
            for fd, _ in ep.poll(1):
                s, buf = pending[fd]
                data = recv_ready(s)
                if data is None:
                    print("connection closed by the proxy", file=sys.stderr)
                    sys.exit(1)
                buf += data
                pending[fd][1] = buf
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep:
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            length = int(v)
                    if not head.startswith(b"HTTP/1.1 200"):
                        print("non-200: " + head.split(b"\r\n")[0].decode(), file=sys.stderr)
                        sys.exit(1)
                    if len(body) >= length:
                        ep.unregister(fd)
                        del pending[fd]
        if pending:
            print(f"{len(pending)} responses did not arrive", file=sys.stderr)
            sys.exit(1)
    hold(socks, ready_file, stop_file, max_hold)

def hold(socks, ready_file, stop_file, max_hold):
    """Says the connections are ready, holds them until stop_file appears (at most max_hold
    seconds), then prints how many the proxy closed meanwhile (should be none)."""
    with open(ready_file, "w") as f:
        f.write(f"{len(socks)}\n")
    end = time.time() + float(max_hold)
    while time.time() < end and not os.path.exists(stop_file):
        time.sleep(0.1)
    closed = 0
    for s in socks:
        try:
            if recv_ready(s) is None:
                closed += 1
        except OSError:
            closed += 1
    for s in socks:
        s.close()
    print(closed)

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fnum(x, fmt):
    return "-" if x is None else format(x, fmt)

def cmd_summary(path):
    rows = list(csv.DictReader(open(path)))
    def num(r, k):
        try:
            return float(r[k])
        except (TypeError, ValueError):
            return None
    cells = []
    for r in rows:
        key = (r["scenario"], int(r["conns"]))
        if key not in cells:
            cells.append(key)
    proxies = []
    for r in rows:
        if r["proxy"] not in proxies:
            proxies.append(r["proxy"])
    for scen, conns in cells:
        cell = [r for r in rows if r["scenario"] == scen and int(r["conns"]) == conns]
        print(f"\n### {scen}, {conns} connections (median of {len(set(r['round'] for r in cell))} rounds)\n")
        print(f"| {'proxy':<8} | {'req/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'errors':>6} | {'non-2xx':>7} | {'CPU us/req':>10} | {'peak RSS MiB':>12} |")
        print(f"|{'-'*10}|{'-'*11}|{'-'*9}|{'-'*9}|{'-'*8}|{'-'*9}|{'-'*12}|{'-'*14}|")
        by = {}
        for p in proxies:
            rs = [r for r in cell if r["proxy"] == p]
            if not rs:
                continue
            if all(r["status"] != "ok" for r in rs):
                print(f"| {p:<8} | {rs[0]['status']} |")
                continue
            rs = [r for r in rs if r["status"] == "ok"]
            by[p] = {r["round"]: r for r in rs}
            rss = med([num(r, "peak_rss_kib") for r in rs])
            print(f"| {p:<8} | {fnum(med([num(r, 'rps') for r in rs]), '9.0f')} "
                  f"| {fnum(med([num(r, 'p50_ms') for r in rs]), '7.3f')} "
                  f"| {fnum(med([num(r, 'p99_ms') for r in rs]), '7.3f')} "
                  f"| {fnum(med([num(r, 'socket_errors') for r in rs]), '6.0f')} "
                  f"| {fnum(med([num(r, 'non2xx') for r in rs]), '7.0f')} "
                  f"| {fnum(med([num(r, 'cpu_us_per_req') for r in rs]), '10.2f')} "
                  f"| {fnum(None if rss is None else rss / 1024, '12.1f')} |")
        if "pibl" in by:
            print()
            for peer in [p for p in proxies if p != "pibl" and p in by]:
                ratios = {}
                for k in ("rps", "cpu_us_per_req", "p99_ms"):
                    per_round = []
                    for rnd, pr in by["pibl"].items():
                        qr = by[peer].get(rnd)
                        a, b = num(pr, k), (num(qr, k) if qr else None)
                        if a is not None and b:
                            per_round.append(a / b)
                    ratios[k] = med(per_round)
                print(f"pibl / {peer}: req/s x{fnum(ratios['rps'], '.2f')}, "
                      f"CPU per request x{fnum(ratios['cpu_us_per_req'], '.2f')}, "
                      f"p99 x{fnum(ratios['p99_ms'], '.2f')}  (median of per-round ratios; "
                      f"req/s higher is better, CPU and p99 lower is better)")
        # TLS scenarios with a new connection per request: what the handshakes really were.
        shakes = []
        for p in by:
            full = sum(num(r, "handshakes_full") or 0 for r in by[p].values())
            resumed = sum(num(r, "handshakes_resumed") or 0 for r in by[p].values())
            if full + resumed > 0:
                shakes.append(f"{p} {full:.0f} full, {resumed:.0f} resumed ({100 * resumed / (full + resumed):.1f}%)")
        if shakes:
            print("\nTLS handshakes completed by wrk in the timed runs: " + "; ".join(shakes))
    # Scenarios measured against another of the same run, for each proxy: what routing (pibl's
    # table; nginx and HAProxy serve small twice, their ratio is the noise) and compression on
    # cost a request that neither routes far nor compresses.
    for scen, base in (("routed", "small"), ("small-compress", "small")):
        for conns in sorted({c for s2, c in cells if s2 == scen}):
            line = []
            for p in proxies:
                pairs = []
                for r in rows:
                    if r["proxy"] != p or r["scenario"] != scen or int(r["conns"]) != conns or r["status"] != "ok":
                        continue
                    b = [q for q in rows if q["proxy"] == p and q["scenario"] == base and int(q["conns"]) == conns
                         and q["round"] == r["round"] and q["status"] == "ok"]
                    a, bb = num(r, "cpu_us_per_req"), (num(b[0], "cpu_us_per_req") if b else None)
                    if a is not None and bb:
                        pairs.append(a / bb)
                if pairs:
                    line.append(f"{p} x{fnum(med(pairs), '.2f')} (rounds: {', '.join(f'{x:.2f}' for x in pairs)})")
            if line:
                print(f"\nCPU per request, {scen} / {base}, {conns} connections: " + "; ".join(line))

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"ports": lambda: cmd_ports(args), "check": lambda: cmd_check(*args),
     "idle": lambda: cmd_idle(*args), "summary": lambda: cmd_summary(*args),
     "coding": lambda: cmd_coding(*args), "h2check": lambda: cmd_h2check(*args),
     "idle_h2": lambda: cmd_idle_h2(*args), "h2load_summary": lambda: cmd_h2load_summary(*args)}[cmd]()
PY
# Debian's python3-h2 is for the system python: prefer it when the first python3 on PATH (e.g.
# pyenv's) lacks the h2 library.
PYTHON=python3
if ! python3 -c 'import h2' 2>/dev/null && /usr/bin/python3 -c 'import h2' 2>/dev/null; then
  PYTHON=/usr/bin/python3
fi
helper() { "$PYTHON" "$WORK/helper.py" "$@"; }

all_ports=("${ORIGIN_PORTS[@]}" "${PORT[@]}")
if ! busy=$(helper ports "${all_ports[@]}"); then
  die "ports already in use on 127.0.0.1: $busy (set BASE_PORT to another range)"
fi

# ---------------------------------------------------------------------------------------------
# Process bookkeeping.

# Children of a pid (nginx workers, cache manager).
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }

# The processes whose CPU and memory count for an instance.
proxy_pids() {
  local inst=$1
  case $inst in
    nginx*) children "${PID[$inst]}" ;;
    *) echo "${PID[$inst]}" ;;
  esac
}

# utime+stime in clock ticks, summed over the given pids.
cpu_ticks() {
  local total=0 p s
  local -a f
  for p in "$@"; do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }           # fields after "(comm)": f[0] is field 3
    read -ra f <<<"$s"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# Sum of a /proc/PID/status field (VmHWM, VmRSS) in KiB.
status_kib() {
  local field=$1 total=0 p v
  shift
  for p in "$@"; do
    v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# Resets the peak-RSS counter (VmHWM) so it covers only the coming run. Returns 1 if refused.
reset_hwm() {
  local p ok=0
  for p in "$@"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || ok=1; done
  return $ok
}

wait_port() { # port pid seconds
  local port=$1 pid=$2 tries=$(($3 * 10))
  while ((tries-- > 0)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start NAME PORT LOGFILE CMD...: starts a process in the background, waits for its port.
start() {
  local name=$1 port=$2 log=$3
  shift 3
  "$@" >/dev/null 2>"$log" &
  local pid=$!
  STARTED_PIDS+=("$pid")
  if ! wait_port "$port" "$pid" 10; then
    say "compare.sh: $name did not start listening on 127.0.0.1:$port; its stderr ($log):"
    sed 's/^/    /' "$log" | head -5 >&2
    kill "$pid" 2>/dev/null || true
    return 1
  fi
  PID[$name]=$pid
}

# ---------------------------------------------------------------------------------------------
# Origins: one nginx, one worker, three ports; /small (100-byte body), /4k, /1m files.
mkdir -p "$WORK/www" "$WORK/origin"
head -c 4096 /dev/urandom >"$WORK/www/4k"
head -c 1048576 /dev/urandom >"$WORK/www/1m"
# text.html: 100 KB of HTML like a real page's (a table of words and numbers drawn from a fixed
# seed), which gzip level 2 shrinks about 4x; exactly TEXT_SIZE bytes.
TEXT_SIZE=102400
python3 - "$WORK/www/text.html" "$TEXT_SIZE" <<'PY'
import random, sys
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
words = ("proxy cache backend request response header stream client server route pool weight "
         "status latency bytes gzip brotli zstd edge worker event socket buffer timeout health "
         "upstream listener config reload signal metric table chart page item price order user").split()
head = ("<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>pibl text page</title>"
        "<link rel=stylesheet href=/style.css></head>\n<body><h1>Orders</h1>\n<table class=orders>\n")
rows = []
n = 0
while len(head) + sum(map(len, rows)) < size - 200:
    n += 1
    cells = " ".join(rng.choice(words) for _ in range(rng.randint(3, 8)))
    rows.append(f'<tr id="r{n}"><td class=id>{n}</td><td class=name>{cells}</td>'
                f'<td class=qty>{rng.randint(1, 999)}</td><td class=price>{rng.randint(100, 99999) / 100:.2f}</td></tr>\n')
body = head + "".join(rows) + "</table>\n"
end = "</body></html>\n"
pad = size - len(body) - len(end) - len("<!--  -->\n")
doc = body + "<!-- " + "x" * pad + " -->\n" + end
assert len(doc.encode()) == size, len(doc)
open(path, "w").write(doc)
PY
chmod 644 "$WORK/www/"*
SMALL_BODY=$(printf 'pibl benchmark origin: a small response body of exactly one hundred bytes....%023d' 0)
((${#SMALL_BODY} == 100)) || die "small body is ${#SMALL_BODY} bytes"
declare -A PATH_OF=([small]=/small [4k]=/4k [1m]=/1m [cache]=/4k [close]=/small [routed]=/small
  [tls-small]=/small [tls-close]=/small [tls-resume]=/small [tls-1m]=/1m
  [text]=/text.html [text-cache]=/text.html [text-br]=/text.html [small-compress]=/small
  [h2-small]=/small [h2-4k]=/4k)
# The identity size (the pre-flight check asks for no coding; check_coding checks the coded ones).
declare -A SIZE_OF=([small]=100 [4k]=4096 [1m]=1048576 [cache]=4096 [close]=100 [routed]=100
  [tls-small]=100 [tls-close]=100 [tls-resume]=100 [tls-1m]=1048576
  [text]=$TEXT_SIZE [text-cache]=$TEXT_SIZE [text-br]=$TEXT_SIZE [small-compress]=100
  [h2-small]=100 [h2-4k]=4096)
# The coding each text scenario asks for.
declare -A CODING_OF=([text]=gzip [text-cache]=gzip [text-br]=br)
# close: every request on a new connection (the client sends Connection: close), as from
# clients without keep-alive; the proxy pays accept and close each time. tls-close and
# tls-resume do the same over TLS, with a full handshake or a resumed one each time.
declare -A WRK_HEADER_OF=([close]="Connection: close" [tls-close]="Connection: close"
  [tls-resume]="Connection: close" [text]="Accept-Encoding: gzip" [text-cache]="Accept-Encoding: gzip"
  [text-br]="Accept-Encoding: br")
# TLS scenarios: whether wrk may resume its last session when it reconnects (it does unless the
# shim, benches/tls_session_shim.c, drops the session before each handshake).
declare -A TLS_RESUME_OF=([tls-small]=1 [tls-close]=0 [tls-resume]=1 [tls-1m]=1)

# ---------------------------------------------------------------------------------------------
# TLS: one certificate for every proxy, and wrk's session shim.
#
# An ECDSA P-256 CA and a leaf for localhost and 127.0.0.1 that it signs, made here for this run.
# The leaf alone is served (no chain: the clients hold the CA). The pre-flight checks and the idle
# holder verify against the CA; wrk never verifies (SSL_VERIFY_NONE), which changes only the
# client's cost, not the proxy's.
TLS_DIR=$WORK/tls
SHIM=$TLS_DIR/tls_session_shim.so
if ((RUN_TLS)); then
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR"
    ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
    ec_key ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=pibl compare.sh CA" -out ca.pem
    ec_key key.pem
    openssl req -new -key key.pem -subj "/CN=localhost" -out leaf.csr
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
      "keyUsage=digitalSignature" "extendedKeyUsage=serverAuth" >leaf.ext
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -sha256 \
      -extfile leaf.ext -out cert.pem
    cat cert.pem key.pem >haproxy.pem # HAProxy's crt: certificate and key in one file
    chmod 600 ca.key key.pem haproxy.pem
  ) >"$WORK/tls.log" 2>&1 || die "openssl could not make the certificate (see $WORK/tls.log)"
  cc -shared -fPIC -O2 -o "$SHIM" "$REPO/benches/tls_session_shim.c" -ldl >>"$WORK/tls.log" 2>&1 ||
    die "cc could not build benches/tls_session_shim.c (see $WORK/tls.log)"
  say "== TLS: ECDSA P-256 certificate for localhost and 127.0.0.1 in $TLS_DIR (CA: ca.pem)"
fi

{
  cat <<EOF
worker_processes 1;
daemon off;
pid $WORK/origin/nginx.pid;
error_log $WORK/origin/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    sendfile on;
    tcp_nodelay on;
    default_type application/octet-stream;
    client_body_temp_path $WORK/origin/client_body;
EOF
  for i in 0 1 2; do
    cat <<EOF
    server {
        listen 127.0.0.1:${ORIGIN_PORTS[$i]};
        root $WORK/www;
        add_header X-Origin o$((i + 1));
        location = /small { default_type text/plain; return 200 "$SMALL_BODY"; }
        location = /text.html { default_type text/html; }
        location / { }
    }
EOF
  done
  echo "}"
} >"$WORK/origin/nginx.conf"

say "== work dir $WORK"
say "== starting the origins (nginx, 1 worker) on 127.0.0.1:${ORIGIN_PORTS[*]}"
start origin "${ORIGIN_PORTS[0]}" "$WORK/origin/stderr.log" \
  nginx -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" ||
  die "the origin nginx failed to start"
for port in "${ORIGIN_PORTS[@]:1}"; do
  wait_port "$port" "${PID[origin]}" 5 || die "origin port $port is not listening"
done

# ---------------------------------------------------------------------------------------------
# Proxy configurations.

# nginx_conf DIR PORT CACHE(0/1) WORKER_CONNECTIONS [TLS(0/1)] [GZIP(0/1)]
nginx_conf() {
  local dir=$1 port=$2 cache=$3 wc=$4 tls=${5:-0} gzip=${6:-0}
  cat <<EOF
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $wc; }
http {
    # Buffered like pibl's access log, which a separate thread writes in batches.
    access_log $dir/access.log combined buffer=64k flush=1s;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    tcp_nodelay on;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy_temp;
EOF
  # The types pibl compresses by default (nginx always includes text/html).
  ((gzip)) && cat <<EOF
    gzip on;
    gzip_comp_level $GZIP_LEVEL;
    gzip_min_length 1024;
    gzip_proxied any;
    gzip_vary on;
    gzip_types text/plain text/css application/json application/javascript application/xml image/svg+xml;
EOF
  cat <<EOF
    upstream origins {
        server 127.0.0.1:${ORIGIN_PORTS[0]};
        server 127.0.0.1:${ORIGIN_PORTS[1]};
        server 127.0.0.1:${ORIGIN_PORTS[2]};
        keepalive 512;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
EOF
  ((cache)) && echo "    proxy_cache_path $dir/cache levels=1:2 keys_zone=bench:10m max_size=1g inactive=60m use_temp_path=off;"
  cat <<EOF
    server {
EOF
  if ((tls)); then
    cat <<EOF
        listen 127.0.0.1:$port ssl$( ((tls == 2)) && echo " http2");
        ssl_certificate $TLS_DIR/cert.pem;
        ssl_certificate_key $TLS_DIR/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_tickets on;
EOF
  else
    echo "        listen 127.0.0.1:$port;"
  fi
  cat <<EOF
        location / {
            proxy_pass http://origins;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # pibl adds X-Forwarded-For too.
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            # Stream bodies through memory buffers as pibl does, never via temp files.
            proxy_max_temp_file_size 0;
EOF
  # shellcheck disable=SC2016 # $upstream_cache_status is nginx's variable, not the shell's
  ((cache)) && printf '            proxy_cache bench;\n            proxy_cache_valid 200 10m;\n            add_header X-Cache-Status $upstream_cache_status;\n'
  cat <<EOF
        }
    }
}
EOF
}

# haproxy_conf PORT CACHE(0/1) MAXCONN [TLS(0/1)] [GZIP(0/1)]
haproxy_conf() {
  local port=$1 cache=$2 maxconn=$3 tls=${4:-0} gzip=${5:-0}
  local bind="bind 127.0.0.1:$port"
  # tune.ssl.cachesize left at its default (20000 sessions); tickets are on by default.
  local alpn=http/1.1
  ((tls == 2)) && alpn=h2,http/1.1
  ((tls)) && bind+=" ssl crt $TLS_DIR/haproxy.pem alpn $alpn ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3"
  cat <<EOF
global
    nbthread 2
    maxconn $maxconn
EOF
  # HAProxy compresses at tune.comp.maxlevel (its default is 1).
  ((gzip)) && echo "    tune.comp.maxlevel $GZIP_LEVEL"
  cat <<EOF
    # no 'log' line: HAProxy logs nothing (its default)
defaults
    mode http
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 3s
    timeout client 300s
    timeout server 60s
    timeout http-keep-alive 300s
frontend fe
    $bind
    default_backend origins
backend origins
    balance roundrobin
EOF
  if ((gzip)); then
    printf '    compression algo gzip\n    compression type text/html text/plain text/css application/json application/javascript application/xml image/svg+xml\n'
  fi
  if ((cache)); then
    printf '    http-request cache-use bench\n    http-response cache-store bench\n'
  fi
  cat <<EOF
    server o1 127.0.0.1:${ORIGIN_PORTS[0]}
    server o2 127.0.0.1:${ORIGIN_PORTS[1]}
    server o3 127.0.0.1:${ORIGIN_PORTS[2]}
EOF
  if ((cache)); then
    printf 'cache bench\n    total-max-size 64\n    max-age 600\n'
  fi
}

# pibl_conf DIR PORT CACHE(0/1) [TLS(0/1)] [GZIP(0/1)]
pibl_conf() {
  local dir=$1 port=$2 cache=$3 tls=${4:-0} gzip=${5:-0}
  if ((tls)); then
    echo "listen 127.0.0.1:$port tls"
    echo "certificate $TLS_DIR/cert.pem $TLS_DIR/key.pem"
  else
    echo "listen 127.0.0.1:$port"
  fi
  cat <<EOF
backend 127.0.0.1:${ORIGIN_PORTS[0]}
backend 127.0.0.1:${ORIGIN_PORTS[1]}
backend 127.0.0.1:${ORIGIN_PORTS[2]}
workers 2
access_log on
log_file $dir/pibl.log
keepalive_timeout 300s
# nginx's 'keepalive 512' idle upstream connections per worker, over the three origins.
upstream_pool_size 171
EOF
  ((cache)) && echo "cache on"
  # The gzip level the others use; br and zstd keep pibl's defaults (text-br).
  ((gzip)) && printf 'compress on\ncompress_level gzip=%s\n' "$GZIP_LEVEL"
  return 0
}

# routing_table: 50 pools and 50 sites of 4 routes each (as benches/callgrind.sh ROUTES=1); the
# site in the middle is 127.0.0.1, wrk's Host, and its routes lead to the three origins.
routing_table() {
  local i host
  for i in $(seq 0 49); do
    echo "pool p$i { backend 127.0.0.1:${ORIGIN_PORTS[0]}; backend 127.0.0.1:${ORIGIN_PORTS[1]}; backend 127.0.0.1:${ORIGIN_PORTS[2]} }"
  done
  for i in $(seq 0 49); do
    host="site$i.example.com"
    [[ $i == 25 ]] && host="127.0.0.1"
    echo "site $host www.site$i.example.com { route / p$i; route /s p$i; route /static/ p$i; route = /exact p$i }"
  done
}

# start_proxy PROXY VARIANT [WORKER_CONNECTIONS]: VARIANT plain, cache, tls, routed (pibl only),
# gzip (compression on), gzip-cache (and the cache) or h2 (TLS offering h2 by ALPN), starting
# instance PROXY or PROXY-VARIANT.
# Returns 1 if it failed, with the reason in START_ERROR.
START_ERROR=""
start_proxy() {
  local proxy=$1 variant=$2 inst=$1 wc=${3:-8192} cache=0 tls=0 gzip=0
  case $variant in
    cache) inst=$proxy-cache cache=1 ;;
    tls) inst=$proxy-tls tls=1 ;;
    routed) inst=$proxy-routed ;;
    gzip) inst=$proxy-gzip gzip=1 ;;
    gzip-cache) inst=$proxy-gzip-cache gzip=1 cache=1 ;;
    h2) inst=$proxy-h2 tls=2 ;;
  esac
  local dir=$WORK/$inst port=${PORT[$inst]}
  mkdir -p "$dir"
  START_ERROR="did not start (see above)"
  case $proxy in
    nginx)
      nginx_conf "$dir" "$port" "$cache" "$wc" "$tls" "$gzip" >"$dir/nginx.conf"
      start "$inst" "$port" "$dir/stderr.log" \
        nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
      ;;
    haproxy)
      haproxy_conf "$port" "$cache" "$wc" "$tls" "$gzip" >"$dir/haproxy.cfg"
      start "$inst" "$port" "$dir/stderr.log" haproxy -db -f "$dir/haproxy.cfg"
      ;;
    pibl)
      pibl_conf "$dir" "$port" "$cache" "$tls" "$gzip" >"$dir/pibl.conf"
      [[ $variant == routed ]] && routing_table >>"$dir/pibl.conf"
      local args=(-c "$dir/pibl.conf")
      ((cache)) && args+=(-t 600)
      # A pibl without TLS rejects 'listen ... tls' and 'certificate': ask --check first, so
      # that is reported as what it is rather than as a failed start.
      if ((tls)) && ! "$PIBL_BIN" "${args[@]}" --check >"$dir/check.log" 2>&1; then
        START_ERROR="no TLS support in this build"
        say "compare.sh: pibl: no TLS support in this build; pibl --check says:"
        head -3 "$dir/check.log" | sed 's/^/    /' >&2
        return 1
      fi
      start "$inst" "$port" "$dir/stderr.log" "$PIBL_BIN" "${args[@]}"
      ;;
  esac
}

# check_proxy INSTANCE SCENARIO: one connection, three requests, each 200 with the right size
# (over TLS for a -tls instance, verifying the certificate against the bench CA).
check_proxy() {
  local inst=$1 scen=$2 seen cafile=""
  [[ $inst == *-tls || $inst == *-h2 ]] && cafile=$TLS_DIR/ca.pem
  if ! seen=$(helper check "${PORT[$inst]}" "${PATH_OF[$scen]}" "${SIZE_OF[$scen]}" "$cafile"); then
    say "compare.sh: $inst failed the pre-flight check for $scen: $seen"
    return 1
  fi
  say "   $inst ${PATH_OF[$scen]}: 3 x 200, origins $seen"
}

# check_coding INSTANCE SCENARIO: for a text scenario, three requests asking for its coding
# must come back in that coding and decode to the page; reports the bytes on the wire.
# Returns 1 (with the reason in START_ERROR) when the instance does not compress.
check_coding() {
  local inst=$1 scen=$2 coding=${CODING_OF[$2]:-}
  [[ -n $coding ]] || return 0
  if ! START_ERROR=$(helper coding "${PORT[$inst]}" "${PATH_OF[$scen]}" "$WORK/www${PATH_OF[$scen]}" "$coding"); then
    say "compare.sh: $inst does not serve ${PATH_OF[$scen]} in $coding: $START_ERROR"
    return 1
  fi
  say "   $inst ${PATH_OF[$scen]} in $coding: $START_ERROR"
  WIRE_BYTES["$inst $coding"]=${START_ERROR%% *}
}
declare -A WIRE_BYTES=() # "instance coding" -> compressed body bytes

# ---------------------------------------------------------------------------------------------
# Idle mode.
if [[ $MODE == idle ]]; then
  say "== idle mode: $IDLE_CONNS idle keep-alive connections per proxy (fd limit $(ulimit -n)), over: $IDLE_TRANSPORTS"
  table=$(printf '| proxy | processes | RSS before (MiB) | RSS with %s idle (MiB) | per connection (KiB) | closed by proxy |\n|---|---|---|---|---|---|' "$IDLE_CONNS")
  idle_runs=()
  for transport in $IDLE_TRANSPORTS; do for proxy in $IDLE_PROXIES; do idle_runs+=("$transport $proxy"); done; done
  for run in "${idle_runs[@]}"; do
    read -r transport proxy <<<"$run"
    # tls: a -tls instance; the holder completes (and verifies) each handshake before its request.
    inst=$proxy label=$proxy scheme=http cafile=""
    if [[ $transport == tls ]]; then
      inst=$proxy-tls label="$proxy (TLS)" scheme=https cafile=$TLS_DIR/ca.pem
    elif [[ $transport == h2 ]]; then
      inst=$proxy-h2 label="$proxy (h2)" scheme=https cafile=$TLS_DIR/ca.pem
    fi
    limit=$((IDLE_CONNS + 2000))
    if [[ $proxy == haproxy ]] && (($(ulimit -n) < 2 * limit + 100)); then
      # HAProxy reserves two descriptors per connection up front and refuses to start otherwise.
      limit=$((($(ulimit -n) - 100) / 2))
      if ((limit < IDLE_CONNS + 100)); then
        table+=$'\n'"| $label | skipped: needs ~2 descriptors per connection, fd limit is $(ulimit -n) |"
        say "   $label skipped: the fd limit $(ulimit -n) is too low for $IDLE_CONNS connections"
        continue
      fi
    fi
    if ! start_proxy "$proxy" "$transport" "$limit"; then
      table+=$'\n'"| $label | skipped: $START_ERROR |"
      continue
    fi
    if ! check_proxy "$inst" small >/dev/null; then
      table+=$'\n'"| $label | skipped: failed its check |"
      kill -TERM "${PID[$inst]}" 2>/dev/null || true
      wait "${PID[$inst]}" 2>/dev/null || true
      continue
    fi
    # Warm up first, so buffer pools and upstream connections are at their working size and
    # "before" differs from "after" only by the idle connections.
    wrk -t1 -c256 -d2s "$scheme://127.0.0.1:${PORT[$inst]}/small" >/dev/null 2>&1 || true
    sleep 1
    mapfile -t pids < <(proxy_pids "$inst")
    before=$(status_kib VmRSS "${pids[@]}")
    rm -f "$WORK/idle.ready" "$WORK/idle.stop"
    idle_cmd=idle
    [[ $transport == h2 ]] && idle_cmd=idle_h2
    "$PYTHON" "$WORK/helper.py" "$idle_cmd" "${PORT[$inst]}" "$IDLE_CONNS" "$WORK/idle.ready" "$WORK/idle.stop" 120 "$cafile" \
      >"$WORK/idle.out" 2>"$WORK/idle.err" &
    holder=$!
    STARTED_PIDS+=("$holder")
    for _ in $(seq 1200); do
      [[ -e $WORK/idle.ready ]] && break
      kill -0 "$holder" 2>/dev/null || break
      sleep 0.1
    done
    if [[ ! -e $WORK/idle.ready ]]; then
      say "   $label: the connection holder failed: $(cat "$WORK/idle.err")"
      kill "$holder" 2>/dev/null || true
      wait "$holder" 2>/dev/null || true
    else
      sleep 1
      mapfile -t pids < <(proxy_pids "$inst")
      after=$(status_kib VmRSS "${pids[@]}")
      touch "$WORK/idle.stop"
      wait "$holder" || true
      closed=$(cat "$WORK/idle.out")
      table+=$'\n'$(awk -v p="$label" -v n="${#pids[@]}" -v b="$before" -v a="$after" -v c="$IDLE_CONNS" -v cl="$closed" \
        'BEGIN { printf "| %s | %d | %.1f | %.1f | %.2f | %s |\n", p, n, b/1024, a/1024, (a-b)/c, cl }')
    fi
    kill -TERM "${PID[$inst]}" 2>/dev/null || true
    wait "${PID[$inst]}" 2>/dev/null || true
  done
  printf '\n## Idle connections: %s, %s cores, %s\n\n%s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$(nproc)" "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$table"
  say "RSS is VmRSS summed over the proxy's processes (nginx: its 2 workers), read after one"
  say "2 s wrk warm-up at 256 connections, then one request per connection, responses fully read;"
  say "shared pages count once per process. TLS: the same, each connection's handshake complete."
  exit 0
fi

# start_for PROXY VARIANT PREFIX LABEL: starts PROXY's VARIANT instance (tls or h2) and checks
# it for each scenario named PREFIX*; a proxy that cannot start it or fails a check here is left
# out of those scenarios only (with the reason), not the whole run.
start_for() {
  local proxy=$1 variant=$2 prefix=$3 label=$4 inst=$1-$2 skip="" s seen
  if ! start_proxy "$proxy" "$variant"; then
    skip=$START_ERROR
  else
    for s in $SCENARIOS; do
      [[ $s == "$prefix"* ]] || continue
      if [[ $variant == h2 ]]; then
        seen=$(helper h2check "${PORT[$inst]}" "${PATH_OF[$s]}" "${SIZE_OF[$s]}" "$TLS_DIR/ca.pem") ||
          { skip="failed its h2 pre-flight check: $seen"; break; }
        say "   $inst ${PATH_OF[$s]}: $seen"
      else
        check_proxy "$inst" "$s" || { skip="failed its $label pre-flight check"; break; }
      fi
    done
  fi
  if [[ -n $skip ]]; then
    for s in $SCENARIOS; do [[ $s == "$prefix"* ]] && SKIP["$proxy $s"]=$skip; done
    say "compare.sh: SKIPPING $proxy in the $label scenarios: $proxy: $skip"
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------
# Compare mode: start every proxy instance the scenarios need.
say "== starting the proxies"
declare -A SKIP=() # "proxy scenario" -> reason
need_plain=0 need_cache=0 need_tls=0 need_routed=0 need_gzip=0 need_gzip_cache=0 need_h2=0
for s in $SCENARIOS; do
  case $s in
    cache) need_cache=1 ;;
    tls-*) need_tls=1 ;;
    routed) need_plain=1 need_routed=1 ;;
    text | text-br | small-compress) need_gzip=1 ;;
    text-cache) need_gzip_cache=1 ;;
    h2-*) need_h2=1 ;;
    *) need_plain=1 ;;
  esac
done
for proxy in $PROXIES; do
  if ((need_plain)); then
    start_proxy "$proxy" plain || die "$proxy failed to start (see above)"
    for s in $SCENARIOS; do
      [[ $s == cache || $s == tls-* || $s == text* || $s == small-compress || $s == h2-* ]] && continue
      check_proxy "$proxy" "$s" || die "$proxy returned wrong responses"
    done
  fi
  if ((need_routed)) && [[ $proxy == pibl ]]; then
    start_proxy pibl routed || die "pibl failed to start with the routing table (see above)"
    check_proxy pibl-routed routed || die "pibl returned wrong responses with the routing table"
  fi
  ((need_tls)) && start_for "$proxy" tls tls- TLS
  ((need_h2)) && start_for "$proxy" h2 h2- h2
  # Compression: a proxy that cannot serve a coding is left out of that scenario only.
  if ((need_gzip)); then
    start_proxy "$proxy" gzip || die "$proxy failed to start with compression on (see above)"
    for s in $SCENARIOS; do
      [[ $s == text || $s == text-br || $s == small-compress ]] || continue
      check_proxy "$proxy-gzip" "$s" || die "$proxy returned wrong responses with compression on"
      check_coding "$proxy-gzip" "$s" || SKIP["$proxy $s"]="does not compress in ${CODING_OF[$s]}"
    done
  fi
  if ((need_gzip_cache)); then
    if [[ $proxy == haproxy ]]; then
      SKIP["haproxy text-cache"]="not measured (its cache and compression filters are not set up here)"
    else
      start_proxy "$proxy" gzip-cache || die "$proxy failed to start with its cache and compression on"
      check_proxy "$proxy-gzip-cache" text-cache || die "$proxy returned wrong responses with its cache on"
      # The gzip request after the identity ones: pibl makes its variant on the first hit.
      check_coding "$proxy-gzip-cache" text-cache || SKIP["$proxy text-cache"]="does not compress its hits"
    fi
  fi
  if ((need_cache)); then
    if start_proxy "$proxy" cache && check_proxy "$proxy-cache" cache; then
      :
    else
      SKIP["$proxy cache"]="does not start with its cache configuration"
      say "compare.sh: SKIPPING $proxy in the cache scenario: it does not start with its cache"
      say "            configuration (for pibl: 'cache on' and -t 600; the cache is not built yet)."
    fi
  fi
done
say "   note: HAProxy runs without logging (its default); nginx and pibl write access logs."

CSV=$WORK/results.csv
echo "round,scenario,conns,proxy,rps,p50_ms,p99_ms,requests,socket_errors,non2xx,cpu_us_per_req,peak_rss_kib,status,handshakes_full,handshakes_resumed" >"$CSV"

# wrk latency "1.23ms" / "456.00us" / "1.02s" -> ms
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.4f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.4f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.4f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.4f", v * 1000 }
    else printf "" }'
}

# run_cell ROUND SCENARIO CONNS PROXY: one timed run, one CSV row.
run_cell() {
  local round=$1 scen=$2 conns=$3 proxy=$4 inst=$4 scheme=http
  case $scen in
    cache) inst=$proxy-cache ;;
    tls-*) inst=$proxy-tls scheme=https ;;
    routed) [[ $proxy == pibl ]] && inst=pibl-routed ;;
    text | text-br | small-compress) inst=$proxy-gzip ;;
    text-cache) inst=$proxy-gzip-cache ;;
    h2-*) inst=$proxy-h2 scheme=https ;;
  esac
  if [[ -n ${SKIP["$proxy $scen"]:-} ]]; then
    echo "$round,$scen,$conns,$proxy,,,,,,,,,skipped: ${SKIP["$proxy $scen"]},," >>"$CSV"
    return
  fi
  local url="$scheme://127.0.0.1:${PORT[$inst]}${PATH_OF[$scen]}"
  local out=$WORK/wrk-r$round-$scen-c$conns-$proxy.txt
  local -a extra=()
  [[ -n ${WRK_HEADER_OF[$scen]:-} ]] && extra=(-H "${WRK_HEADER_OF[$scen]}")
  # TLS: wrk under the session shim (full or resumed handshakes, and their count; tls-resume
  # hands the warm-up's last session to the timed run, so its first connections resume too),
  # and a longer timeout than wrk's 2 s (256 connections of 1 MiB or of handshakes on 2 cores).
  local -a warm_env=() timed_env=()
  local shakes_file=$WORK/handshakes-r$round-$scen-c$conns-$proxy.txt
  if [[ $scen == tls-* ]]; then
    local session_file=$WORK/tls/session-$proxy.der
    rm -f "$session_file"
    warm_env=(env "LD_PRELOAD=$SHIM" "PIBL_BENCH_TLS_RESUME=${TLS_RESUME_OF[$scen]}")
    [[ $scen == tls-resume ]] && warm_env+=("PIBL_BENCH_TLS_SESSION_FILE=$session_file")
    timed_env=("${warm_env[@]}" "PIBL_BENCH_TLS_STATS=$shakes_file")
    extra+=(--timeout 10s)
  fi
  # The client: wrk, or for the h2 scenarios h2load (CONNS connections of H2_STREAMS streams
  # each, over TLS with ALPN h2; p50/p99 from its log of every request).
  local client=wrk log=$WORK/h2load.log
  local -a warm_cmd timed_cmd
  if [[ $scen == h2-* ]]; then
    client=h2load
    warm_cmd=(h2load -t1 -c"$conns" -m"$H2_STREAMS" -D"$WARMUP" "$url")
    timed_cmd=(h2load -t1 -c"$conns" -m"$H2_STREAMS" -D"$DURATION" --log-file="$log" "$url")
  else
    warm_cmd=("${warm_env[@]}" wrk -t1 -c"$conns" -d"${WARMUP}s" "${extra[@]}" "$url")
    timed_cmd=("${timed_env[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" --latency "${extra[@]}" "$url")
  fi
  "${warm_cmd[@]}" >/dev/null 2>&1 || true
  local -a pids
  mapfile -t pids < <(proxy_pids "$inst")
  local hwm_note=""
  reset_hwm "${pids[@]}" || hwm_note=" (peak since start: clear_refs refused)"
  local t0 t1
  t0=$(cpu_ticks "${pids[@]}")
  "${timed_cmd[@]}" >"$out" 2>&1 || true
  t1=$(cpu_ticks "${pids[@]}")
  local rss
  rss=$(status_kib VmHWM "${pids[@]}")
  local requests rps p50 p99 errs non2xx cpu
  if [[ $client == h2load ]]; then
    # "requests: 1000 total, 1000 started, 1000 done, 990 succeeded, 10 failed, 10 errored, 0 timeout"
    requests=$(awk '/^requests:/ { print $8; exit }' "$out")
    errs=$(awk '/^requests:/ { print $10; exit }' "$out")
    rps=$(awk '/^finished in/ { gsub(",", "", $4); print $4; exit }' "$out")
    non2xx=$(awk '/^status codes:/ { gsub(",", ""); print $5 + $7 + $9; exit }' "$out")
    read -r p50 p99 < <(helper h2load_summary "$log")
    rm -f "$log"
  else
    requests=$(awk '/requests in/ { print $1; exit }' "$out")
    rps=$(awk '/^Requests\/sec:/ { print $2; exit }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2; exit }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2; exit }' "$out")")
    errs=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10; exit }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF; exit }' "$out")
  fi
  local status=ok
  if [[ -z $requests || -z $rps ]]; then
    status="$client failed"
    say "compare.sh: $client output not understood, see $out"
  fi
  cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="${requests:-0}" \
    'BEGIN { if (n > 0) printf "%.3f", d / hz / n * 1e6 }')
  local full="" resumed="" shakes_note=""
  if [[ -s $shakes_file ]]; then
    read -r full resumed <"$shakes_file"
    shakes_note="  handshakes ${full} full ${resumed} resumed"
  elif [[ $scen == tls-* ]]; then
    say "compare.sh: wrk left no handshake counts: the session shim did not load ($scen may have resumed)"
  fi
  echo "$round,$scen,$conns,$proxy,$rps,$p50,$p99,$requests,${errs:-0},${non2xx:-0},$cpu,$rss,$status,$full,$resumed" >>"$CSV"
  printf '   round %s %-5s c=%-4s %-8s %10s req/s  p99 %8s ms  cpu %7s us/req  errors %s non-2xx %s%s%s\n' \
    "$round" "$scen" "$conns" "$proxy" "${rps:--}" "${p99:--}" "${cpu:--}" "${errs:-0}" "${non2xx:-0}" "$hwm_note" "$shakes_note" >&2
}

# The connection counts of a scenario: h2load's for the h2 ones, wrk's otherwise.
conns_of() { if [[ $1 == h2-* ]]; then echo "$H2_CONNS"; else echo "$CONNS"; fi; }

words() { wc -w <<<"$1"; }
ncells=0
for scen in $SCENARIOS; do ncells=$((ncells + $(words "$(conns_of "$scen")") * $(words "$PROXIES"))); done
say "== $ROUNDS rounds x $ncells runs of ${WARMUP}s warm-up + ${DURATION}s (about $((ROUNDS * ncells * (WARMUP + DURATION + 1) / 60 + 1)) min)"
say "   interleaved: every round runs every proxy in every cell before the next round starts"
for round in $(seq "$ROUNDS"); do
  for scen in $SCENARIOS; do
    for conns in $(conns_of "$scen"); do
      for proxy in $PROXIES; do
        run_cell "$round" "$scen" "$conns" "$proxy"
      done
    done
  done
done

echo
echo "## Results: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "wrk -t1, ${DURATION}s runs after ${WARMUP}s warm-up, $ROUNDS rounds interleaved; pibl $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "CPU us/req: the proxy's own utime+stime per request served (nginx: its workers)."
echo "HAProxy runs without logging (its default); nginx and pibl write an access log."
if ((RUN_TLS)); then
  echo "TLS: one ECDSA P-256 certificate for all; tls-close and tls-resume make one request per"
  echo "connection, so their CPU us/req is the cost of a connection with its handshake."
fi
helper summary "$CSV"
if ((${#WIRE_BYTES[@]})); then
  echo
  echo "Bytes on the wire for /text.html ($TEXT_SIZE bytes identity), from the pre-flight checks:"
  for k in "${!WIRE_BYTES[@]}"; do echo "    $k: ${WIRE_BYTES[$k]}"; done | sort
fi
echo
echo "raw per-round results: $CSV"
