#!/usr/bin/env bash
# Instructions pibl executes per request, counted by valgrind's callgrind: repeatable on a noisy
# machine, unlike time. One client sends N requests through pibl (1 worker) to a pibl-origin;
# the run is done twice (N1 and N2 requests) and the difference divided by N2-N1, so start-up
# and shutdown cancel out.
#
#   benches/callgrind.sh                 # proxied /style.css (cache off), cache hits (both on
#                                        # one keep-alive connection), and proxied with a new
#                                        # connection per request (Connection: close)
#   N1=500 N2=2500 benches/callgrind.sh  # fewer requests, faster
#   KEEP=1 benches/callgrind.sh          # keep the callgrind.out files (callgrind_annotate them)
#   ROUTES=1 benches/callgrind.sh        # proxied only: the flat config (one pool) against a
#                                        # routing table of 50 sites and 200 routes (the request
#                                        # matches a site in the middle, by a 3-deep prefix)
#   BIN=DIR benches/callgrind.sh         # measure the pibl binaries in DIR (e.g. a copy of an
#                                        # older build) instead of building target/release
#
# The last case is a compressed cache hit: `compress on`, `Accept-Encoding: gzip`, a 10 KB CSS
# page (served by a second origin from a --root directory) cached, so every request after the
# first is a hit in gzip: compressed on the fly, or served from its stored gzip variant.
#
# Needs valgrind and python3; installs nothing. Uses 127.0.0.1 ports from BASE_PORT (18300).
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-1000}
N2=${N2:-5000}
BASE_PORT=${BASE_PORT:-18300}
KEEP=${KEEP:-0}
ROUTES=${ROUTES:-0}
for tool in valgrind callgrind_annotate python3 cargo; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is missing (apt-get install valgrind python3)" >&2; exit 1; }
done
((N2 > N1)) || { echo "callgrind.sh: N2 must be larger than N1" >&2; exit 1; }

if [ -n "${BIN:-}" ]; then
  bin=$(cd "$BIN" && pwd)
else
  cargo build --release --quiet --bins
  bin=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)
