//! The `pibl` command line: config errors, --check, bind errors.

mod common;

use std::process::Command;

use common::TempDir;

fn pibl(dir: &TempDir, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pibl"))
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run pibl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn with_conf(text: &str) -> TempDir {
    let dir = TempDir::new("cli");
    std::fs::write(dir.path().join("pibl.conf"), text).unwrap();
    dir
}

#[test]
fn config_errors_name_file_line_and_problem_and_exit_nonzero() {
    let cases = [
        (
            "listen 127.0.0.1:0\nbackend 127.0.0.1:1\nbogus 1\n",
            "pibl.conf:3: unknown directive 'bogus'",
        ),
        (
            "listen 127.0.0.1:0\n\nbackend\n",
            "pibl.conf:3: 'backend' needs a value",
        ),
        (
            "backend 127.0.0.1\n",
            "pibl.conf:1: backend: bad address '127.0.0.1'",
        ),
        ("listen 127.0.0.1:0\n", "no backend"),
        // Issue 14: several `listen` lines are allowed; the same address twice is the mistake.
        (
            "listen 127.0.0.1:1\nlisten 127.0.0.1:1\nbackend 127.0.0.1:1\n",
            "pibl.conf:2: listen 127.0.0.1:1: 127.0.0.1:1 is already a listener",
        ),
        (
            "backend 127.0.0.1:1\nworkers many\n",
            "pibl.conf:2: workers:",
        ),
        (
            "backend 127.0.0.1:1\nworkers 2\nlog_file a.log\nworkers 3\n",
            "pibl.conf:4: duplicate 'workers' (first on line 2)",
        ),
        (
            "bakend 127.0.0.1:1\n",
            "pibl.conf:1: unknown directive 'bakend' (did you mean 'backend'?)",
        ),
        (
            "backend http://127.0.0.1:8081/\n",
            "pibl.conf:1: backend takes HOST:PORT, not a URL",
        ),
        (
            "backend 127.0.0.1:80800\n",
            "pibl.conf:1: backend: port 80800 in '127.0.0.1:80800' is out of range (1 to 65535)",
        ),
        (
            "backend 127.0.0.1:0\n",
            "pibl.conf:1: backend: port 0 in '127.0.0.1:0'",
        ),
        (
            "backend 127.0.0.1:1\nhealth_check /h 1ms\n",
            "pibl.conf:2: health_check: an interval of 1ms would flood",
        ),
        (
            "backend 127.0.0.1:1\ncache_max_object 2g\n",
            "pibl.conf:2: cache_max_object 2g is larger than cache_max_bytes 1g",
        ),
        (
            "listen 127.0.0.1:8080\nadmin 127.0.0.1:8080\nbackend 127.0.0.1:1\n",
            "pibl.conf:2: admin 127.0.0.1:8080 and listen 127.0.0.1:8080 are the same address",
        ),
        (
            "backend 127.0.0.1:1\ncache_ttl 500ms\n",
            "pibl.conf:2: cache_ttl: '500ms' is not a whole number of seconds",
        ),
    ];
    for (conf, expected) in cases {
        let dir = with_conf(conf);
        let (code, _, err) = pibl(&dir, &["-c", "pibl.conf"]);
        assert_eq!(code, 1, "{conf:?}");
        assert!(err.contains(expected), "{conf:?}: stderr was {err:?}");
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    }
}

#[test]
fn missing_config_file_is_named() {
    let dir = TempDir::new("cli");
    let (code, _, err) = pibl(&dir, &["-c", "nope.conf"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("nope.conf") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn check_validates_and_prints_a_summary() {
    let dir =
        with_conf("listen 127.0.0.1:9\nbackend 127.0.0.1:81\nbackend 127.0.0.1:82\nworkers 3\n");
    let (code, out, _) = pibl(&dir, &["-c", "pibl.conf", "--check"]);
    assert_eq!(code, 0);
    assert!(out.contains("is valid"), "{out}");
    assert!(
        out.contains("127.0.0.1:81") && out.contains("127.0.0.1:82"),
        "{out}"
    );
    assert!(out.contains("\nworkers 3\n"), "{out}");
    let bad = with_conf("backend x\n");
    assert_eq!(pibl(&bad, &["-c", "pibl.conf", "--check"]).0, 1);
}

#[test]
fn repository_config_passes_check() {
    let dir = TempDir::new("cli");
    let repo_conf = concat!(env!("CARGO_MANIFEST_DIR"), "/pibl.conf");
    // --upgrade: whether ports 8080 and 9901 are free on this machine is not the question.
    let (code, out, err) = pibl(&dir, &["-c", repo_conf, "--check", "--upgrade"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0.0.0.0:8080"), "{out}");
}

#[test]
fn port_in_use_is_one_clear_line() {
    // A listener without SO_REUSEPORT holds the port exclusively.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = with_conf(&format!("listen 127.0.0.1:{port}\nbackend 127.0.0.1:1\n"));
    let (code, _, err) = pibl(&dir, &["-c", "pibl.conf"]);
    assert_eq!(code, 1);
    assert!(err.contains("address already in use"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bad_command_line_exits_2_with_usage() {
    let dir = TempDir::new("cli");
    let (code, _, err) = pibl(&dir, &["--frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("Usage"), "{err}");
    let (code, out, _) = pibl(&dir, &["-V"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("pibl "), "{out}");
}
