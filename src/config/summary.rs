//! `pibl --check`'s summary: the settings in effect, in the config's own syntax.

use super::values::{format_duration, format_size, switch};
use super::{BackendSpec, Balance, Config, NoSite, DEFAULT_CACHE_TTL, DEFAULT_POOL};

impl Config {
    /// What `pibl --check` prints: every setting in effect, defaults included, one line each in
    /// the file's own syntax, so any line can be pasted back into a config. Lines starting with
    /// `#` say what a setting left unset amounts to.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "# config {} is valid; the settings in effect, defaults included:\n",
            self.path.display()
        );
        let mut put = |line: String| {
            s.push_str(&line);
            s.push('\n');
        };
        for l in &self.listeners {
            put(format!("listen {l}"));
        }
        for c in &self.certificates {
            put(format!(
                "certificate {} {}",
                c.chain.display(),
                c.key.display()
            ));
        }
        put(format!("tls_session_cache {}", self.tls_session_cache));
        put(format!("redirect_https {}", switch(self.redirect_https)));
        put(match self.hsts {
            Some(s) => format!("hsts {s}"),
            None => "hsts off".to_string(),
        });
        for b in &self.backends {
            put(backend_line(b));
        }
        if self.balance != Balance::default() {
            put(format!("balance {}", self.balance));
        }
        if let Some(v) = self.backend_proxy_protocol {
            put(format!("backend_proxy_protocol {}", v.name()));
        }
        match self.workers {
            Some(n) => put(format!("workers {n}")),
            None => put(format!("workers auto  # {}", self.worker_count())),
        }
        put(match self.admin {
            Some(a) => format!("admin {a}"),
            None => "admin off".to_string(),
        });
        put(format!("log_file {}", self.log_file.display()));
        put(format!("access_log {}", switch(self.access_log)));
        put(format!("log_stdout {}", switch(self.log_stdout)));
        let l = &self.limits;
        put(format!("max_connections {}", l.max_connections));
        match l.max_connections_per_worker {
            Some(n) => put(format!("max_connections_per_worker {n}")),
            None => put(format!(
                "# max_connections_per_worker unset: {} (max_connections / workers)",
                self.per_worker_connections()
            )),
        }
        put(format!("buffer_size {}", format_size(l.buffer_size as u64)));
        put(format!(
            "max_header_bytes {}",
            format_size(l.max_header_bytes as u64)
        ));
        put(format!("max_headers {}", l.max_headers));
        put(format!("upstream_pool_size {}", l.upstream_pool_size));
        put(if self.upgrade_protocols.is_empty() {
            "upgrade_protocols none".to_string()
        } else {
            format!("upgrade_protocols {}", self.upgrade_protocols.join(" "))
        });
        put(format!("splice {}", switch(self.splice)));
        let h2 = &self.http2;
        put(format!("http2 {}", switch(h2.tls)));
        put(format!("h2c {}", switch(h2.h2c)));
        put(format!(
            "http2_max_concurrent_streams {}",
            h2.max_concurrent_streams
        ));
        put(format!(
            "http2_initial_window {}",
            format_size(h2.initial_window as u64)
        ));
        put(format!(
            "http2_max_frame_size {}",
            format_size(h2.max_frame_size as u64)
        ));
        put(format!(
            "http2_max_header_list_size {}",
            format_size(h2.max_header_list_size as u64)
        ));
        for line in self.access.acl_lines() {
            put(line);
        }
        if self.access.acl.is_empty() {
            put("# allow/deny unset: every client is allowed".to_string());
        }
        match self.access.rate_limit {
            Some(r) => put(format!("rate_limit {r}")),
            None => put("# rate_limit unset: no limit".to_string()),
        }
        put(format!("rate_limit_table {}", self.access.rate_limit_table));
        for (status, file, size) in self.access.error_pages.iter() {
            put(format!(
                "error_page {status} {}  # {size} bytes",
                file.display()
            ));
        }
        put(match l.max_body_size {
            Some(n) => format!("max_body_size {}", format_size(n)),
            None => "max_body_size off".to_string(),
        });
        let t = &self.timeouts;
        for (name, d) in [
            ("client_header_timeout", t.client_header),
            ("keepalive_timeout", t.keepalive),
            ("client_timeout", t.client_idle),
            ("connect_timeout", t.connect),
            ("upstream_timeout", t.upstream),
            ("pool_idle_timeout", t.pool_idle),
            ("shutdown_timeout", t.shutdown),
        ] {
            put(format!("{name} {}", format_duration(d)));
        }
        let h = &self.health;
        put(format!("max_fails {}", h.max_fails));
        put(format!("fail_timeout {}", format_duration(h.fail_timeout)));
        put(format!("max_retries {}", h.max_retries));
        put(match &h.check {
            Some(c) => format!("health_check {} {}", c.path, format_duration(c.interval)),
            None => "health_check off".to_string(),
        });
        let c = &self.cache;
        let on = self.cache_config().is_some();
        put(format!("cache {}", switch(on)));
        match (c.ttl, on) {
            (Some(ttl), _) => put(format!("cache_ttl {}", format_duration(ttl))),
            (None, true) => put(format!("cache_ttl {}", format_duration(DEFAULT_CACHE_TTL))),
            (None, false) => put("# cache_ttl unset".to_string()),
        }
        put(format!("cache_dir {}", c.dir.display()));
        put(format!("cache_max_bytes {}", format_size(c.max_bytes)));
        put(format!("cache_max_object {}", format_size(c.max_object)));
        put(format!("cache_heuristic {}", switch(c.heuristic)));
        put(format!(
            "cdn_cache_control {}",
            if c.cdn_cache_control_pass {
                "pass"
            } else {
                "strip"
            }
        ));
        for line in self.compress.summary_lines() {
            put(line);
        }
        for line in self.edge.summary_lines() {
            put(line);
        }
        s.push_str(&self.routing_table());
        s
    }

    /// The pools and sites, as blocks in the file's syntax (nothing for a flat config).
    pub fn routing_table(&self) -> String {
        let mut s = String::new();
        if self.pools.is_empty() && self.sites.is_empty() {
            return s;
        }
        s.push_str("# routing: pools, then sites (a host no site names goes to ");
        s.push_str(
            &match (self.sites.iter().find(|s| s.default), self.no_site) {
                (Some(d), _) => format!("site {}", d.hosts.join(" ")),
                (None, NoSite::FirstSite) => match self.sites.first() {
                    Some(first) => format!("the first site, {}", first.hosts.join(" ")),
                    None => format!("pool {DEFAULT_POOL}"),
                },
                (None, NoSite::NotFound) => "404".to_string(),
                (None, NoSite::Misdirected) => "421".to_string(),
            },
        );
        s.push_str(")\n");
        match self.no_site {
            NoSite::FirstSite => {}
            NoSite::NotFound => s.push_str("no_site 404\n"),
            NoSite::Misdirected => s.push_str("no_site 421\n"),
        }
        for p in &self.pools {
            s.push_str(&format!("pool {} {{\n", p.name));
            for b in &p.backends {
                s.push_str(&format!("    {}\n", backend_line(b)));
            }
            s.push_str(&format!("    balance {}\n", p.balance));
            if let Some(v) = p.proxy_protocol {
                s.push_str(&format!("    proxy_protocol {}\n", v.name()));
            }
            s.push_str("}\n");
        }
        for site in &self.sites {
            s.push_str(&format!("site {} {{\n", site.hosts.join(" ")));
            if site.default {
                s.push_str("    default\n");
            }
            for line in site.settings.summary_lines() {
                s.push_str(&format!("    {line}\n"));
            }
            for r in &site.routes {
                let exact = if r.exact { "= " } else { "" };
                s.push_str(&format!("    route {exact}{} {}", r.path, r.pool));
                let own = r.settings.summary_lines();
                if own.is_empty() {
                    s.push('\n');
                } else {
                    s.push_str(" {\n");
                    for line in own {
                        s.push_str(&format!("        {line}\n"));
                    }
                    s.push_str("    }\n");
                }
                // What the site and route change from the top level, in effect for the route.
                let in_effect = r.settings.inherit(&site.settings).summary_lines();
                if !in_effect.is_empty() {
                    s.push_str(&format!("    #   in effect: {}\n", in_effect.join("; ")));
                }
            }
            s.push_str("}\n");
        }
        s
    }
}

/// `backend NAME [tls] [weight=N] [backup]`, and the address it resolved to when that differs.
fn backend_line(b: &BackendSpec) -> String {
    let mut line = format!("backend {}", b.name);
    if b.tls_name.is_some() && !b.name.starts_with("https://") {
        line.push_str(" tls");
    }
    if b.weight != 1 {
        line.push_str(&format!(" weight={}", b.weight));
    }
    if b.backup {
        line.push_str(" backup");
    }
    if b.name != b.addr.to_string() {
        line.push_str(&format!("  # {}", b.addr));
    }
    line
}

/// `--check`'s lines about the certificates as loaded: names and expiry, as comments.
pub fn certificates(certs: &[crate::tls::certs::CertInfo]) -> String {
    let now = std::time::SystemTime::now();
    let mut s = String::new();
    for (i, c) in certs.iter().enumerate() {
        s.push_str(&format!(
            "# certificate {}{}: {}; expires {} (in {} days)\n",
            c.chain_path.display(),
            if i == 0 { " (default)" } else { "" },
            c.names_joined(),
            c.not_after_text(),
            c.expires_in(now) / 86_400
        ));
    }
    s
}
