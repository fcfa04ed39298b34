//! `pibl`: the reverse proxy. Parses the command line, loads the config, runs the proxy, and
//! turns signals into actions: SIGHUP reloads the config, SIGUSR1 reopens the log file,
//! SIGTERM/SIGINT stop gracefully, and a second SIGTERM/SIGINT stops at once (exit status 1).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Duration;

use pibl::config::{Config, ConfigError, DEFAULT_CACHE_TTL};
use pibl::demo::Demo;
use pibl::logging::LogWriter;
use pibl::net;
use pibl::proxy::shared::load_tls;
use pibl::proxy::Proxy;
use pibl::tls::server::TlsServer;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

const USAGE: &str = "Usage: pibl [-c FILE] [-t DURATION] [-w WORKERS] [--check] [--upgrade]\n       pibl --demo [--port PORT] [-t DURATION]\n\n\
HTTP/1.1 reverse proxy and round-robin load balancer.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = getopts::Options::new();
    opts.optopt("c", "config", "config file (default ./pibl.conf)", "FILE");
    opts.optopt(
        "w",
        "workers",
        "worker threads (default: one per core)",
        "N",
    );
    opts.optopt(
        "t",
        "ttl",
        "cache TTL, whole seconds as in cache_ttl (120, 120s, 2m); turns the disk cache on \
         (overrides cache_ttl)",
        "DURATION",
    );
    opts.optflag(
        "",
        "demo",
        "run three demo origin servers and the proxy in front of them",
    );
    opts.optopt(
        "p",
        "port",
        "with --demo: the proxy's port (default 8080)",
        "PORT",
    );
    opts.optflag(
        "",
        "check",
        "validate the config as a start would, print every setting in effect and exit",
    );
    opts.optflag(
        "",
        "upgrade",
        "take over from a running pibl: share its listen address while it drains (with \
         --check: do not count the addresses it holds as taken)",
    );
    opts.optflag("h", "help", "print this help");
    opts.optflag("V", "version", "print the version");
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("pibl: {e}\n{}", opts.usage(USAGE));
            return ExitCode::from(2);
        }
    };
    if m.opt_present("h") {
        print!("{}", opts.usage(USAGE));
        return ExitCode::SUCCESS;
    }
    if m.opt_present("V") {
        println!("pibl {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if !m.free.is_empty() {
        eprintln!(
            "pibl: unexpected argument '{}'\n{}",
            m.free[0],
            opts.usage(USAGE)
        );
        return ExitCode::from(2);
    }
    // One duration syntax, the config file's.
    let ttl = match m.opt_str("t").map(|t| pibl::config::parse_ttl(&t)) {
        None => None,
        Some(Ok(ttl)) => Some(ttl),
        Some(Err(e)) => {
            eprintln!("pibl: -t: {e}");
            return ExitCode::from(2);
        }
    };
    if m.opt_present("p") && !m.opt_present("demo") {
        eprintln!(
            "pibl: --port is for --demo only; set the proxy's address with 'listen' in the config"
        );
        return ExitCode::from(2);
    }
    let upgrade = m.opt_present("upgrade");
    if m.opt_present("demo") {
        let port = match m.opt_str("p").map(|p| p.parse::<u16>()) {
            None => 8080,
            Some(Ok(p)) => p,
            Some(Err(_)) => {
                eprintln!("pibl: --port needs a port number (0-65535)");
                return ExitCode::from(2);
            }
        };
        return run_demo(port, ttl, upgrade);
    }
    let overrides = Overrides {
        ttl,
        workers: match m.opt_str("w") {
            None => None,
            Some(w) => match w.parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => Some(n),
                _ => {
                    eprintln!("pibl: -w needs a number from 1 to 1024, got '{w}'");
                    return ExitCode::from(2);
                }
            },
        },
    };
    let path = PathBuf::from(m.opt_str("c").unwrap_or_else(|| "pibl.conf".into()));
    if m.opt_present("check") {
        let checked = overrides
            .load(&path)
            .and_then(|config| check_start(&config, upgrade).map(|tls| (config, tls)));
        return match checked {
            Ok((config, tls)) => {
                print!("{}", config.summary());
                for w in config.warnings() {
                    eprintln!("pibl: warning: {w}");
                }
                if let Some((tls, warnings)) = tls {
                    print!("{}", pibl::config::certificate_summary(&tls.certs));
                    for w in warnings {
                        eprintln!("pibl: warning: {w}");
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pibl: {e}");
                ExitCode::FAILURE
            }
        };
    }
    run(&path, &overrides, upgrade)
}

/// What would stop a start, found without starting: the listen and admin addresses are free
/// (unless `upgrade`: a running pibl may hold them), the log file can be written and the cache
/// directory used, the certificates load (returned, with their warnings). Each problem is
/// located at the directive's line.
fn check_start(
    config: &Config,
    upgrade: bool,
) -> Result<Option<(TlsServer, Vec<String>)>, ConfigError> {
    if !upgrade {
        check_listen_free(config)?;
        if let Some(admin) = config.admin {
            net::probe_bind(admin).map_err(|e| {
                let why = net::describe_bind_error(admin, &e).replace("'listen'", "'admin'");
                config.error_at("admin", format!("admin: {why}"))
            })?;
        }
    }
    let log_file = &config.log_file;
    writable(log_file, false).map_err(|why| {
        config.error_at(
            "log_file",
            format!("log_file: cannot write {}: {why}", log_file.display()),
        )
    })?;
    if let Some(cache) = config.cache_config() {
        writable(&cache.dir, true).map_err(|why| {
            config.error_at(
                "cache_dir",
                format!("cache_dir: cannot use {}: {why}", cache.dir.display()),
            )
        })?;
    }
    load_tls(config)
}

/// Nothing listens on `listen` yet. Binding with SO_REUSEPORT would otherwise join a running
/// pibl's port silently and split its traffic; `--upgrade` says that is the intent.
fn check_listen_free(config: &Config) -> Result<(), ConfigError> {
    for l in &config.listeners {
        if let Some(u) = &l.unix {
            net::probe_unix(&u.path).map_err(|e| {
                config.error_at("listen", net::describe_unix_bind_error(&u.path, &e))
            })?;
            continue;
        }
        net::probe_bind(l.addr).map_err(|e| {
            let mut why = net::describe_bind_error(l.addr, &e);
            if e.kind() == std::io::ErrorKind::AddrInUse {
                why.push_str(
                    "; to take over from a running pibl without downtime, start with --upgrade",
                );
            }
            config.error_at("listen", why)
        })?;
    }
    Ok(())
}

/// Whether pibl could write `path` (a file, appended; or a directory, to create files in),
/// creating nothing: the path itself when it exists, else the nearest directory above it
/// that does (`create_dir_all` and `O_CREAT` would create the rest).
fn writable(path: &Path, is_dir: bool) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let mut existing = path;
    while std::fs::symlink_metadata(existing).is_err() {
        existing = match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if existing == Path::new(".") {
            break;
        }
    }
    let meta = std::fs::metadata(existing).map_err(|e| format!("{}: {e}", existing.display()))?;
    if existing == path && meta.is_dir() != is_dir {
        return Err(if is_dir {
            "it is not a directory".to_string()
        } else {
            "it is a directory".to_string()
        });
    }
    if existing != path && !meta.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    let mode = if meta.is_dir() {
        libc::W_OK | libc::X_OK
    } else {
        libc::W_OK
    };
    let c_path = std::ffi::CString::new(existing.as_os_str().as_bytes())
        .map_err(|_| "the path holds a NUL byte".to_string())?;
    // SAFETY: access() only reads the NUL-terminated path.
    if unsafe { libc::access(c_path.as_ptr(), mode) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if existing == path {
            e.to_string()
        } else {
            format!("{} (in {})", e, existing.display())
        });
    }
    Ok(())
}

