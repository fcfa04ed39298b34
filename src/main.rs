//! `pibl`: the reverse proxy. Parses the command line, loads the config, runs the proxy until
//! SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use pibl::config::{Config, DEFAULT_CACHE_TTL};
use pibl::demo::Demo;
use pibl::logging::LogWriter;
use pibl::proxy::Proxy;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

const USAGE: &str = "Usage: pibl [-c FILE] [-t SECONDS] [-w WORKERS] [--check]\n       pibl --demo [--port PORT] [-t SECONDS]\n\n\
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
        "cache TTL in seconds; turns the disk cache on (overrides cache_ttl)",
        "SECONDS",
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
    opts.optflag("", "check", "validate the config, print a summary and exit");
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
    let ttl = match m.opt_str("t").map(|t| t.parse::<u64>()) {
        None => None,
        Some(Ok(secs)) if secs > 0 => Some(Duration::from_secs(secs)),
        Some(_) => {
            eprintln!("pibl: -t needs a number of seconds above 0");
            return ExitCode::from(2);
        }
    };
    if m.opt_present("demo") {
        let port = match m.opt_str("p").map(|p| p.parse::<u16>()) {
            None => 8080,
            Some(Ok(p)) => p,
            Some(Err(_)) => {
                eprintln!("pibl: --port needs a port number (0-65535)");
                return ExitCode::from(2);
            }
        };
        return run_demo(port, ttl);
    }
    let path = PathBuf::from(m.opt_str("c").unwrap_or_else(|| "pibl.conf".into()));
    let mut config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pibl: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(w) = m.opt_str("w") {
        match w.parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => config.workers = Some(n),
            _ => {
                eprintln!("pibl: -w needs a number from 1 to 1024, got '{w}'");
                return ExitCode::from(2);
            }
        }
    }
    if ttl.is_some() {
        config.cache.ttl = ttl;
    }
    if m.opt_present("check") {
        print!("{}", config.summary());
        return ExitCode::SUCCESS;
    }
    run(config)
}

fn run(config: Config) -> ExitCode {
    // Before anything binds: a SIGTERM that arrives just after start-up must find the handler
    // installed, or the default action kills the process mid-start.
    let signals = install_signals();
    let logs = match LogWriter::start(&config.log_file, true) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pibl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let proxy = match Proxy::start(config, &logs) {
        Ok(p) => p,
        Err(e) => {
            log::error!("{e}");
            eprintln!("pibl: {e}");
            logs.finish();
            return ExitCode::FAILURE;
        }
    };
    wait_for_stop_signal(signals);
    log::info!("stopping: finishing requests in flight");
    proxy.shutdown();
    log::info!("stopped");
    logs.finish();
    ExitCode::SUCCESS
}

fn run_demo(port: u16, ttl: Option<Duration>) -> ExitCode {
    let signals = install_signals();
    let logs = match LogWriter::start(std::path::Path::new("pibl.log"), true) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pibl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let demo = match Demo::start(port, ttl, &logs) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("pibl: {e}");
            logs.finish();
            return ExitCode::FAILURE;
        }
    };
    println!("{}", demo.banner(ttl.unwrap_or(DEFAULT_CACHE_TTL)));
    wait_for_stop_signal(signals);
    log::info!("stopping the demo");
    demo.shutdown();
    logs.finish();
    ExitCode::SUCCESS
}

/// The signals pibl handles, installed as the first thing `run` does.
fn install_signals() -> Result<Signals, std::io::Error> {
    Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
}

fn wait_for_stop_signal(signals: Result<Signals, std::io::Error>) {
    match signals {
        Ok(mut signals) => {
            for sig in signals.forever() {
                if sig == SIGINT || sig == SIGTERM {
                    return;
                }
            }
        }
        Err(e) => {
            log::error!("cannot install signal handlers ({e}); stop pibl with SIGKILL");
            loop {
                std::thread::park();
            }
        }
    }
}
