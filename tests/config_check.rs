//! `pibl --check` refuses what a start refuses, a second pibl does not silently share a port,
//! and the command line speaks the config file's syntax.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Conn, Pibl, TempDir};

/// Runs pibl in `dir`; its exit code (`None`: still running after `within`, then killed),
/// stdout and stderr.
fn pibl(dir: &TempDir, args: &[&str], within: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(args)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pibl");
    let until = Instant::now() + within;
    let code = loop {
        match child.try_wait().expect("wait for pibl") {
            Some(status) => break status.code(),
            None if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            None => {
                let _ = child.kill();
                break None;
            }
        }
    };
    let out = child.wait_with_output().expect("pibl output");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (code, text(&out.stdout), text(&out.stderr))
}

fn check(dir: &TempDir, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["-c", "pibl.conf", "--check"];
    all.extend_from_slice(args);
    pibl(dir, &all, Duration::from_secs(10))
}

fn with_conf(text: &str) -> TempDir {
    let dir = TempDir::new("check");
    std::fs::write(dir.path().join("pibl.conf"), text).unwrap();
    dir
}

#[test]
fn check_refuses_a_log_file_or_cache_dir_a_start_could_not_use() {
    let dir = with_conf(
        "listen 127.0.0.1:0\nbackend 127.0.0.1:1\nlog_file plain/pibl.log\ncache on\n\
         cache_dir plain\n",
    );
    std::fs::write(dir.path().join("plain"), "a file, not a directory").unwrap();
    let (code, out, err) = check(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        err.trim(),
        "pibl: pibl.conf:3: log_file: cannot write plain/pibl.log: plain is not a directory"
    );
    // The start fails the same way, before anything binds.
    let (code, _, start_err) = pibl(&dir, &["-c", "pibl.conf"], Duration::from_secs(10));
    assert_eq!((code, start_err.trim()), (Some(1), err.trim()));

    std::fs::write(
        dir.path().join("pibl.conf"),
        "listen 127.0.0.1:0\nbackend 127.0.0.1:1\ncache on\ncache_dir plain\n",
    )
    .unwrap();
    let (code, _, err) = check(&dir, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim(),
        "pibl: pibl.conf:4: cache_dir: cannot use plain: it is not a directory"
    );
    // A cache_dir that does not exist yet is fine: the start creates it.
    std::fs::write(
        dir.path().join("pibl.conf"),
        "listen 127.0.0.1:0\nbackend 127.0.0.1:1\ncache on\ncache_dir new/cache\n",
    )
    .unwrap();
    assert_eq!(check(&dir, &[]).0, Some(0));
    assert!(!dir.path().join("new").exists(), "--check creates nothing");
}

#[test]
fn check_refuses_an_address_in_use_and_names_who_holds_it() {
    // A listener without SO_REUSEPORT, held by this test process.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = with_conf(&format!("backend 127.0.0.1:1\nlisten 127.0.0.1:{port}\n"));
    let (code, _, err) = check(&dir, &[]);
    assert_eq!(code, Some(1));
    let expected =
        format!("pibl: pibl.conf:2: cannot listen on 127.0.0.1:{port}: address already in use");
    assert!(err.starts_with(&expected), "{err}");
    if cfg!(target_os = "linux") {
        assert!(
            err.contains(&format!("in use by pid {} (", std::process::id())),
            "{err}"
        );
    }
    assert_eq!(err.lines().count(), 1, "{err}");

    let dir = with_conf(&format!(
        "listen 127.0.0.1:0\nbackend 127.0.0.1:1\nadmin 127.0.0.1:{port}\n"
    ));
    let (code, _, err) = check(&dir, &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with(&format!(
            "pibl: pibl.conf:3: admin: cannot listen on 127.0.0.1:{port}: address already in use"
        )),
        "{err}"
    );
    // --check --upgrade: the addresses are held by the pibl being replaced (or reloaded).
    assert_eq!(check(&dir, &["--upgrade"]).0, Some(0));
}

#[test]
fn a_second_pibl_on_the_same_address_refuses_to_start_unless_upgrading() {
    let b = Backend::start("second");
    let first = Pibl::start(&[b.addr], "");
    let dir = with_conf(&format!("listen {}\nbackend {}\n", first.addr, b.addr));
    let (code, out, err) = pibl(&dir, &["-c", "pibl.conf"], Duration::from_secs(10));
    assert_eq!(code, Some(1), "the second pibl started: {out}");
    assert!(
        err.contains(&format!(
            "cannot listen on {}: address already in use",
            first.addr
        )) && err.contains("--upgrade"),
        "{err}"
    );
    assert!(!out.contains("listening on"), "{out}");
    // The first one kept the port to itself.
    for _ in 0..4 {
        assert_eq!(Conn::open(first.addr).get("/one").status, 200);
    }
    assert_eq!(first.wait_for_log("\"GET /one ", 4).len(), 4);
}