/// Command-line settings that win over the config file, at start and at every reload.
struct Overrides {
    ttl: Option<Duration>,
    workers: Option<usize>,
}

impl Overrides {
    /// Reads the config file and applies the command line on top.
    fn load(&self, path: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::load(path)?;
        if self.workers.is_some() {
            config.workers = self.workers;
        }
        if self.ttl.is_some() {
            config.cache.ttl = self.ttl;
        }
        Ok(config)
    }
}

fn run(path: &Path, overrides: &Overrides, upgrade: bool) -> ExitCode {
    // Before anything binds: a SIGTERM that arrives just after start-up must find the handler
    // installed, or the default action kills the process mid-start.
    let mut signals = match install_signals() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let config = match overrides
        .load(path)
        .and_then(|config| check_start(&config, upgrade).map(|_| config))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pibl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let logs = match LogWriter::start(&config.log_file, true) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pibl: {e}");
            return ExitCode::FAILURE;
        }
    };
    logs.set_access_stdout(config.log_stdout);
    raise_open_files_limit(config.limits.max_connections);
    let proxy = match Proxy::start(config, &logs) {
        Ok(p) => p,
        Err(e) => {
            log::error!("{e}");
            eprintln!("pibl: {e}");
            logs.finish();
            return ExitCode::FAILURE;
        }
    };
    serve_until_stop(&mut signals, &logs, || match overrides.load(path) {
        Ok(config) => {
            logs.set_access_stdout(config.log_stdout);
            proxy.reload(config)
        }
        Err(e) => log::error!("reload failed: {e}"),
    });
    // The drain is bounded by the shutdown_timeout in force now, which a reload may have changed.
    let bound = proxy.shared().settings().config.timeouts.shutdown;
    log::info!(
        "stopping: finishing requests in flight (at most {bound:?}); \
         a second SIGTERM or SIGINT stops at once"
    );
    finish(signals, logs, move || proxy.shutdown(), "stopped")
}

