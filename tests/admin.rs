//! The admin listener (`admin ADDR`): status counts real traffic, metrics are valid Prometheus
//! text, purges make the next request reach the backend, bad requests get 4xx, and it is not
//! bound unless configured. One test renders `/status` in headless Chromium.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::chromium::{self, dump_dom, run_chromium};
use common::{get, raw_exchange, Backend, Conn, Pibl, Response, TempDir};

/// One request to the admin listener (it closes after each).
fn admin(addr: SocketAddr, method: &str, target: &str) -> Response {
    let mut c = Conn::open(addr);
    c.send(format!("{method} {target} HTTP/1.1\r\nHost: admin\r\n\r\n").as_bytes());
    let r = c.read_response(method == "HEAD").expect("admin response");
    assert_eq!(r.header("Connection"), Some("close"));
    r
}

fn status_json(addr: SocketAddr) -> Json {
    let r = admin(addr, "GET", "/status?json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    Json::parse(&r.text()).unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", r.text()))
}

/// Polls `/status?json` until `ready` holds: the worker records an exchange just after the
/// client has its last byte, so the count may trail the response by a moment.
fn status_when(addr: SocketAddr, ready: impl Fn(&Json) -> bool) -> Json {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let j = status_json(addr);
        if ready(&j) || Instant::now() > until {
            return j;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn backend<'a>(status: &'a Json, name: &str) -> &'a Json {
    status["backends"]
        .items()
        .iter()
        .find(|b| b["name"].str() == name)
        .unwrap_or_else(|| panic!("backend {name} not in status"))
}

/// A port nothing listens on: a backend that is down.
fn dead_backend() -> Backend {
    let b = Backend::start("dead");
    b.kill();
    b
}

#[test]
fn status_json_counts_requests_round_robin_split_and_dead_backend_errors() {
    let (a, b, dead) = (Backend::start("a"), Backend::start("b"), dead_backend());
    let p = Pibl::start(
        &[a.addr, b.addr, dead.addr],
        "admin 127.0.0.1:0\nmax_fails 1\nfail_timeout 60s\n",
    );
    let adm = p.admin_addr();
    const N: u64 = 20;
    let mut c = Conn::open(p.addr);
    for i in 0..N {
        assert_eq!(c.get(&format!("/n{i}")).status, 200);
    }
    let s = status_when(adm, |j| j["requests"].num() == N as f64);
    assert_eq!(s["requests"].num(), N as f64, "{s:?}");
    assert_eq!(s["responses"]["2xx"].num(), N as f64);
    assert_eq!(s["responses"]["5xx"].num(), 0.0);
    assert_eq!(s["version"].str(), env!("CARGO_PKG_VERSION"));
    assert!(
        s["connections_open"].num() >= 1.0,
        "our keep-alive connection"
    );
    assert!(s["connections_accepted"].num() >= 1.0);
    assert!(s["uptime_seconds"].num() >= 0.0);
    assert_eq!(s["cache"]["enabled"], Json::Bool(false));
    // The split matches what each backend saw, and round robin over the two alive is even.
    let (ja, jb) = (
        backend(&s, &a.addr.to_string()),
        backend(&s, &b.addr.to_string()),
    );
    assert_eq!(ja["requests"].num(), a.count() as f64);
    assert_eq!(jb["requests"].num(), b.count() as f64);
    assert_eq!(ja["requests"].num() + jb["requests"].num(), N as f64);
    assert!(
        (ja["requests"].num() - jb["requests"].num()).abs() <= 1.0,
        "{s:?}"
    );
    for j in [ja, jb] {
        assert_eq!(j["state"].str(), "up");
        assert_eq!(j["errors"].num(), 0.0);
        assert!(j["latency_median_ms"].num() > 0.0);
        assert!(j["latency_p99_ms"].num() >= j["latency_median_ms"].num());
    }
    // The dead one was tried once, failed, and is out of the rotation.
    let jd = backend(&s, &dead.addr.to_string());
    assert_eq!(jd["state"].str(), "down", "{s:?}");
    assert_eq!(jd["requests"].num(), 1.0);
    assert_eq!(jd["errors"].num(), 1.0);
    assert_eq!(jd["address"].str(), dead.addr.to_string());
}

