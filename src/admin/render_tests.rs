use super::*;
use crate::admin::metrics::{prometheus, seconds};
use crate::stats::Histogram;

fn snapshot() -> Snapshot {
    let h = Histogram::new();
    h.record(Duration::from_millis(3));
    h.record(Duration::from_secs(500));
    Snapshot {
        version: "0.1.0",
        uptime: Duration::from_secs(3725),
        connections: 2,
        accepted: 9,
        max_connections_reached: 0,
        requests: 7,
        rate: 1.5,
        responses: [0, 5, 0, 1, 1],
        backends: vec![BackendView {
            pool: None,
            name: "<b>\"x\"\\\n".into(),
            addr: "127.0.0.1:8081".parse().unwrap(),
            up: false,
            requests: 4,
            errors: 1,
            latency: h.snapshot(),
        }],
        cache: None,
        cache_hits: 0,
        cache_misses: 0,
        compression: [(3000, 1000), (0, 0), (10, 5)],
        tls: TlsView {
            handshakes: 3,
            handshake_failures: 1,
            ..TlsView::default()
        },
        h2: H2View::default(),
        certificates: vec![CertView {
            file: "/etc/pibl/a.pem".into(),
            names: vec!["a.test".into(), "*.a.test".into()],
            not_after: "2027-01-01 00:00:00 UTC".into(),
            expires_in_seconds: 86_400 * 40 + 5,
        }],
        series: SeriesView::default(),
    }
}

#[test]
fn tls_counters_and_certificate_expiry_are_shown() {
    let s = snapshot();
    let m = prometheus(&s);
    assert!(m.contains(
        "pibl_certificate_expiry_seconds{name=\"*.a.test\",file=\"/etc/pibl/a.pem\"} 3456005\n"
    ));
    assert!(m.contains("pibl_tls_connections_total{outcome=\"handshake\"} 3\n"));
    assert!(m.contains("pibl_tls_handshake_failures_total 1\n"));
    let j = json(&s);
    assert!(j.contains("\"names\":[\"a.test\",\"*.a.test\"]"), "{j}");
    assert!(j.contains("\"expires_in_days\":40}]}"), "{j}");
    let h = html(&s);
    assert!(h.contains("<td class=\"days\">40</td>"), "{h}");
}

#[test]
fn json_series_are_columns_of_one_length() {
    use crate::admin::series::{BackendSample, BackendSeriesView, Mark, Sample};
    let mut s = snapshot();
    s.series = SeriesView {
        range: Range::FiveMinutes,
        end_second: 42,
        samples: vec![
            Sample {
                responses: [0, 3, 0, 1, 0],
                connections: 2,
                ..Sample::default()
            },
            Sample::default(),
        ],
        backends: vec![BackendSeriesView {
            pool: Some("app".into()),
            name: "a\"b".into(),
            samples: vec![
                BackendSample {
                    requests: 3,
                    errors: 0,
                    p50_us: 1500,
                    p99_us: 4000,
                    mark: Mark::Up,
                },
                BackendSample {
                    p50_us: NO_LATENCY,
                    p99_us: NO_LATENCY,
                    mark: Mark::Excluded,
                    ..BackendSample::default()
                },
            ],
        }],
    };
    let j = json(&s);
    assert!(
        j.contains(
            "\"series\":{\"range\":\"5m\",\"step_seconds\":1,\"end_uptime_seconds\":42,\
             \"samples\":2,\"responses\":{\"1xx\":[0,0],\"2xx\":[3,0],"
        ),
        "{j}"
    );
    assert!(j.contains("\"connections\":[2,0],\"bytes_to_clients\":[0,0],\"bytes_to_backends\":[0,0],\"backends\":[{\"name\":\"a\\\"b\",\"pool\":\"app\",\"requests\":[3,0],"), "{j}");
    assert!(
        j.contains("\"latency_p50_ms\":[1.5,null],\"latency_p99_ms\":[4,null],\"state\":[\"up\",\"excluded\"]}]}"),
        "{j}"
    );
    let page = html(&s);
    assert_eq!(page.matches("<svg class=\"chart\"").count(), 4);
    assert!(page.find("<svg").unwrap_or(usize::MAX) < page.find("<h2>Backends").unwrap_or(0));
    assert!(page.contains("<a href=\"/status?range=5m\" aria-current=\"page\">"));
}

#[test]
fn html_escapes_backend_names() {
    let page = html(&snapshot());
    assert!(page.contains("<td class=\"name\">&lt;b&gt;&quot;x&quot;\\\n</td>"));
    assert!(!page.contains("<b>"));
    assert!(page.contains("<td class=\"state down\">down</td>"));
    assert!(page.contains("<span id=\"uptime\">1h 02m</span>"));
    assert!(page.contains("<td class=\"hit-ratio\">-</td>"));
}

#[test]
fn json_escapes_and_uses_null_for_no_data() {
    let j = json(&snapshot());
    assert!(j.contains("\"name\":\"<b>\\\"x\\\"\\\\\\u000a\""), "{j}");
    assert!(j.contains("\"hit_ratio\":null"), "{j}");
    assert!(j.contains("\"cache\":{\"enabled\":false"), "{j}");
    assert!(j.contains("\"responses\":{\"1xx\":0,\"2xx\":5,"), "{j}");
}

#[test]
fn prometheus_labels_are_escaped_and_buckets_end_at_count() {
    let m = prometheus(&snapshot());
    let label = "backend=\"<b>\\\"x\\\"\\\\\\n\"";
    assert!(
        m.contains(&format!("pibl_backend_up{{{label}}} 0\n")),
        "{m}"
    );
    assert!(m.contains(&format!(
        "pibl_backend_response_seconds_bucket{{{label},le=\"0.005\"}} 1\n"
    )));
    assert!(m.contains(&format!(
        "pibl_backend_response_seconds_bucket{{{label},le=\"100\"}} 1\n"
    )));
    assert!(m.contains(&format!(
        "pibl_backend_response_seconds_bucket{{{label},le=\"+Inf\"}} 2\n"
    )));
    assert!(m.contains(&format!(
        "pibl_backend_response_seconds_sum{{{label}}} 500.003\n"
    )));
    assert_eq!(seconds(25_000), "0.000025");
    assert_eq!(seconds(2_500_000_000), "2.5");
}

#[test]
fn compression_counters_in_every_form() {
    let s = snapshot();
    let page = html(&s);
    assert!(
        page.contains("<tr><th>br</th><td>3000</td><td>1000</td><td>3.00</td></tr>"),
        "{page}"
    );
    assert!(page.contains("<tr><th>zstd</th><td>0</td><td>0</td><td>-</td></tr>"));
    let j = json(&s);
    assert!(
        j.contains("\"compression\":{\"br\":{\"bytes_in\":3000,\"bytes_out\":1000},\"zstd\":{\"bytes_in\":0,\"bytes_out\":0},\"gzip\":{\"bytes_in\":10,\"bytes_out\":5}}"),
        "{j}"
    );
    let m = prometheus(&s);
    assert!(
        m.contains("pibl_compress_bytes_in_total{coding=\"br\"} 3000\n"),
        "{m}"
    );
    assert!(
        m.contains("pibl_compress_bytes_out_total{coding=\"gzip\"} 5\n"),
        "{m}"
    );
}
