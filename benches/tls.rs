//! The crypto provider, by measurement (issue 14): a rustls client and server driven through
//! memory (no sockets), with the same ECDSA P-256 certificate, for aws-lc-rs and ring:
//! a full handshake, a resumed one (TLS 1.3 ticket), and 1 MiB encrypted and decrypted.
//!
//! Times are the bench thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time, so a shared
//! machine's load does not enter them. Both sides (client and server) are in each figure.
//!
//! Run: `cargo bench --bench tls` (add `-- --quick` for a fast run). docs/tls.md has the figures;
//! pibl uses the faster provider (`pibl::tls::provider`).

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustls::crypto::CryptoProvider;
use rustls::server::ProducesTickets;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use pibl::tls::selfsigned::DemoCa;

struct Pair {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

fn configs(
    provider: CryptoProvider,
    ticketer: Arc<dyn ProducesTickets>,
    ca: &DemoCa,
    chain: &str,
    key: &str,
) -> Pair {
    let provider = Arc::new(provider);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<_, _>>()
        .expect("chain");
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server");
    server.ticketer = ticketer;
    server.send_tls13_tickets = 1;
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.cert_pem.as_bytes()) {
        roots.add(c.expect("ca")).expect("root");
    }
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Pair {
        client: Arc::new(client),
        server: Arc::new(server),
    }
}

/// Moves all pending TLS bytes from `$from` to `$to` and processes them there.
macro_rules! transfer {
    ($from:expr, $to:expr, $wire:expr) => {{
        let wire: &mut Vec<u8> = $wire;
        wire.clear();
        while $from.wants_write() {
            $from.write_tls(wire).expect("write_tls");
        }
        let mut rd = &wire[..];
        while !rd.is_empty() {
            $to.read_tls(&mut rd).expect("read_tls");
            $to.process_new_packets().expect("process");
        }
    }};
}

/// One handshake to completion (the client then reads the server's ticket).
fn handshake(pair: &Pair, wire: &mut Vec<u8>) -> (ClientConnection, ServerConnection) {
    let mut c = ClientConnection::new(pair.client.clone(), "localhost".try_into().expect("name"))
        .expect("client");
    let mut s = ServerConnection::new(pair.server.clone()).expect("server");
    while c.is_handshaking() || s.is_handshaking() {
        transfer!(c, s, wire);
        transfer!(s, c, wire);
    }
    transfer!(s, c, wire);
    (c, s)
}

/// The CPU time this thread spends running `f` `iters` times: the machine running the bench is
/// shared, and CPU time is what a busy proxy pays (wall time would include other processes).
fn cpu_time(iters: u64, mut f: impl FnMut()) -> Duration {
    fn now() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes the struct we pass.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
    let start = now();
    for _ in 0..iters {
        f();
    }
    now().saturating_sub(start)
}

fn bench(c: &mut Criterion) {
    let ca = DemoCa::generate("bench CA").expect("ca");
    let leaf = ca
        .issue(&["localhost"], Duration::from_secs(86_400))
        .expect("leaf");
    #[cfg_attr(not(feature = "bench-aws-lc"), allow(unused_mut))]
    let mut providers: Vec<(&str, Pair)> = vec![(
        "ring",
        configs(
            rustls::crypto::ring::default_provider(),
            rustls::crypto::ring::Ticketer::new().expect("ticketer"),
            &ca,
            &leaf.chain_pem,
            &leaf.key_pem,
        ),
    )];
    // aws-lc-rs prefers the post-quantum hybrid X25519MLKEM768 (ring has no ML-KEM): measured
    // as it comes, and with ring's key exchange (X25519) to compare the same work.
    #[cfg(feature = "bench-aws-lc")]
    let aws_classic = {
        let mut p = rustls::crypto::aws_lc_rs::default_provider();
        p.kx_groups = vec![
            rustls::crypto::aws_lc_rs::kx_group::X25519,
            rustls::crypto::aws_lc_rs::kx_group::SECP256R1,
        ];
        p
    };
    #[cfg(feature = "bench-aws-lc")]
    providers.extend([
        (
            "aws-lc-rs-x25519",
            configs(
                aws_classic,
                rustls::crypto::aws_lc_rs::Ticketer::new().expect("ticketer"),
                &ca,
                &leaf.chain_pem,
                &leaf.key_pem,
            ),
        ),
        (
            "aws-lc-rs-mlkem",
            configs(
                rustls::crypto::aws_lc_rs::default_provider(),
                rustls::crypto::aws_lc_rs::Ticketer::new().expect("ticketer"),
                &ca,
                &leaf.chain_pem,
                &leaf.key_pem,
            ),
        ),
    ]);
    let mut wire = Vec::with_capacity(1 << 21);
    let mut g = c.benchmark_group("tls_handshake");
    for (name, pair) in &providers {
        g.bench_function(format!("full/{name}"), |b| {
            // A fresh client config each time would cost more than the handshake; a client
            // without a session store does a full handshake every time.
            let mut cc = (*pair.client).clone();
            cc.resumption = rustls::client::Resumption::disabled();
            let full = Pair {
                client: Arc::new(cc),
                server: pair.server.clone(),
            };
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    black_box(handshake(&full, &mut wire));
                })
            })
        });
        g.bench_function(format!("resumed/{name}"), |b| {
            handshake(pair, &mut wire);
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    let (c, _) = handshake(pair, &mut wire);
                    assert_eq!(c.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
                    black_box(c);
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("tls_bulk");
    g.throughput(Throughput::Bytes(1 << 20));
    let body = vec![0x5au8; 1 << 20];
    let mut got = vec![0u8; 1 << 20];
    for (name, pair) in &providers {
        let (mut client, mut server) = handshake(pair, &mut wire);
        server.set_buffer_limit(None);
        g.bench_function(format!("1MiB/{name}"), |b| {
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    server.writer().write_all(&body).expect("encrypt");
                    wire.clear();
                    while server.wants_write() {
                        server.write_tls(&mut wire).expect("write_tls");
                    }
                    let (mut rd, mut at) = (&wire[..], 0);
                    while !rd.is_empty() {
                        client.read_tls(&mut rd).expect("read_tls");
                        client.process_new_packets().expect("decrypt");
                        at += client.reader().read(&mut got[at..]).unwrap_or(0);
                    }
                    assert_eq!(at, got.len());
                    black_box(&got);
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
