//! `log_format pibl|combined|json`: each format, written by the real binary for a real request,
//! parsed back field by field (the JSON one with a JSON parser), in the file and on stdout.

mod common;

use std::collections::HashMap;

use common::{Backend, Conn, Pibl};

/// Sends one request with a Referer and a User-Agent that need escaping, and returns the one
/// access line containing `needle` once it is in the log file.
fn one_line(p: &Pibl, path: &str, needle: &str) -> String {
    let mut c = Conn::open(p.addr);
    c.send(
        format!(
            "GET {path} HTTP/1.1\r\nHost: shop.example\r\nReferer: http://r.example/\"q\"\r\n\
             User-Agent: tester/1.0 \\ é\r\nX-Request-ID: rid-7\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(c.read_response(false).expect("response").status, 200);
    let lines = p.wait_for_log(needle, 1);
    assert_eq!(lines.len(), 1, "{}", p.log_file());
    lines[0].clone()
}

#[test]
fn pibl_stays_the_default_line() {
    let b = Backend::start("b1");
    let p = Pibl::start(&[b.addr], "workers 1\n");
    let line = one_line(&p, "/default", "/default");
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[0].len(), 24, "{line}");
    assert!(fields[0].ends_with('Z'));
    assert!(line.contains(" \"GET /default HTTP/1.1\" 200 "), "{line}");
    assert!(line.contains(&b.addr.to_string()), "{line}");
}

#[test]
fn combined_is_nginx_combined() {
    let b = Backend::start("b1");
    let p = Pibl::start(&[b.addr], "workers 1\nlog_format combined\n");
    let line = one_line(&p, "/combined?a=1", "/combined?a=1");
    // $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
    // "$http_referer" "$http_user_agent"
    let (addr, rest) = line.split_once(" - - [").expect(&line);
    assert_eq!(addr, "127.0.0.1");
    let (time, rest) = rest.split_once("] \"").expect(&line);
    // 02/Dec/2026:00:38:17 +0000
    assert_eq!(time.len(), 26, "{time}");
    assert_eq!(&time[2..3], "/");
    assert_eq!(&time[6..7], "/");
    assert!(time.ends_with(" +0000"));
    let (request, rest) = rest.split_once("\" ").expect(&line);
    assert_eq!(request, "GET /combined?a=1 HTTP/1.1");
    let mut words = rest.splitn(3, ' ');
    assert_eq!(words.next(), Some("200"));
    let bytes: u64 = words.next().unwrap().parse().expect(&line);
    assert!(bytes > 0);
    assert_eq!(
        words.next(),
        Some("\"http://r.example/\\x22q\\x22\" \"tester/1.0 \\x5C \\xC3\\xA9\"")
    );
    // On stdout too, the same line.
    assert!(
        p.wait_for_stdout("GET /combined?a=1 HTTP/1.1", 1),
        "{:?}",
        p.stdout
    );
    let echoed = p.stdout.lock().unwrap().iter().any(|l| l == &line);
    assert!(echoed, "{line}");
}

/// `combined`'s bytes are nginx's `$body_bytes_sent`: the body alone, for a proxied response,
/// a cache hit, a response pibl made, and a HEAD (none); the JSON line has both figures.
#[test]
fn combined_counts_body_bytes_as_nginx_does() {
    let b = Backend::start("b1");
    let p = Pibl::start(&[b.addr], "workers 1\nlog_format combined\ncache on\n");
    let body_of = |path: &str| format!("backend b1: GET {path}\n").len() as u64;
    let bytes_in = |needle: &str| -> u64 {
        let lines = p.wait_for_log(needle, 1);
        let line = lines.last().expect("a line").clone();
        let (_, rest) = line.split_once(&format!("{needle}\" ")).expect(&line);
        let mut words = rest.split(' ');
        words.next();
        words.next().unwrap().parse().expect(&line)
    };
    let mut c = Conn::open(p.addr);
    // Proxied, then the same from the cache.
    let r = c.get("/body/a");
    assert_eq!(r.status, 200);
    assert_eq!(bytes_in("GET /body/a HTTP/1.1"), body_of("/body/a"));
    let r = c.get("/body/a");
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(p.wait_for_log("GET /body/a HTTP/1.1", 2).len(), 2);
    let hit = p.wait_for_log("GET /body/a HTTP/1.1", 2)[1].clone();
    assert!(
        hit.contains(&format!(" 200 {} ", body_of("/body/a"))),
        "{hit}"
    );
    // HEAD: a head and no body.
    c.send(b"HEAD /body/h HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(true).expect("response").status, 200);
    assert_eq!(bytes_in("HEAD /body/h HTTP/1.1"), 0);
    // A response pibl makes: its body is the error text, not its head.
    c.send(b"GET /bad\x01 HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 400);
    let lines = p.wait_for_log("\" 400 ", 1);
    assert!(
        lines[0].contains(&format!("\" 400 {} ", r.body.len())),
        "{} (body {} bytes)",
        lines[0],
        r.body.len()
    );
}

#[test]
fn json_is_one_object_per_line_with_every_field() {
    let b = Backend::start("b1");
    let p = Pibl::start(&[b.addr], "workers 1\nlog_format json\nrequest_id on\n");
    let line = one_line(&p, "/json/\"x\"", "/json/\\\"x");
    let v = parse_object(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let s = |k: &str| match v.get(k) {
        Some(Json::Str(s)) => s.clone(),
        other => panic!("{k}: {other:?} in {line}"),
    };
    let n = |k: &str| match v.get(k) {
        Some(Json::Num(n)) => *n,
        other => panic!("{k}: {other:?} in {line}"),
    };
    assert_eq!(s("time").len(), 24);
    assert_eq!(s("client"), "127.0.0.1");
    assert!(n("client_port") > 0.0);
    assert_eq!(s("method"), "GET");
    assert_eq!(s("host"), "shop.example");
    assert_eq!(s("path"), "/json/\"x\"");
    assert_eq!(s("version"), "HTTP/1.1");
    assert_eq!(n("status"), 200.0);
    assert!(n("bytes") > 0.0);
    assert_eq!(
        n("body_bytes"),
        "backend b1: GET /json/\"x\"\n".len() as f64
    );
    assert!(n("duration_ms") >= 0.0);
    assert_eq!(s("upstream"), b.addr.to_string());
    assert!(n("upstream_time_ms") >= 0.0 && n("upstream_time_ms") <= n("duration_ms"));
    assert_eq!(v.get("cache"), Some(&Json::Null));
    assert_eq!(s("request_id"), "rid-7");
    assert_eq!(s("user_agent"), "tester/1.0 \\ é");
    assert_eq!(s("referer"), "http://r.example/\"q\"");
    // A response pibl makes (no backend, no upstream time) is a line too.
    let mut c = Conn::open(p.addr);
    c.send(b"GET /bad HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 400);
    let lines = p.wait_for_log("\"status\":400", 1);
    let v = parse_object(&lines[0]).unwrap_or_else(|e| panic!("{e}: {}", lines[0]));
    assert_eq!(v.get("upstream"), Some(&Json::Null));
    assert_eq!(v.get("upstream_time_ms"), Some(&Json::Null));
    assert_eq!(v.get("path"), Some(&Json::Str("/bad".into())));
    // Every line of the file is one JSON object, in the file and on stdout.
    for l in p.log_file().lines().filter(|l| l.starts_with('{')) {
        parse_object(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    assert!(p.wait_for_stdout("\"status\":400", 1));
}

// ---- a minimal JSON parser: enough for one flat object per line --------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Str(String),
    Num(f64),
    Null,
    Bool(bool),
}

fn parse_object(text: &str) -> Result<HashMap<String, Json>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.expect(b'{')?;
    let mut out = HashMap::new();
    loop {
        let key = p.string()?;
        p.expect(b':')?;
        let value = p.value()?;
        if out.insert(key.clone(), value).is_some() {
            return Err(format!("duplicate key {key}"));
        }
        match p.next()? {
            b',' => continue,
            b'}' => break,
            c => return Err(format!("unexpected {:?} at {}", c as char, p.i)),
        }
    }
    if p.i != p.s.len() {
        return Err(format!("trailing bytes at {}", p.i));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Result<u8, String> {
        let c = *self.s.get(self.i).ok_or("unexpected end")?;
        self.i += 1;
        Ok(c)
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.next()? {
            got if got == c => Ok(()),
            got => Err(format!(
                "expected {:?}, got {:?} at {}",
                c as char, got as char, self.i
            )),
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.s.get(self.i) {
            Some(b'"') => self.string().map(Json::Str),
            Some(b'n') => self.word("null", Json::Null),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b"-+.eE".contains(c))
                {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .map(Json::Num)
                    .ok_or(format!("bad number at {start}"))
            }
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(format!("bad literal at {}", self.i))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => match self.next()? {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u")?;
                        self.i += 4;
                        let code = u32::from_str_radix(std::str::from_utf8(hex).unwrap(), 16)
                            .map_err(|e| e.to_string())?;
                        let c = char::from_u32(code).ok_or("bad \\u")?;
                        out.extend_from_slice(c.to_string().as_bytes());
                    }
                    c => return Err(format!("bad escape {:?}", c as char)),
                },
                c if c < 0x20 => return Err(format!("raw control byte at {}", self.i)),
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}