#[test]
fn a_request_no_backend_answers_is_an_error_of_each_backend_tried() {
    let dead = dead_backend();
    let p = Pibl::start(&[dead.addr], "admin 127.0.0.1:0\nmax_retries 0\n");
    let adm = p.admin_addr();
    assert_eq!(get(p.addr, "/").status, 502);
    let s = status_when(adm, |j| j["requests"].num() == 1.0);
    assert_eq!(s["responses"]["5xx"].num(), 1.0);
    let jd = backend(&s, &dead.addr.to_string());
    assert_eq!((jd["requests"].num(), jd["errors"].num()), (1.0, 1.0));
}

#[test]
fn metrics_pass_a_strict_exposition_format_check() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let dir = TempDir::new("admin-metrics");
    std::fs::write(
        dir.path().join("pibl.conf"),
        format!(
            "listen 127.0.0.1:0\nworkers 2\nbackend {}\nbackend {}\nadmin 127.0.0.1:0\n",
            a.addr, b.addr
        ),
    )
    .unwrap();
    let p = Pibl::start_in(dir, &["-c", "pibl.conf", "-t", "60"]);
    let adm = p.admin_addr();
    let mut c = Conn::open(p.addr);
    for i in 0..6 {
        c.get(&format!("/m{}", i % 3)); // 3 misses, then 3 hits
    }
    c.get("/res?status=503");
    status_when(adm, |j| j["requests"].num() == 7.0);
    let r = admin(adm, "GET", "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    let m = check_exposition(&text);
    assert_eq!(m["pibl_requests_total"], 7.0, "{text}");
    assert_eq!(m["pibl_responses_total{class=\"2xx\"}"], 6.0);
    assert_eq!(m["pibl_responses_total{class=\"5xx\"}"], 1.0);
    assert_eq!(m["pibl_cache_enabled"], 1.0);
    assert_eq!(m["pibl_cache_hits_total"], 3.0);
    assert_eq!(m["pibl_cache_misses_total"], 4.0);
    assert_eq!(m["pibl_cache_entries"], 3.0);
    for be in [&a, &b] {
        let l = format!("{{backend=\"{}\"}}", be.addr);
        assert_eq!(m[&format!("pibl_backend_up{l}")], 1.0);
        assert_eq!(
            m[&format!("pibl_backend_requests_total{l}")],
            be.count() as f64
        );
        assert_eq!(
            m[&format!("pibl_backend_response_seconds_count{l}")],
            be.count() as f64,
            "one latency sample per request the backend answered"
        );
    }
    let errors: f64 = [&a, &b]
        .iter()
        .map(|be| m[&format!("pibl_backend_errors_total{{backend=\"{}\"}}", be.addr)])
        .sum();
    assert_eq!(errors, 1.0, "the backend's 503");
    let le = format!(
        "pibl_backend_response_seconds_bucket{{backend=\"{}\",le=\"0.005\"}}",
        a.addr
    );
    assert!(m.contains_key(&le), "{text}");
}

