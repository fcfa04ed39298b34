//! `pibl --demo`: three pibl-origin servers and the proxy in front of them, in one process, so
//! a newcomer sees round robin and the cache work with one command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, DEFAULT_CACHE_TTL};
use crate::logging::LogWriter;
use crate::origin::{Origin, OriginConfig};
use crate::proxy::Proxy;

/// How many origin servers the demo runs.
pub const ORIGINS: usize = 3;

/// The running demo.
pub struct Demo {
    origins: Vec<Origin>,
    proxy: Proxy,
}

impl Demo {
    /// Starts the origins on loopback ports the kernel picks, then the proxy on
    /// `127.0.0.1:port` with the cache on (in `./cache`).
    pub fn start(port: u16, ttl: Option<Duration>, logs: &LogWriter) -> Result<Demo, String> {
        let mut origins = Vec::with_capacity(ORIGINS);
        for i in 1..=ORIGINS {
            let cfg = OriginConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                root: None,
                name: Some(format!("origin-{i}")),
                workers: 1,
            };
            origins.push(Origin::start(&cfg)?);
        }
        let addrs: Vec<SocketAddr> = origins.iter().map(Origin::local_addr).collect();
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let mut config = Config::with_backends(listen, &addrs);
        config.path = PathBuf::from("<demo>");
        config.cache.enabled = Some(true);
        config.cache.ttl = Some(ttl.unwrap_or(DEFAULT_CACHE_TTL));
        // The status page on a free loopback port: shown in the banner, never in the way.
        config.admin = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let proxy = match Proxy::start(config, logs) {
            Ok(p) => p,
            Err(e) => {
                for o in origins {
                    o.shutdown();
                }
                return Err(if e.contains("already in use") {
                    format!(
                        "port {port} is taken by another program, so the demo proxy cannot \
                         listen there; pick another port: pibl --demo --port 9090"
                    )
                } else {
                    e
                });
            }
        };
        Ok(Demo { origins, proxy })
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy.local_addr()
    }

    /// What to open and what to try, for the terminal.
    pub fn banner(&self, ttl: Duration) -> String {
        let url = format!("http://{}", self.proxy_addr());
        let mut s = format!(
            "\npibl demo: the proxy at {url}/ balances round robin over {ORIGINS} pibl-origin \
             servers,\nwith the disk cache on (./cache, TTL {}s). Access log: stdout and ./pibl.log.\n\n",
            ttl.as_secs()
        );
        for o in &self.origins {
            s.push_str(&format!("  {}  http://{}/\n", o.name(), o.local_addr()));
        }
        s.push_str(&format!(
            "\nTry:\n\
             \x20 a browser on {url}/              the page names the origin that served it\n\
             \x20 curl -i {url}/api/info            never cached: a different origin each time\n\
             \x20 curl -si {url}/style.css | grep -i x-cache      MISS, then HIT\n\
             \x20 pibl-client demo.log {url}/       (cargo run --bin pibl-client -- demo.log {url}/)\n\
             \x20 curl -d 'hello' {url}/echo        POST, forwarded with its body\n"
        ));
        if let Some(admin) = self.proxy.admin_addr() {
            s.push_str(&format!(
                "\x20 a browser on http://{admin}/status   live status: backends, requests, cache\n"
            ));
        }
        s.push_str("\nPress Ctrl-C to stop.\n");
        s
    }

    /// Stops the proxy (finishing requests in flight), then the origins.
    pub fn shutdown(self) {
        self.proxy.shutdown();
        for o in self.origins {
            o.shutdown();
        }
    }
}