#[test]
fn a_byte_that_is_not_utf8_is_located() {
    let dir = TempDir::new("check");
    std::fs::write(
        dir.path().join("pibl.conf"),
        b"backend 127.0.0.1:1\n# caf\xe9\nlog_file a.log\n",
    )
    .unwrap();
    let (code, _, err) = check(&dir, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim(),
        "pibl: pibl.conf:2: byte 0xe9 at column 6 is not UTF-8 text"
    );
}

#[test]
fn the_command_line_takes_the_files_duration_syntax_and_refuses_stray_options() {
    let dir = with_conf("listen 127.0.0.1:0\nbackend 127.0.0.1:1\n");
    for (t, shown) in [
        ("2m", "cache_ttl 2m"),
        ("90", "cache_ttl 90s"),
        ("45s", "cache_ttl 45s"),
    ] {
        let (code, out, err) = check(&dir, &["-t", t]);
        assert_eq!(code, Some(0), "-t {t}: {err}");
        assert!(out.contains(&format!("\n{shown}\n")), "-t {t}: {out}");
        assert!(out.contains("\ncache on\n"), "{out}");
    }
    let (code, _, err) = check(&dir, &["-t", "500ms"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "pibl: -t: '500ms' is not a whole number of seconds (cache lifetimes are counted in seconds)"
    );
    let (code, _, err) = pibl(
        &dir,
        &["-c", "pibl.conf", "--port", "9090"],
        Duration::from_secs(10),
    );
    assert_eq!(
        code,
        Some(2),
        "--port without --demo must not start a proxy"
    );
    assert!(err.contains("--port is for --demo only"), "{err}");
}

#[test]
fn check_prints_every_setting_in_config_syntax_that_reads_back_the_same() {
    let dir = with_conf(
        "listen 127.0.0.1:0\nbackend 127.0.0.1:1\nbackend 127.0.0.1:2\nworkers 3\n\
         connect_timeout 250ms\nmax_body_size 1m\n",
    );
    let (code, out, err) = check(&dir, &[]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("# config pibl.conf is valid"), "{out}");
    for expected in [
        "listen 127.0.0.1:0",
        "backend 127.0.0.1:1",
        "backend 127.0.0.1:2",
        "workers 3",
        "admin off",
        "log_file pibl.log",
        "max_connections 16384",
        "buffer_size 16k",
        "max_body_size 1m",
        "client_header_timeout 10s",
        "keepalive_timeout 1m",
        "connect_timeout 250ms",
        "upstream_timeout 1m",
        "pool_idle_timeout 4s",
        "shutdown_timeout 10s",
        "fail_timeout 10s",
        "health_check off",
        "cache off",
        "cache_max_object 64m",
    ] {
        assert!(lines.contains(&expected), "{expected}: {out}");
    }
    // Pasted back as a config, it is the same config.
    std::fs::write(dir.path().join("pibl.conf"), &out).unwrap();
    let (code, again, err) = check(&dir, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(again, out);
}

#[test]
fn upgrade_takes_over_the_listen_and_admin_addresses_of_a_running_pibl() {
    let b = Backend::start("handover");
    let mut old = Pibl::start(&[b.addr], "admin 127.0.0.1:0\n");
    let admin = old.admin_addr();
    let dir = with_conf(&format!(
        "listen {}\nbackend {}\nadmin {admin}\n",
        old.addr, b.addr
    ));
    // Pibl::start_in returns once the new one logged "listening on".
    let mut new = Pibl::start_in(dir, &["-c", "pibl.conf", "--upgrade"]);
    assert_eq!(new.addr, old.addr);
    assert_eq!(new.admin_addr(), admin);
    assert_eq!(old.stop(), Some(0));
    assert_eq!(Conn::open(new.addr).get("/after").status, 200);
    assert_eq!(common::get(admin, "/metrics").status, 200);
    assert_eq!(new.stop(), Some(0));
}

#[test]
fn a_demo_on_a_port_a_pibl_holds_refuses_to_start() {
    let b = Backend::start("demo-port");
    let first = Pibl::start(&[b.addr], "");
    let port = first.addr.port().to_string();
    let dir = TempDir::new("demo-port");
    let (code, out, err) = pibl(&dir, &["--demo", "--port", &port], Duration::from_secs(10));
    assert_eq!(code, Some(1), "the demo started on a taken port: {out}");
    assert!(err.contains(&format!("port {port} is taken by")), "{err}");
}