/// Checks Prometheus text format 0.0.4 line by line and returns every sample by
/// `name{labels}`: each family has HELP and TYPE before its samples, which are contiguous;
/// counters end in `_total`; histogram buckets rise, end with `le="+Inf"` equal to `_count`.
fn check_exposition(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut help: HashMap<String, usize> = HashMap::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    // Per histogram series (labels without le): (last le, last cumulative count, saw +Inf).
    let mut buckets: HashMap<String, (f64, f64, Option<f64>)> = HashMap::new();
    assert!(text.ends_with('\n'), "exposition ends with a newline");
    for (n, line) in text.lines().enumerate() {
        let at = || format!("line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
            assert!(valid_name(name) && !doc.is_empty(), "{}", at());
            assert!(
                help.insert(name.into(), n).is_none(),
                "second HELP: {}",
                at()
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
            assert!(help.contains_key(name), "TYPE before HELP: {}", at());
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{}",
                at()
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {}", at());
            }
            assert!(types.insert(name.into(), kind.into()).is_none(), "{}", at());
            if let Some(prev) = current.take() {
                finished.push(prev);
            }
            assert!(
                !finished.contains(&name.to_string()),
                "family split: {}",
                at()
            );
            current = Some(name.into());
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{}", at());
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{}", at()));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {}", at())),
        };
        let (name, labels) = parse_series(series).unwrap_or_else(|| panic!("{}", at()));
        let family = current
            .clone()
            .unwrap_or_else(|| panic!("sample before TYPE: {}", at()));
        let kind = types[&family].as_str();
        if kind == "histogram" {
            let suffix = name.strip_prefix(family.as_str()).unwrap_or("?");
            assert!(
                ["_bucket", "_sum", "_count"].contains(&suffix),
                "not of family {family}: {}",
                at()
            );
            let key: Vec<String> = labels
                .iter()
                .filter(|(k, _)| k != "le")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let e = buckets
                .entry(key.join(","))
                .or_insert((f64::MIN, 0.0, None));
            match suffix {
                "_bucket" => {
                    let le = labels
                        .iter()
                        .find(|(k, _)| k == "le")
                        .map(|(_, v)| v.as_str())
                        .unwrap_or_else(|| panic!("bucket without le: {}", at()));
                    let le: f64 = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or_else(|_| panic!("bad le: {}", at()))
                    };
                    assert!(e.2.is_none(), "bucket after +Inf: {}", at());
                    assert!(le > e.0, "le not increasing: {}", at());
                    assert!(value >= e.1, "buckets not cumulative: {}", at());
                    *e = (le, value, le.is_infinite().then_some(value));
                }
                "_count" => {
                    assert_eq!(e.2, Some(value), "+Inf bucket != _count: {}", at());
                }
                _ => assert!(value >= 0.0, "{}", at()),
            }
        } else {
            assert_eq!(name, family, "sample outside its family: {}", at());
            if kind == "counter" {
                assert!(value >= 0.0, "{}", at());
            }
        }
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "duplicate series: {}",
            at()
        );
    }
    for (name, kind) in &types {
        if kind == "histogram" {
            assert!(!buckets.is_empty(), "histogram {name} without series");
        }
    }
    for (series, (_, _, inf)) in &buckets {
        assert!(
            inf.is_some(),
            "histogram series {series} has no +Inf bucket"
        );
    }
    samples
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name` or `name{k="v",...}` with escaped label values.
fn parse_series(s: &str) -> Option<(String, Vec<(String, String)>)> {
    let Some((name, rest)) = s.split_once('{') else {
        return valid_name(s).then(|| (s.to_string(), Vec::new()));
    };
    if !valid_name(name) {
        return None;
    }
    let mut labels = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if !valid_name(&key) || key.contains(':') || chars.next() != Some('=') {
            return None;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    _ => return None,
                },
                '\n' => return None,
                c => value.push(c),
            }
        }
        labels.push((key, value));
        match chars.next()? {
            ',' => continue,
            '}' => break,
            _ => return None,
        }
    }
    chars.next().is_none().then(|| (name.to_string(), labels))
}

fn x_cache(r: &Response) -> &str {
    r.header("X-Cache").unwrap_or("-")
}

/// How many requests for `target` reached the backend.
fn reached(b: &Backend, target: &str) -> usize {
    b.seen().iter().filter(|s| s.target == target).count()
}

#[test]
fn purge_of_one_url_refetches_it_while_others_stay_cached() {
    let be = Backend::start("origin");
    let p = Pibl::start(&[be.addr], "admin 127.0.0.1:0\ncache_ttl 60s\n");
    let adm = p.admin_addr();
    let mut c = Conn::open(p.addr);
    for path in ["/a", "/b?x=1", "/a", "/b?x=1"] {
        assert_eq!(c.get(path).status, 200);
    }
    assert_eq!((reached(&be, "/a"), reached(&be, "/b?x=1")), (1, 1));
    assert_eq!(x_cache(&c.get("/a")), "HIT");

    // Absolute form: the Host the client sent, port 80 implied.
    let r = admin(adm, "PURGE", "/cache/http://test/a");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("GET http://test:80/a"), "{}", r.text());
    let again = c.get("/a");
    assert_eq!(x_cache(&again), "MISS");
    assert_eq!(reached(&be, "/a"), 2, "the purged URL reaches the backend");
    assert_eq!(
        x_cache(&c.get("/b?x=1")),
        "HIT",
        "the other URL is still cached"
    );
    assert_eq!(reached(&be, "/b?x=1"), 1);

    // Path form, query included, every host; DELETE does the same as PURGE.
    let r = admin(adm, "DELETE", "/cache/b?x=1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("purged 1 entry\n"), "{}", r.text());
    assert_eq!(
        admin(adm, "PURGE", "/cache/b?x=1").status,
        404,
        "nothing left"
    );
    assert_eq!(admin(adm, "PURGE", "/cache/http://other:80/a").status, 404);
    assert_eq!(x_cache(&c.get("/b?x=1")), "MISS");
    assert_eq!(reached(&be, "/b?x=1"), 2);
    assert_eq!(x_cache(&c.get("/a")), "HIT");

    // Everything.
    let r = admin(adm, "PURGE", "/cache");
    assert_eq!(
        (r.status, r.text()),
        (200, "purged 2 entries\n".to_string())
    );
    let s = status_json(adm);
    assert_eq!(s["cache"]["entries"].num(), 0.0);
    assert_eq!(s["cache"]["bytes"].num(), 0.0);
    assert_eq!(x_cache(&c.get("/a")), "MISS");
    assert_eq!(x_cache(&c.get("/b?x=1")), "MISS");
    assert_eq!((reached(&be, "/a"), reached(&be, "/b?x=1")), (3, 3));
    let s = status_when(adm, |j| j["requests"].num() == 11.0);
    assert_eq!(s["requests"].num(), 11.0, "{s:?}");
    assert_eq!(s["cache"]["hits"].num(), 5.0, "{s:?}");
    assert_eq!(s["cache"]["misses"].num(), 6.0);
    assert!((s["cache"]["hit_ratio"].num() - 5.0 / 11.0).abs() < 0.001);
    assert_eq!(s["cache"]["entries"].num(), 2.0);
}

#[test]
fn admin_errors_400_404_405_431_and_503_without_cache() {
    let be = Backend::start("origin");
    let p = Pibl::start(&[be.addr], "admin 127.0.0.1:0\n");
    let adm = p.admin_addr();
    let raw = raw_exchange(adm, b"GARBAGE\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.1 400 "), "{raw}");
    let raw = raw_exchange(adm, b"GET /status HTTP/1.1\r\nBad Header\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.1 400 "), "{raw}");
    let raw = raw_exchange(adm, b"GET http://x/status HTTP/1.1\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.1 400 "), "{raw}");
    assert_eq!(admin(adm, "GET", "/status?yaml").status, 400);
    assert_eq!(admin(adm, "GET", "/").status, 404);
    assert_eq!(admin(adm, "GET", "/cachex").status, 404);
    assert_eq!(admin(adm, "GET", "/status/").status, 404);
    let r = admin(adm, "POST", "/status");
    assert_eq!((r.status, r.header("Allow")), (405, Some("GET, HEAD")));
    let r = admin(adm, "PUT", "/metrics");
    assert_eq!((r.status, r.header("Allow")), (405, Some("GET, HEAD")));
    let r = admin(adm, "GET", "/cache");
    assert_eq!((r.status, r.header("Allow")), (405, Some("PURGE, DELETE")));
    let r = admin(adm, "PURGE", "/cache/x");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("cache is off"), "{}", r.text());
    let big = format!(
        "GET /status HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let raw = raw_exchange(adm, big.as_bytes());
    assert!(raw.starts_with("HTTP/1.1 431 "), "{raw}");
    let r = admin(adm, "HEAD", "/status");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert!(r.header("Content-Length").is_some_and(|n| n != "0"));
    // format=json is the long spelling of ?json.
    let r = admin(adm, "GET", "/status?format=json");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
}

#[test]
fn a_stalled_admin_client_stalls_neither_the_proxy_nor_admin_for_long() {
    let be = Backend::start("origin");
    let p = Pibl::start(&[be.addr], "admin 127.0.0.1:0\n");
    let adm = p.admin_addr();
    // Connects and sends half a head, then nothing.
    let mut stalled = std::net::TcpStream::connect(adm).unwrap();
    std::io::Write::write_all(&mut stalled, b"GET /sta").unwrap();
    let t = Instant::now();
    assert_eq!(get(p.addr, "/").status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "the proxy is not held up"
    );
    // The admin thread gives up on the stalled client within its I/O timeout.
    let r = admin(adm, "GET", "/status?json");
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let mut rest = String::new();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = std::io::Read::read_to_string(&mut stalled, &mut rest);
    assert!(rest.starts_with("HTTP/1.1 408 "), "{rest}");
}

/// Listening TCP sockets the process holds (from /proc: its socket fds in LISTEN state).
fn listening_sockets(pid: u32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")
                        .and_then(|r| r.strip_suffix(']'))
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(3) == Some(&"0A") && cols.get(9).is_some_and(|i| inodes.iter().any(|x| x == i))
        })
        .count()
}

#[test]
fn admin_listener_is_not_bound_unless_configured() {
    let be = Backend::start("origin");
    let without = Pibl::start(&[be.addr], "");
    let with = Pibl::start(&[be.addr], "admin 127.0.0.1:0\n");
    with.admin_addr();
    // Two workers, one SO_REUSEPORT listener each; the admin listener is one more.
    assert_eq!(listening_sockets(without.pid()), 2);
    assert_eq!(listening_sockets(with.pid()), 3);
    assert_eq!(get(without.addr, "/").status, 200);
    assert!(!without
        .stdout
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("admin")));
    assert!(!without.log_file().contains("admin listening"));
}

#[test]
fn admin_bind_failure_stops_start_up_with_a_clear_message() {
    let be = Backend::start("origin");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = TempDir::new("admin-bind");
    std::fs::write(
        dir.path().join("pibl.conf"),
        format!(
            "listen 127.0.0.1:0\nbackend {}\nadmin {}\n",
            be.addr,
            taken.local_addr().unwrap()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(["-c", "pibl.conf"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin: cannot listen on"), "{err}");
    assert!(err.contains("address already in use"), "{err}");
}

// ---- headless Chromium ----------------------------------------------------------------------

#[test]
fn status_page_renders_in_headless_chromium() {
    if !chromium::available("status_page_renders_in_headless_chromium") {
        return;
    }
    let (a, b, dead) = (Backend::start("a"), Backend::start("b"), dead_backend());
    let p = Pibl::start(
        &[a.addr, b.addr, dead.addr],
        "admin 127.0.0.1:0\nmax_fails 1\nfail_timeout 60s\n",
    );
    let adm = p.admin_addr();
    let mut c = Conn::open(p.addr);
    for i in 0..9 {
        assert_eq!(c.get(&format!("/p{i}")).status, 200);
    }
    status_when(adm, |j| j["requests"].num() == 9.0);
    let profile = TempDir::new("chromium-profile");
    let dom = dump_dom(&format!("http://{adm}/status"), profile.path());
    assert!(dom.contains("<h1>pibl "), "{dom}");
    for (be, state) in [(&a, "up"), (&b, "up"), (&dead, "down")] {
        let name = be.addr.to_string();
        let start = dom
            .find(&format!("<tr data-backend=\"{name}\">"))
            .unwrap_or_else(|| panic!("no row for {name}: {dom}"));
        let row = &dom[start..start + dom[start..].find("</tr>").unwrap_or(0)];
        let requests = if state == "down" { 1 } else { be.count() };
        assert!(
            row.contains(&format!("<td class=\"state {state}\">{state}</td>")),
            "{row}"
        );
        assert!(
            row.contains(&format!("<td class=\"requests\">{requests}</td>")),
            "{row}"
        );
    }
    assert!(dom.contains("<span id=\"requests\">9</span>"), "{dom}");
}

/// Real traffic through pibl to real backends (hits, misses, 404s, 503s, a dead backend that
/// gets excluded), then `/status` in headless Chromium at desktop and phone widths: four
/// charts with something drawn in each, nothing wider than the window, under the page's own
/// Content-Security-Policy. Screenshots: `target/status-desktop.png`, `target/status-phone.png`.
#[test]
fn status_charts_render_at_desktop_and_phone_widths() {
    if !chromium::available("status_charts_render_at_desktop_and_phone_widths") {
        return;
    }
    let (a, b, dead) = (Backend::start("a"), Backend::start("b"), dead_backend());
    let p = Pibl::start(
        &[a.addr, b.addr, dead.addr],
        "admin 127.0.0.1:0\nmax_fails 1\nfail_timeout 60s\ncache_ttl 60s\n",
    );
    let adm = p.admin_addr();
    let mut c = Conn::open(p.addr);
    let until = Instant::now() + Duration::from_millis(4500);
    let mut i = 0;
    while Instant::now() < until {
        let target = match i % 12 {
            5 => "/res?status=404".to_string(),
            11 => "/res?status=503".to_string(),
            n => format!("/page{}", (i / 12 + n) % 20),
        };
        let r = c.get(&target);
        assert!(r.status < 600, "{target}: {}", r.status);
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let j = status_when(
        adm,
        |j| matches!(j["series"]["samples"], Json::Num(n) if n >= 5.0),
    );
    let page = admin(adm, "GET", "/status");
    assert_eq!(
        page.header("Content-Security-Policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'")
    );
    let series = &j["series"];
    assert_eq!(series["range"].str(), "5m");
    assert!(
        series["responses"]["2xx"]
            .items()
            .iter()
            .any(|x| x.num() > 0.0),
        "{j:?}"
    );
    assert!(
        series["bytes_to_clients"]
            .items()
            .iter()
            .any(|x| x.num() > 0.0),
        "{j:?}"
    );
    let dead_series = series["backends"]
        .items()
        .iter()
        .find(|x| x["name"].str() == dead.addr.to_string())
        .unwrap_or_else(|| panic!("no series for the dead backend: {j:?}"));
    assert!(
        dead_series["state"]
            .items()
            .iter()
            .any(|x| x.str() == "excluded"),
        "{dead_series:?}"
    );
    let hour = status_json_at(adm, "/status?json&range=1h");
    assert_eq!(hour["series"]["step_seconds"].num(), 10.0);

    // The page in an iframe of a same-origin wrapper, whose script measures it.
    let front = StatusFront::start(adm);
    let profile = TempDir::new("chromium-charts");
    for (width, height) in [(1200, 900), (390, 844)] {
        let dom = dump_dom(
            &format!("http://{}/measure?{width}x{height}", front.addr),
            profile.path(),
        );
        let at = dom
            .find("RESULT ")
            .unwrap_or_else(|| panic!("the wrapper measured nothing: {dom}"));
        let text = &dom[at + 7..];
        let text = &text[..text.find('<').unwrap_or(text.len())];
        let m =
            Json::parse(&text.replace("&quot;", "\"")).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(m["charts"].num(), 4.0, "{width}: {m:?}");
        for chart in m["drawn"].items() {
            assert!(
                chart.num() > 0.0,
                "{width}: a chart with nothing drawn: {m:?}"
            );
        }
        assert_eq!(m["csp"].str(), "none", "{width}: {m:?}");
        assert!(
            m["scroll"].num() <= m["inner"].num(),
            "{width}: the page overflows horizontally: {m:?}"
        );
        assert_eq!(m["inner"].num(), width as f64, "{m:?}");
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    for (name, size) in [("desktop", "1200,900"), ("phone", "390,844")] {
        let png = target.join(format!("status-{name}.png"));
        let _ = std::fs::remove_file(&png);
        run_chromium(
            &[
                format!("--window-size={size}"),
                format!("--screenshot={}", png.display()),
                format!("http://{adm}/status"),
            ],
            profile.path(),
            &profile.path().join("screenshot.out"),
        );
        let len = std::fs::metadata(&png).map_or(0, |m| m.len());
        assert!(len > 1000, "no screenshot at {}", png.display());
    }
}

fn status_json_at(addr: SocketAddr, target: &str) -> Json {
    let r = admin(addr, "GET", target);
    assert_eq!(r.status, 200, "{}", r.text());
    Json::parse(&r.text()).unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", r.text()))
}

/// A same-origin front for the admin listener: `/status...` is passed through as it is
/// (headers included, so the page's Content-Security-Policy applies), `/measure?WxH` is a
/// page that loads `/status` in a frame of that size and writes what it measured into itself.
struct StatusFront {
    addr: SocketAddr,
}

const MEASURE_PAGE: &str = r#"<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><iframe id="f" src="/status" style="border:0"></iframe><pre id="out">pending</pre>
<script>
var size = location.search.slice(1).split("x");
var f = document.getElementById("f");
f.width = size[0]; f.height = size[1];
f.addEventListener("load", function () {
  var d = f.contentDocument, w = f.contentWindow;
  var svgs = d.querySelectorAll("svg.chart");
  var drawn = [];
  svgs.forEach(function (s) {
    var n = 0;
    s.querySelectorAll("path").forEach(function (p) {
      if ((p.getAttribute("d") || "").length > 2 && p.getBBox().width > 0) n++;
    });
    n += s.querySelectorAll("circle").length;
    drawn.push(n);
  });
  var x = d.createElement("script");
  x.textContent = "window.ran = 1";
  d.body.appendChild(x);
  var blocked = w.ran === 1 ? "script ran" : "none";
  document.getElementById("out").textContent = "RESULT " + JSON.stringify({
    charts: svgs.length, drawn: drawn, csp: blocked,
    scroll: d.scrollingElement.scrollWidth, inner: w.innerWidth
  });
});
</script></body></html>"#;

impl StatusFront {
    fn start(admin_addr: SocketAddr) -> StatusFront {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the front");
        let addr = listener.local_addr().expect("front address");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = Self::serve(&mut stream, admin_addr);
            }
        });
        StatusFront { addr }
    }

    fn serve(stream: &mut std::net::TcpStream, admin_addr: SocketAddr) -> std::io::Result<()> {
        use std::io::{Read, Write};
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte)? == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        let target = head.split(' ').nth(1).unwrap_or("/");
        if target.starts_with("/status") {
            let mut up = std::net::TcpStream::connect(admin_addr)?;
            up.write_all(format!("GET {target} HTTP/1.1\r\nHost: admin\r\n\r\n").as_bytes())?;
            let mut reply = Vec::new();
            up.read_to_end(&mut reply)?;
            return stream.write_all(&reply);
        }
        let (status, body) = if target.starts_with("/measure") {
            ("200 OK", MEASURE_PAGE)
        } else {
            ("404 Not Found", "")
        };
        stream.write_all(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }
}

// ---- a small JSON reader, enough to check the status document --------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

static NULL: Json = Json::Null;

impl std::ops::Index<&str> for Json {
    type Output = Json;
    fn index(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => m.get(key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

impl Json {
    fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            other => panic!("not a number: {other:?}"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
    fn items(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            other => panic!("not an array: {other:?}"),
        }
    }

    /// Strict: one value, then only whitespace.
    fn parse(s: &str) -> Result<Json, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let v = value(b, &mut i)?;
        skip_ws(b, &mut i);
        if i != b.len() {
            return Err(format!("trailing bytes at {i}"));
        }
        Ok(v)
    }
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b" \t\r\n".contains(&b[*i]) {
        *i += 1;
    }
}

fn value(b: &[u8], i: &mut usize) -> Result<Json, String> {
    skip_ws(b, i);
    let err = |i: usize| format!("unexpected byte at {i}");
    match b.get(*i) {
        Some(b'{') => {
            *i += 1;
            let mut m = BTreeMap::new();
            skip_ws(b, i);
            if b.get(*i) == Some(&b'}') {
                *i += 1;
                return Ok(Json::Obj(m));
            }
            loop {
                skip_ws(b, i);
                let Json::Str(k) = value(b, i)? else {
                    return Err(err(*i));
                };
                skip_ws(b, i);
                if b.get(*i) != Some(&b':') {
                    return Err(err(*i));
                }
                *i += 1;
                let v = value(b, i)?;
                if m.insert(k, v).is_some() {
                    return Err(format!("duplicate key before {i}"));
                }
                skip_ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b'}') => {
                        *i += 1;
                        return Ok(Json::Obj(m));
                    }
                    _ => return Err(err(*i)),
                }
            }
        }
        Some(b'[') => {
            *i += 1;
            let mut a = Vec::new();
            skip_ws(b, i);
            if b.get(*i) == Some(&b']') {
                *i += 1;
                return Ok(Json::Arr(a));
            }
            loop {
                a.push(value(b, i)?);
                skip_ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b']') => {
                        *i += 1;
                        return Ok(Json::Arr(a));
                    }
                    _ => return Err(err(*i)),
                }
            }
        }
        Some(b'"') => {
            *i += 1;
            let mut s = String::new();
            loop {
                match b.get(*i) {
                    None => return Err("unterminated string".into()),
                    Some(b'"') => {
                        *i += 1;
                        return Ok(Json::Str(s));
                    }
                    Some(b'\\') => {
                        let c = match b.get(*i + 1) {
                            Some(b'"') => '"',
                            Some(b'\\') => '\\',
                            Some(b'/') => '/',
                            Some(b'n') => '\n',
                            Some(b'r') => '\r',
                            Some(b't') => '\t',
                            Some(b'u') => {
                                let hex =
                                    std::str::from_utf8(b.get(*i + 2..*i + 6).ok_or("bad \\u")?)
                                        .map_err(|_| "bad \\u")?;
                                *i += 4;
                                char::from_u32(u32::from_str_radix(hex, 16).map_err(|_| "bad \\u")?)
                                    .ok_or("bad \\u")?
                            }
                            _ => return Err(err(*i)),
                        };
                        s.push(c);
                        *i += 2;
                    }
                    Some(&c) if c < 0x20 => return Err(err(*i)),
                    Some(_) => {
                        let start = *i;
                        while *i < b.len() && b[*i] != b'"' && b[*i] != b'\\' && b[*i] >= 0x20 {
                            *i += 1;
                        }
                        s.push_str(std::str::from_utf8(&b[start..*i]).map_err(|e| e.to_string())?);
                    }
                }
            }
        }
        Some(b't') if b[*i..].starts_with(b"true") => {
            *i += 4;
            Ok(Json::Bool(true))
        }
        Some(b'f') if b[*i..].starts_with(b"false") => {
            *i += 5;
            Ok(Json::Bool(false))
        }
        Some(b'n') if b[*i..].starts_with(b"null") => {
            *i += 4;
            Ok(Json::Null)
        }
        Some(c) if *c == b'-' || c.is_ascii_digit() => {
            let start = *i;
            while *i < b.len() && b"+-.eE0123456789".contains(&b[*i]) {
                *i += 1;
            }
            let t = std::str::from_utf8(&b[start..*i]).map_err(|e| e.to_string())?;
            t.parse()
                .map(Json::Num)
                .map_err(|_| format!("bad number {t}"))
        }
        _ => Err(err(*i)),
    }
}

#[test]
fn exposition_checker_rejects_what_it_should() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total 1\n\
              # HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
              h_sum 3\nh_count 2\n";
    assert_eq!(check_exposition(ok)["a_total"], 1.0);
    let broken = [
        "a_total 1\n",                                                // no HELP/TYPE
        "# HELP a x\n# TYPE a counter\na 1\n",                        // counter without _total
        "# HELP a x\n# TYPE a gauge\na{b=\"1} 1\n",                   // unterminated label
        "# HELP a x\n# TYPE a gauge\na one\n",                        // bad value
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 2\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n", // no +Inf
        "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na 2\n", // split family
    ];
    for text in broken {
        let r = std::panic::catch_unwind(|| check_exposition(text));
        assert!(r.is_err(), "accepted: {text:?}");
    }
}

#[test]
fn status_follows_a_reload_and_a_kept_backend_keeps_its_counts() {
    let (a, b) = (Backend::start("ra"), Backend::start("rb"));
    let p = Pibl::start(&[a.addr], "admin 127.0.0.1:0\n");
    let adm = p.admin_addr();
    let mut c = Conn::open(p.addr);
    for i in 0..4 {
        assert_eq!(c.get(&format!("/before{i}")).status, 200);
    }
    status_when(adm, |j| j["requests"].num() == 4.0);

    let conf = std::fs::read_to_string(p.conf_path()).unwrap();
    let conf = conf.replace(
        &format!("backend {}", a.addr),
        &format!("backend {}\nbackend {}", a.addr, b.addr),
    );
    std::fs::write(p.conf_path(), conf).unwrap();
    p.signal(libc::SIGHUP);
    assert!(p.wait_for_line("reloaded pibl.conf: 2 backends", Duration::from_secs(5)));

    for i in 0..4 {
        assert_eq!(c.get(&format!("/after{i}")).status, 200);
    }
    let s = status_when(adm, |j| j["requests"].num() == 8.0);
    let (ja, jb) = (
        backend(&s, &a.addr.to_string()),
        backend(&s, &b.addr.to_string()),
    );
    assert_eq!(ja["requests"].num(), a.count() as f64, "{s:?}");
    assert_eq!(jb["requests"].num(), b.count() as f64, "{s:?}");
    assert_eq!(a.count() + b.count(), 8);
    assert!(b.count() >= 1, "the new backend is in the rotation");
}

/// An absolute URL with a query and no path names the path `/` (RFC 9112 §3.2.1), split by the
/// proxy's own `http::target::split_absolute`: `http://test?x=1` is `/?x=1` on `test` (it used to
/// read `test?x=1` as the host and find nothing).
#[test]
fn purge_of_an_absolute_url_without_a_path_names_the_root() {
    let be = Backend::start("origin");
    let p = Pibl::start(&[be.addr], "admin 127.0.0.1:0\ncache_ttl 60s\n");
    let adm = p.admin_addr();
    let mut c = Conn::open(p.addr);
    assert_eq!(c.get("/?x=1").status, 200);
    assert_eq!(x_cache(&c.get("/?x=1")), "HIT");
    let r = admin(adm, "PURGE", "/cache/HTTP://test?x=1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("GET http://test:80/?x=1"), "{}", r.text());
    assert_eq!(x_cache(&c.get("/?x=1")), "MISS");
}