fi
work=$(mktemp -d /tmp/pibl-callgrind.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "$KEEP" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

origin_port=$BASE_PORT
proxy_port=$((BASE_PORT + 1))
"$bin/pibl-origin" --listen "127.0.0.1:$origin_port" --name o1 --workers 1 >"$work/origin.log" 2>&1 &
pids+=($!)
cat >"$work/pibl.conf" <<EOF
listen 127.0.0.1:$proxy_port
backend 127.0.0.1:$origin_port
workers 1
access_log on
log_file $work/pibl.log
EOF

# A client: N requests for PATH, each response read whole (Content-Length or chunked); all on
# one keep-alive connection, or with MODE=close each on a new connection that says
# Connection: close (read to the server's close). ACCEPT_ENCODING=gzip adds that field.
cat >"$work/client.py" <<'PY'
import os, socket, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
close = os.environ.get("MODE") == "close"
conn = "Connection: close\r\n" if close else ""
ae = os.environ.get("ACCEPT_ENCODING")
ae = f"Accept-Encoding: {ae}\r\n" if ae else ""
req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: callgrind\r\nAccept: */*\r\n{ae}{conn}\r\n".encode()

def chunked_end(buf, at):
    """Where a chunked body starting at `at` ends in buf, or None while incomplete."""
    while True:
        line_end = buf.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(buf[at:line_end].split(b";")[0], 16)
        at = line_end + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", at - 2)
            return end + 4 if end >= 0 else None
        at += size + 2
        if at > len(buf):
            return None

def check(head):
    if not head[0].startswith("HTTP/1.1 200"):
        sys.exit(f"unexpected response: {head[0]}")

if close:
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(req)
        buf = b""
        while data := s.recv(65536):
            buf += data
        check(buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n"))
        s.close()
    sys.exit(0)
s = socket.create_connection(("127.0.0.1", port))
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1").split("\r\n")
            check(head)
            lengths = [int(l.split(":", 1)[1]) for l in head if l.lower().startswith("content-length:")]
            if lengths and len(buf) >= end + 4 + lengths[0]:
                buf = buf[end + 4 + lengths[0]:]
                break
            if not lengths:
                done = chunked_end(buf, end + 4)
                if done is not None:
                    buf = buf[done:]
                    break
        data = s.recv(65536)
        if not data:
            sys.exit("connection closed")
        buf += data
PY

wait_port() {
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "callgrind.sh: nothing listens on port $1" >&2
  exit 1
}
wait_port "$origin_port"

# total_instructions NAME N PATH [pibl args...]: runs pibl under callgrind for N requests.
total_instructions() {
  local name=$1 n=$2 path=$3
  shift 3
  local out="$work/callgrind.out.$name.$n"
  rm -rf "$work/cache"
  (cd "$work" && exec valgrind --tool=callgrind --callgrind-out-file="$out" "$bin/pibl" -c "${CONF:-pibl.conf}" "$@" >/dev/null 2>&1) &
  local vg=$!
  wait_port "$proxy_port"
  # The first request fills the cache when it is on; it is part of both runs.
  python3 "$work/client.py" "$proxy_port" "$path" "$n"
  kill -INT "$vg"
  wait "$vg" || true
  # The program's total, and the worker thread's alone (Worker::run, inclusive): the log writer
  # thread's share depends on how many batches it is handed, which follows the wall-clock time
  # of the run (slower under load), so only the worker's figure is steady from run to run.
  callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk '
    /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
    /worker::Worker::run / && !worker { gsub(",", "", $1); worker = $1 }
    END { printf "%.0f %.0f\n", total, worker + 0 }'
}

report() {
  local label=$1 name=$2 path=$3
  shift 3
  local a b aw bw
  read -r a aw < <(total_instructions "$name" "$N1" "$path" "$@")
  read -r b bw < <(total_instructions "$name" "$N2" "$path" "$@")
  printf '%-28s %8d instructions per request, worker thread %d  (%s and %s requests: %s and %s in all)\n' \
    "$label" $(((b - a) / (N2 - N1))) $(((bw - aw) / (N2 - N1))) "$N1" "$N2" "$a" "$b"
}

# The routed config: the flat one plus 50 pools (the same origin) and 50 sites of 4 routes each;
# the client's Host, 127.0.0.1, is site 25, and /style.css goes by longest prefix to /s.
routed_conf() {
  cat "$work/pibl.conf"
  for i in $(seq 0 49); do
    echo "pool p$i { backend 127.0.0.1:$origin_port }"
  done
  for i in $(seq 0 49); do
    host="site$i.example.com"
    [ "$i" = 25 ] && host="127.0.0.1"
    echo "site $host www.site$i.example.com { route / p$i; route /s p$i; route /static/ p$i; route = /exact p$i }"
  done
}

if [ "$ROUTES" = 1 ]; then
  echo "pibl $(git rev-parse --short HEAD 2>/dev/null || echo '?'), access log on, 1 worker, valgrind $(valgrind --version)"
  report "proxied, one pool" flat /style.css
  routed_conf >"$work/routed.conf"
  mv "$work/routed.conf" "$work/pibl.conf"
  report "proxied, 50 sites 200 routes" routed /style.css
  [ "$KEEP" = 1 ] && echo "callgrind files in $work"
  exit 0
fi

echo "pibl $(git rev-parse --short HEAD 2>/dev/null || echo '?'), access log on, 1 worker, valgrind $(valgrind --version)"
report "proxied GET /style.css" proxied /style.css
report "cache hit GET /style.css" hit /style.css -t 600
MODE=close report "proxied, new connection each" close /style.css

# The compressed hit: a second origin serving a 10 KB stylesheet from a directory.
text_port=$((BASE_PORT + 2))
mkdir -p "$work/site"
python3 - "$work/site/page.css" <<'PY'
import sys
rules = []
i = 0
while sum(map(len, rules)) < 10_000:
    rules.append(f".block-{i} {{ margin: {i % 7}px {i % 5}em; color: #{i * 2654435761 % 0xffffff:06x}; "
                 f"font: {12 + i % 6}px/1.{i % 9} sans-serif; }}\n")
    i += 1
open(sys.argv[1], "w").write("".join(rules))
PY
"$bin/pibl-origin" --listen "127.0.0.1:$text_port" --name text --root "$work/site" --workers 1 >"$work/text-origin.log" 2>&1 &
pids+=($!)
wait_port "$text_port"
sed "s/^backend .*/backend 127.0.0.1:$text_port/" "$work/pibl.conf" >"$work/compress.conf"
echo "compress on" >>"$work/compress.conf"
CONF=compress.conf ACCEPT_ENCODING=gzip report "cache hit, gzip (10 KB css)" gzhit /page.css -t 600
[ "$KEEP" = 1 ] && echo "callgrind files in $work"
exit 0
