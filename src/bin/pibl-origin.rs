//! `pibl-origin`: a small web server to put behind pibl. Parses the command line, starts
//! `pibl::origin::Origin`, runs until SIGINT or SIGTERM. See `docs/origin.md`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use pibl::origin::{Origin, OriginConfig};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str =
    "Usage: pibl-origin [--listen ADDR:PORT] [--root DIR] [--name NAME] [--workers N]\n\n\
A small HTTP/1.1 web server: a demo site, /api/info, /echo and /health.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = getopts::Options::new();
    opts.optopt(
        "l",
        "listen",
        "address to listen on (default 127.0.0.1:8081)",
        "ADDR:PORT",
    );
    opts.optopt(
        "r",
        "root",
        "serve this directory instead of the embedded site",
        "DIR",
    );
    opts.optopt(
        "n",
        "name",
        "server name shown in pages and X-Served-By (default origin-PORT)",
        "NAME",
    );
    opts.optopt("w", "workers", "worker threads (default 1)", "N");
    opts.optflag("h", "help", "print this help");
    opts.optflag("V", "version", "print the version");
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("pibl-origin: {e}\n{}", opts.usage(USAGE));
            return ExitCode::from(2);
        }
    };
    if m.opt_present("h") {
        print!("{}", opts.usage(USAGE));
        return ExitCode::SUCCESS;
    }
    if m.opt_present("V") {
        println!("pibl-origin {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(extra) = m.free.first() {
        eprintln!(
            "pibl-origin: unexpected argument '{extra}'\n{}",
            opts.usage(USAGE)
        );
        return ExitCode::from(2);
    }
    let mut config = OriginConfig::default();
    if let Some(listen) = m.opt_str("l") {
        match listen.parse::<SocketAddr>() {
            Ok(addr) => config.listen = addr,
            Err(_) => {
                eprintln!(
                    "pibl-origin: --listen needs ADDR:PORT (e.g. 127.0.0.1:8081), got '{listen}'"
                );
                return ExitCode::from(2);
            }
        }
    }
    if let Some(w) = m.opt_str("w") {
        match w.parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => config.workers = n,
            _ => {
                eprintln!("pibl-origin: --workers needs a number from 1 to 1024, got '{w}'");
                return ExitCode::from(2);
            }
        }
    }
    config.root = m.opt_str("r").map(PathBuf::from);
    config.name = m.opt_str("n");
    run(&config)
}

fn run(config: &OriginConfig) -> ExitCode {
    // Handlers go in before the listening line, so a stop sent as soon as it is read counts.
    let signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pibl-origin: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Many clients at once (a load test) need more than a soft limit of 1024 descriptors.
    let _ = pibl::net::raise_fd_limit();
    let origin = match Origin::start(config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pibl-origin: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "pibl-origin {} listening on {}",
        origin.name(),
        origin.local_addr()
    );
    let _ = stdout.flush();
    drop(stdout);
    wait_for_stop(signals);
    origin.shutdown();
    ExitCode::SUCCESS
}

fn wait_for_stop(mut signals: Signals) {
    signals.forever().next();
}
