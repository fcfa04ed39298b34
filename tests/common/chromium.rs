//! Headless Chromium for the tests that load pages in a real browser (the status page, the demo
//! over HTTP/2): run it on a URL with a throw-away profile, killed if it hangs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is here to run `test`; when it is not, says the test is skipped, unless
/// `PIBL_REQUIRE_CHROMIUM=1` (CI, once it installed it), where that is a failure.
pub fn available(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var("PIBL_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
        panic!("{CHROMIUM} is missing and PIBL_REQUIRE_CHROMIUM=1");
    }
    eprintln!("SKIPPED {test}: {CHROMIUM} is not installed (apt-get install chromium)");
    false
}

/// Runs headless Chromium on `url` and returns the DOM it rendered; killed (its whole process
/// group) if it takes longer than a minute.
pub fn dump_dom(url: &str, profile: &Path) -> String {
    let out_path = profile.join("dom.html");
    run_chromium(
        &["--dump-dom".to_string(), url.to_string()],
        profile,
        &out_path,
    );
    std::fs::read_to_string(&out_path).unwrap_or_default()
}

/// Runs headless Chromium with `args`, its stdout to `out_path`; killed (its whole process group) if it takes longer than a minute.
pub fn run_chromium(args: &[String], profile: &Path, out_path: &Path) {
    use std::os::unix::process::CommandExt;
    let err_path = profile.join("chromium.err");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("data").display()
        ))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out_path).expect("create output file"))
        .stderr(std::fs::File::create(&err_path).expect("create stderr file"))
        .process_group(0)
        .spawn()
        .expect("start chromium");
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for chromium") {
            break s;
        }
        if Instant::now() > until {
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            panic!(
                "chromium did not finish within 60 s; stderr: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium failed ({status}); stderr: {}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
}