fn run_demo(port: u16, ttl: Option<Duration>, upgrade: bool) -> ExitCode {
    // A second demo on the same port would share it (SO_REUSEPORT) and split the traffic.
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    if let (false, Err(e)) = (upgrade, net::probe_bind(listen)) {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            let by = net::port_holder(port).unwrap_or_else(|| "another program".to_string());
            eprintln!(
                "pibl: port {port} is taken by {by}, so the demo proxy cannot listen there; \
                 pick another port: pibl --demo --port 9090"
            );
        } else {
            eprintln!("pibl: {}", net::describe_bind_error(listen, &e));
        }
        return ExitCode::FAILURE;
    }
    let mut signals = match install_signals() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let logs = match LogWriter::start(Path::new("pibl.log"), true) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pibl: {e}");
            return ExitCode::FAILURE;
        }
    };
    raise_open_files_limit(pibl::config::Limits::default().max_connections);
    let demo = match Demo::start(port, ttl, &logs) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("pibl: {e}");
            logs.finish();
            return ExitCode::FAILURE;
        }
    };
    // The start-up lines first, then the banner, so the banner is what the newcomer sees last.
    logs.drain_stdout(Duration::from_secs(1));
    println!("{}", demo.banner(ttl.unwrap_or(DEFAULT_CACHE_TTL)));
    serve_until_stop(&mut signals, &logs, || {
        log::warn!("SIGHUP ignored: the demo has no config file to reload");
    });
    log::info!("stopping the demo");
    finish(signals, logs, move || demo.shutdown(), "demo stopped")
}

/// Takes the hard open-files limit (a soft 1024 would cap pibl near 500 proxied connections) and
/// says so when even that cannot hold `max_connections`: each proxied connection holds two
/// descriptors, a client's and a backend's.
fn raise_open_files_limit(max_connections: usize) {
    match pibl::net::raise_fd_limit() {
        Ok(l) => {
            if l.now > l.was {
                log::info!("open files limit raised from {} to {}", l.was, l.now);
            }
            let needed = 2 * max_connections as u64 + 64;
            if l.now < needed {
                log::warn!(
                    "the open files limit ({}) holds about {} proxied connections, fewer than \
                     max_connections {max_connections}; past that, new clients wait in the \
                     backlog (raise the hard limit: ulimit -Hn, or LimitNOFILE in systemd)",
                    l.now,
                    l.now.saturating_sub(64) / 2
                );
            }
        }
        Err(e) => log::warn!("cannot raise the open files limit: {e}"),
    }
}

/// The signals pibl handles, installed before anything else starts. Failure is fatal: a proxy
/// that cannot be stopped gracefully or reloaded should not start.
fn install_signals() -> Result<Signals, ExitCode> {
    Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1]).map_err(|e| {
        eprintln!("pibl: cannot install signal handlers: {e}");
        ExitCode::FAILURE
    })
}

/// Handles SIGHUP (`reload`) and SIGUSR1 (reopen the log file) until SIGTERM or SIGINT.
fn serve_until_stop(signals: &mut Signals, logs: &LogWriter, mut reload: impl FnMut()) {
    for sig in signals.forever() {
        match sig {
            SIGHUP => reload(),
            SIGUSR1 => reopen_log(logs),
            _ => return,
        }
    }
}

/// Runs the graceful `stop` on its own thread so this one can keep answering signals: a second
/// SIGTERM or SIGINT exits at once with status 1 (requests still in flight are cut; lines the
/// log writer already has are in the file, since it writes each batch as it receives it).
fn finish(
    mut signals: Signals,
    logs: LogWriter,
    stop: impl FnOnce() + Send + 'static,
    done: &str,
) -> ExitCode {
    let handle = signals.handle();
    let stopper = std::thread::spawn(move || {
        stop();
        // Ends the loop below.
        handle.close();
    });
    for sig in signals.forever() {
        match sig {
            SIGUSR1 => reopen_log(&logs),
            SIGHUP => log::warn!("SIGHUP ignored: pibl is stopping"),
            _ => {
                log::warn!("second stop signal: exiting now, cutting requests in flight");
                log::logger().flush();
                logs.drain_stdout(Duration::from_millis(500));
                return ExitCode::from(1);
            }
        }
    }
    let _ = stopper.join();
    log::info!("{done}");
    logs.finish();
    ExitCode::SUCCESS
}

fn reopen_log(logs: &LogWriter) {
    match logs.reopen() {
        Ok(()) => log::info!("reopened log file {}", logs.path().display()),
        Err(e) => log::error!("{e}; still writing to the file open before"),
    }
}
