//! Unit tests of the config parser, its checks and its summary.

use super::apply::edit_distance;
use super::*;
use crate::text::counted;

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("test.conf"), text)
}

#[test]
fn repository_config_is_valid() {
    let text = include_str!("../../pibl.conf");
    let cfg = parse(text).unwrap();
    assert_eq!(cfg.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(cfg.backends.len(), 3);
    assert_eq!(cfg.backends[2].addr, "127.0.0.1:8083".parse().unwrap());
}

#[test]
fn errors_name_file_line_and_problem() {
    let e = parse("listen 127.0.0.1:1\nbackend 127.0.0.1:2\nfrobnicate 3\n").unwrap_err();
    assert_eq!(e.to_string(), "test.conf:3: unknown directive 'frobnicate'");
    let e = parse("# c\nbackend\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("needs a value"), "{e}");
    let e = parse("backend 127.0.0.1\n").unwrap_err();
    assert!(e.message.contains("bad address"), "{e}");
    let e = parse("backend 127.0.0.1:99999\n").unwrap_err();
    assert_eq!(
        e.message,
        "backend: port 99999 in '127.0.0.1:99999' is out of range (1 to 65535)"
    );
    let e = parse("listen 127.0.0.1:1\n").unwrap_err();
    assert!(e.message.contains("no backend"), "{e}");
    // Issue 14: several `listen` lines are allowed; the same address twice is the mistake.
    let e = parse("listen 127.0.0.1:1\nbackend 127.0.0.1:2\nlisten 127.0.0.1:1\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("already a listener"), "{e}");
    let e = parse("backend 127.0.0.1:2\nkeepalive_timeout soon\n").unwrap_err();
    assert!(
        e.to_string().starts_with("test.conf:2: keepalive_timeout:"),
        "{e}"
    );
}

#[test]
fn values_and_units() {
    let cfg = parse(
        "backend 127.0.0.1:2 # trailing comment\nworkers 3\nbuffer_size 32k\n\
         connect_timeout 250ms\nkeepalive_timeout 2m\naccess_log off\n",
    )
    .unwrap();
    assert_eq!(cfg.workers, Some(3));
    assert_eq!(cfg.limits.buffer_size, 32 * 1024);
    assert_eq!(cfg.timeouts.connect, Duration::from_millis(250));
    assert_eq!(cfg.timeouts.keepalive, Duration::from_secs(120));
    assert!(!cfg.access_log);
    assert_eq!(parse_size("1MiB", 0, usize::MAX), Ok(1 << 20));
    assert!(parse_duration("0s").is_err());
}

#[test]
fn health_and_limit_directives() {
    let cfg = parse("backend 127.0.0.1:2\n").unwrap();
    assert_eq!(cfg.health, Health::default());
    assert_eq!(cfg.limits.max_body_size, None);
    let cfg = parse(
        "backend 127.0.0.1:2\nworkers 4\nmax_connections 10\nmax_fails 0\n\
         fail_timeout 500ms\nmax_retries 5\nhealth_check /health 2s\nmax_body_size 1m\n",
    )
    .unwrap();
    assert_eq!(cfg.health.max_fails, 0);
    assert_eq!(cfg.health.fail_timeout, Duration::from_millis(500));
    assert_eq!(cfg.health.max_retries, 5);
    let check = cfg.health.check.clone().unwrap();
    assert_eq!(
        (check.path.as_str(), check.interval),
        ("/health", Duration::from_secs(2))
    );
    assert_eq!(cfg.limits.max_body_size, Some(1 << 20));
    assert_eq!(cfg.per_worker_connections(), 3);
    let cfg = parse("backend 127.0.0.1:2\nmax_connections_per_worker 7\n").unwrap();
    assert_eq!(cfg.per_worker_connections(), 7);
    let e = parse("backend 127.0.0.1:2\nhealth_check /h\n").unwrap_err();
    assert!(e.message.contains("PATH INTERVAL"), "{e}");
    let e = parse("backend 127.0.0.1:2\nhealth_check health 2s\n").unwrap_err();
    assert!(e.message.contains("path"), "{e}");
}

#[test]
fn upgrade_protocols_default_list_and_none() {
    let cfg = parse("backend 127.0.0.1:2\n").unwrap();
    assert_eq!(cfg.upgrade_protocols, ["websocket"]);
    assert_eq!(cfg.limits.max_headers, 256);
    let cfg = parse("backend 127.0.0.1:2\nupgrade_protocols WebSocket h2c\n").unwrap();
    assert_eq!(cfg.upgrade_protocols, ["websocket", "h2c"]);
    let cfg = parse("backend 127.0.0.1:2\nupgrade_protocols none\n").unwrap();
    assert!(cfg.upgrade_protocols.is_empty());
    for bad in ["", " none websocket", " web/socket", " a,b"] {
        let e = parse(&format!("backend 127.0.0.1:2\nupgrade_protocols{bad}\n")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("test.conf:2: upgrade_protocols: "),
            "{bad:?}: {e}"
        );
    }
}

#[test]
fn admin_is_off_unless_configured_and_errors_are_located() {
    let cfg = parse("backend 127.0.0.1:2\n").unwrap();
    assert_eq!(cfg.admin, None);
    assert!(cfg.summary().contains("\nadmin off\n"), "{}", cfg.summary());
    let cfg = parse("backend 127.0.0.1:2\nadmin 127.0.0.1:9901\n").unwrap();
    assert_eq!(cfg.admin, Some("127.0.0.1:9901".parse().unwrap()));
    assert!(cfg.summary().contains("\nadmin 127.0.0.1:9901\n"));
    assert_eq!(
        parse("backend 127.0.0.1:2\nadmin off\n").unwrap().admin,
        None
    );
    let e = parse("backend 127.0.0.1:2\nadmin 9901\n").unwrap_err();
    assert!(
        e.to_string().starts_with("test.conf:2: admin: bad address"),
        "{e}"
    );
    let e = parse("backend 127.0.0.1:2\nadmin\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.contains("needs a value")),
        (2, true),
        "{e}"
    );
    let e = parse("admin 127.0.0.1:1\nbackend 127.0.0.1:2\nadmin 127.0.0.1:3\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert!(
        e.message.contains("duplicate 'admin' (first on line 1)"),
        "{e}"
    );
}

#[test]
fn a_single_value_directive_given_twice_names_both_lines() {
    for directive in [
        "workers 2",
        "log_file a.log",
        "connect_timeout 1s",
        "cache_ttl 10s",
        "max_connections 5",
        "health_check /h 1s",
    ] {
        let e = parse(&format!(
            "backend 127.0.0.1:2\n{directive}\n\n{directive}\n"
        ))
        .unwrap_err();
        let name = directive.split(' ').next().unwrap();
        assert_eq!(
            e.to_string(),
            format!("test.conf:4: duplicate '{name}' (first on line 2)")
        );
    }
    let cfg = parse("backend 127.0.0.1:2\nbackend 127.0.0.1:3\n").unwrap();
    assert_eq!(cfg.backends.len(), 2, "backend stays repeatable");
}

#[test]
fn unknown_directives_suggest_the_nearest_one() {
    let e = parse("bakend 127.0.0.1:2\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.conf:1: unknown directive 'bakend' (did you mean 'backend'?)"
    );
    let e = parse("backend 127.0.0.1:2\nkeepalive_timout 5s\n").unwrap_err();
    assert!(
        e.message.ends_with("(did you mean 'keepalive_timeout'?)"),
        "{e}"
    );
    let e = parse("backend 127.0.0.1:2\nttl 5s\n").unwrap_err();
    assert_eq!(e.message, "unknown directive 'ttl'");
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

#[test]
fn addresses_say_what_is_wrong_with_them() {
    let e = parse("backend http://127.0.0.1:8081/\n").unwrap_err();
    assert!(
        e.message
            .starts_with("backend takes HOST:PORT, not a URL: 'http://127.0.0.1:8081/'"),
        "{e}"
    );
    let e = parse("backend 127.0.0.1:2\nlisten localhost:70000\n").unwrap_err();
    assert_eq!(
        e.message,
        "listen: port 70000 in 'localhost:70000' is out of range (1 to 65535)"
    );
    let e = parse("backend 127.0.0.1:0\n").unwrap_err();
    assert!(
        e.message.starts_with("backend: port 0 in '127.0.0.1:0'"),
        "{e}"
    );
    // Where pibl listens, port 0 asks the kernel for a free port.
    assert_eq!(
        parse("backend 127.0.0.1:2\nlisten 127.0.0.1:0\n")
            .unwrap()
            .listen
            .port(),
        0
    );
}

#[test]
fn absurd_values_are_refused_with_the_reason() {
    let e = parse("backend 127.0.0.1:2\nhealth_check /h 1ms\n").unwrap_err();
    assert!(e.message.contains("flood"), "{e}");
    let e = parse("backend 127.0.0.1:2\ncache_max_bytes 1m\ncache_max_object 2m\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.conf:3: cache_max_object 2m is larger than cache_max_bytes 1m: no response \
         that size could ever be stored"
    );
    // The default cache_max_object (64m) shrinks to a smaller cache_max_bytes.
    let cfg = parse("backend 127.0.0.1:2\ncache_max_bytes 1m\n").unwrap();
    assert_eq!(cfg.cache.max_object, 1 << 20);
    let e = parse("listen 0.0.0.0:8080\nbackend 127.0.0.1:2\nadmin 127.0.0.1:8080\n").unwrap_err();
    assert!(
        e.to_string().starts_with(
            "test.conf:3: admin 127.0.0.1:8080 and listen 0.0.0.0:8080 are the same address"
        ),
        "{e}"
    );
    assert!(parse("listen 127.0.0.1:0\nbackend 127.0.0.1:2\nadmin 127.0.0.1:0\n").is_ok());
}

#[test]
fn cache_ttl_is_whole_seconds_in_the_duration_syntax() {
    let e = parse("backend 127.0.0.1:2\ncache_ttl 500ms\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("test.conf:2: cache_ttl: '500ms' is not a whole number"),
        "{e}"
    );
    let cfg = parse("backend 127.0.0.1:2\ncache_ttl 2m\n").unwrap();
    assert_eq!(cfg.cache.ttl, Some(Duration::from_secs(120)));
    assert_eq!(parse_ttl("1500ms").map_err(|_| ()), Err(()));
    assert_eq!(parse_ttl("2000ms"), Ok(Duration::from_secs(2)));
}

#[test]
fn the_summary_lists_every_setting_and_reads_back_as_the_same_config() {
    let text = "listen 127.0.0.1:9\nbackend 127.0.0.1:81\nbackend localhost:82\nworkers 3\n\
                connect_timeout 250ms\nkeepalive_timeout 2m\nmax_body_size 1m\n\
                health_check /health 2s\ncache_ttl 1h\nadmin 127.0.0.1:9901\n";
    let cfg = parse(text).unwrap();
    let summary = cfg.summary();
    for line in [
        "workers 3",
        "connect_timeout 250ms",
        "keepalive_timeout 2m",
        "client_header_timeout 10s",
        "max_connections 16384",
        "buffer_size 16k",
        "max_body_size 1m",
        "health_check /health 2s",
        "cache on",
        "cache_ttl 1h",
        "cache_max_bytes 1g",
        "backend localhost:82  # ",
    ] {
        assert!(summary.contains(&format!("\n{line}")), "{line}: {summary}");
    }
    let mut again = parse(&summary).unwrap();
    // `cache on` is written out; the file left it implied by the TTL.
    assert_eq!(again.cache_config(), cfg.cache_config());
    again.cache.enabled = cfg.cache.enabled;
    assert_eq!(
        Config {
            path: cfg.path.clone(),
            lines: Vec::new(),
            ..again
        },
        Config {
            lines: Vec::new(),
            ..cfg
        }
    );
    // Defaults read back too (the cache stays off, per-worker connections stay derived).
    let cfg = parse("backend 127.0.0.1:2\n").unwrap();
    let again = parse(&cfg.summary()).unwrap();
    assert_eq!(again.cache_config(), None);
    assert_eq!(again.limits, cfg.limits);
    assert_eq!(again.timeouts, cfg.timeouts);
    assert_eq!(again.health, cfg.health);
}

#[test]
fn counted_nouns_agree_with_their_number() {
    assert_eq!(counted(1, "worker", "workers"), "1 worker");
    assert_eq!(counted(0, "entry", "entries"), "0 entries");
    assert_eq!(format_size(1536), "1536");
    assert_eq!(format_duration(Duration::from_secs(90)), "90s");
}

#[test]
fn a_plain_and_a_tls_listener_with_certificates() {
    let cfg = parse(
        "listen 127.0.0.1:8080\nlisten 127.0.0.1:8443 tls\nbackend 127.0.0.1:2\n\
         certificate a.pem a.key\ncertificate b.pem b.key\ntls_session_cache 5\n",
    )
    .unwrap();
    assert_eq!(cfg.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        cfg.listeners,
        [
            Listen {
                addr: "127.0.0.1:8080".parse().unwrap(),
                tls: false,
                proxy_protocol: false,
                unix: None,
                http2: None
            },
            Listen {
                addr: "127.0.0.1:8443".parse().unwrap(),
                tls: true,
                proxy_protocol: false,
                unix: None,
                http2: None
            }
        ]
    );
    assert_eq!(cfg.certificates.len(), 2);
    assert_eq!(cfg.certificates[1].key, PathBuf::from("b.key"));
    assert_eq!(cfg.tls_session_cache, 5);
    assert!(cfg.has_tls());
    // The summary reads back as the same listeners and certificates.
    let again = parse(&cfg.summary()).unwrap();
    assert_eq!(again.listeners, cfg.listeners);
    assert_eq!(again.certificates, cfg.certificates);

    // Only a TLS listener: it is the first, and `listen` names it.
    let cfg = parse("listen 127.0.0.1:8443 tls\nbackend 127.0.0.1:2\ncertificate a b\n").unwrap();
    assert_eq!(cfg.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(cfg.listeners.len(), 1);
}

#[test]
fn tls_listener_mistakes_are_located() {
    let e = parse("backend 127.0.0.1:2\nlisten 127.0.0.1:1\nlisten 127.0.0.1:3 tls\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("needs a certificate"), "{e}");
    // Issue 14: two TLS listeners are allowed; the same address twice is not.
    let e = parse(
        "backend 127.0.0.1:2\nlisten 127.0.0.1:1 tls\nlisten 127.0.0.1:1 tls\ncertificate a b\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("already a listener"), "{e}");
    let e = parse("backend 127.0.0.1:2\nlisten 127.0.0.1:1\nlisten 0.0.0.0:1 tls\n").unwrap_err();
    assert!(e.message.contains("already a listener"), "{e}");
    let e = parse("backend 127.0.0.1:2\nlisten 127.0.0.1:1 ssl\n").unwrap_err();
    assert!(e.message.contains("ADDR:PORT tls"), "{e}");
    let e = parse("backend 127.0.0.1:2\ncertificate only-one.pem\n").unwrap_err();
    assert!(e.message.contains("CHAIN.pem KEY.pem"), "{e}");
    let e =
        parse("backend 127.0.0.1:2\nlisten 127.0.0.1:1 tls\ncertificate a b\nadmin 127.0.0.1:1\n")
            .unwrap_err();
    assert!(e.message.contains("same address"), "{e}");
}

#[test]
fn routing_blocks_parse_on_one_line_or_many() {
    let cfg = parse(
        "pool app { backend 127.0.0.1:1 weight=3; backend 127.0.0.1:2 backup; balance least_conn }\n\
         pool h {\n  backend 127.0.0.1:3\n  balance hash header:X-User\n}\n\
         site Example.com *.example.com {\n  default\n  route / app\n  route = /x h\n}\n\
         no_site 421\n",
    )
    .unwrap();
    assert_eq!(cfg.pools.len(), 2);
    let app = &cfg.pools[0];
    assert_eq!((app.backends[0].weight, app.backends[1].backup), (3, true));
    assert_eq!(app.balance, Balance::LeastConn);
    assert_eq!(
        cfg.pools[1].balance,
        Balance::Hash(HashKey::Header("x-user".into()))
    );
    let site = &cfg.sites[0];
    assert_eq!(site.hosts, ["example.com", "*.example.com"]);
    assert!(site.default);
    assert!(site.routes[1].exact);
    assert_eq!(cfg.no_site, NoSite::Misdirected);
    assert!(
        cfg.backends.is_empty(),
        "no top-level backend is needed with sites"
    );
    // The summary's routing table is itself a valid config.
    let again = parse(&cfg.summary()).unwrap();
    assert_eq!(again.routing_table(), cfg.routing_table());
    assert_eq!(again.pools.len(), 2);
}

#[test]
fn routing_mistakes_are_located() {
    let line_of = |text: &str| {
        let e = parse(text).unwrap_err();
        (e.line, e.message)
    };
    let cases: &[(&str, usize, &str)] = &[
        (
            "backend 127.0.0.1:1\nsite a {\n route / nowhere\n}\n",
            3,
            "no pool is named",
        ),
        (
            "pool p { backend 127.0.0.1:1 backup }\n",
            1,
            "no backend that is not a backup",
        ),
        ("pool p {\n backend 127.0.0.1:1 weight=0\n}\n", 2, "weight"),
        (
            "pool p { backend 127.0.0.1:1 }\npool p { backend 127.0.0.1:2 }\n",
            2,
            "already defined",
        ),
        (
            "backend 127.0.0.1:1\nsite a { route / default }\nsite A { route / default }\n",
            3,
            "already belongs",
        ),
        (
            "backend 127.0.0.1:1\nsite a {\n backend 127.0.0.1:2\n}\n",
            3,
            "goes in a pool block",
        ),
        ("backend 127.0.0.1:1\nroute / default\n", 2, "inside a site"),
        (
            "backend 127.0.0.1:1\nsite a:80 { route / default }\n",
            2,
            "not a host name",
        ),
        (
            "backend 127.0.0.1:1\nsite a {\n route / default {\n  x {\n }}}\n",
            4,
            "nests too deep",
        ),
        (
            "backend 127.0.0.1:1\nsite a { route / default\n",
            2,
            "never closed",
        ),
        (
            "backend 127.0.0.1:1\nbalance hash nothing\n",
            2,
            "'balance' takes",
        ),
        (
            "backend 127.0.0.1:1\npool default { backend 127.0.0.1:2 }\n",
            2,
            "top-level backend",
        ),
        ("pool p { backend 127.0.0.1:1 }\n", 0, "pools but no site"),
        (
            "backend 127.0.0.1:1\ninclude nothing-here.conf\n",
            2,
            "is not a file",
        ),
    ];
    for &(text, line, needle) in cases {
        let (l, m) = line_of(text);
        assert_eq!(l, line, "{text:?}: {m}");
        assert!(m.contains(needle), "{text:?}: {m}");
    }
}

#[test]
fn tls_backends_in_both_forms() {
    let cfg =
        parse("backend https://127.0.0.1:8443\nbackend 127.0.0.1:9443 tls\nbackend 127.0.0.1:80\n")
            .unwrap();
    let names: Vec<Option<String>> = cfg
        .backends
        .iter()
        .map(|b| b.tls_name.as_ref().map(|n| n.to_str().into_owned()))
        .collect();
    assert_eq!(
        names,
        vec![
            Some("127.0.0.1".to_string()),
            Some("127.0.0.1".to_string()),
            None
        ]
    );
    assert_eq!(cfg.backends[0].addr, "127.0.0.1:8443".parse().unwrap());
    assert!(
        cfg.backend_tls.is_some(),
        "one client config for the TLS backends"
    );
    // Port 443 when the URL has none; tls_server_name replaces the host as SNI.
    let cfg = parse("backend https://127.0.0.1\ntls_server_name api.example.com\n").unwrap();
    assert_eq!(cfg.backends[0].addr, "127.0.0.1:443".parse().unwrap());
    assert_eq!(
        cfg.backends[0]
            .tls_name
            .as_ref()
            .map(|n| n.to_str().into_owned()),
        Some("api.example.com".to_string())
    );
    assert!(cfg.warnings().is_empty());
    // Plain backends need no client config.
    assert!(parse("backend 127.0.0.1:80\n")
        .unwrap()
        .backend_tls
        .is_none());
    // Still not a URL of any other scheme.
    let e = parse("backend http://127.0.0.1:80\n").unwrap_err();
    assert!(e.message.contains("not a URL"), "{e}");
    let e = parse("backend 127.0.0.1:80 ssl\n").unwrap_err();
    assert!(e.message.contains("HOST:PORT tls"), "{e}");
    let e = parse("backend https://127.0.0.1\nbackend_ca /nonexistent/ca.pem\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("cannot read CA file"), "{e}");
    let cfg = parse("backend https://127.0.0.1\nbackend_tls_verify off\n").unwrap();
    let w = cfg.warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("test.conf:2: backend_tls_verify off"),
        "{w:?}"
    );
}

#[test]
fn several_listeners_of_each_kind() {
    let cfg = parse(
        "listen 127.0.0.1:8080\nlisten 127.0.0.1:8081\nlisten 127.0.0.1:8443 tls\n\
         listen 127.0.0.1:9443 tls\ncertificate a.pem a.key\nredirect_https on\n\
         backend 127.0.0.1:2\n",
    )
    .unwrap();
    let kinds: Vec<(u16, bool)> = cfg
        .listeners
        .iter()
        .map(|l| (l.addr.port(), l.tls))
        .collect();
    assert_eq!(
        kinds,
        vec![(8080, false), (8081, false), (8443, true), (9443, true)]
    );
    assert_eq!(
        cfg.listen.port(),
        8080,
        "the first listener is 'the' address"
    );
    assert_eq!(
        cfg.https_redirect("http"),
        Some(8443),
        "the first TLS listener's port"
    );
    let e = parse("backend 127.0.0.1:2\nlisten 0.0.0.0:80\nlisten 127.0.0.1:80 tls\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("already a listener"), "{e}");
}

#[test]
fn tls_backends_in_pools_take_weights_and_round_trip() {
    let cfg = parse(
        "pool app { backend https://127.0.0.1:8443 weight=2; backend 127.0.0.1:9443 tls backup; \
         backend 127.0.0.1:80 }\nsite a.example { route / app }\ntls_server_name api.example\n",
    )
    .unwrap();
    let b = &cfg.pools[0].backends;
    assert_eq!((b[0].weight, b[1].backup), (2, true));
    let names: Vec<Option<String>> = b
        .iter()
        .map(|b| b.tls_name.as_ref().map(|n| n.to_str().into_owned()))
        .collect();
    let api = Some("api.example".to_string());
    assert_eq!(names, vec![api.clone(), api, None]);
    assert!(
        cfg.backend_tls.is_some(),
        "a pool's TLS backend builds the client config"
    );
    let again = parse(&cfg.summary()).unwrap();
    assert_eq!(again.routing_table(), cfg.routing_table());
    assert!(again.pools[0].backends[1].tls_name.is_some());
    let e = parse("pool p { backend 127.0.0.1:1 ssl }\nsite a { route / p }\n").unwrap_err();
    assert!(e.message.contains("HOST:PORT tls"), "{e}");
}

#[test]
fn compress_directives_parse_check_and_read_back() {
    let cfg = parse("backend 127.0.0.1:2\n").unwrap();
    assert_eq!(cfg.compress, CompressSettings::default());
    assert!(!cfg.compress.enabled, "off unless asked for");
    let summary = cfg.summary();
    assert!(summary.contains("\ncompress off\n"), "{summary}");
    assert!(
        summary.contains("\ncompress_level gzip=2 br=3 zstd=3\n"),
        "{summary}"
    );
    assert_eq!(parse(&summary).unwrap().compress, cfg.compress);

    let text = "backend 127.0.0.1:2\ncompress on\ncompress_types default font/ttf\n\
                compress_min_length 2k\ncompress_level br=5 gzip=6\n";
    let cfg = parse(text).unwrap();
    let c = &cfg.compress;
    assert!(c.enabled);
    assert!(c.types.matches(b"font/ttf") && c.types.matches(b"text/css"));
    assert_eq!(c.min_length, 2048);
    assert_eq!(
        c.levels,
        crate::compress::Levels {
            gzip: 6,
            br: 5,
            zstd: 3
        }
    );
    let again = parse(&cfg.summary()).unwrap();
    assert_eq!(again.compress, cfg.compress);

    for (bad, wanted) in [
        (
            "compress yes",
            "test.conf:2: compress: 'yes' is not 'on' or 'off'",
        ),
        (
            "compress_types text",
            "test.conf:2: compress_types: 'text' is not a media type",
        ),
        (
            "compress_types",
            "test.conf:2: compress_types: needs at least one type",
        ),
        (
            "compress_level gzip=11",
            "test.conf:2: compress_level: gzip level '11': expected 1 to 9",
        ),
        (
            "compress_level lz4=1",
            "test.conf:2: compress_level: 'lz4' is not a coding",
        ),
        (
            "compress_min_length lots",
            "test.conf:2: compress_min_length: 'lots' is not a size",
        ),
        (
            "compres on",
            "test.conf:2: unknown directive 'compres' (did you mean 'compress'?)",
        ),
    ] {
        let e = parse(&format!("backend 127.0.0.1:2\n{bad}\n")).unwrap_err();
        assert!(e.to_string().starts_with(wanted), "{bad}: {e}");
    }
    let e = parse("backend 127.0.0.1:2\ncompress on\ncompress off\n").unwrap_err();
    assert!(e.to_string().contains("duplicate 'compress'"), "{e}");
}
