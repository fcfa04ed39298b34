//! `pibl-client`: command-line HTTP client with a request log and a local cache.
//! See `docs/client.md`; all logic lives in `pibl::client`.

use pibl::client::cache::{default_dir, Cache};
use pibl::client::error::EXIT_LOCAL_IO;
use pibl::client::log::local_offset;
use pibl::client::{parse_args, session, usage, ClientError, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Read the local offset first, while the process is certainly single-threaded.
    let offset = local_offset();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse_args(&args) {
        Ok(Command::Help) => {
            print!("{}", usage());
            Ok(())
        }
        Ok(Command::Version) => {
            println!("pibl-client {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Ok(Command::Flush { cache_dir }) => flush(cache_dir),
        Ok(Command::Fetch(options)) => session::run(&options, offset),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pibl-client: error: {e}");
            if let ClientError::Usage(_) = e {
                eprint!("\n{}", usage());
            }
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

/// `pibl-client flush`: empties the cache directory and reports what it removed.
fn flush(cache_dir: Option<std::path::PathBuf>) -> Result<(), ClientError> {
    let dir = cache_dir
        .or_else(default_dir)
        .ok_or_else(|| ClientError::LocalIo {
            what: "cannot find the cache directory (HOME unset); pass --cache-dir".into(),
            path: std::path::PathBuf::from("."),
            source: std::io::Error::other(format!("exit {EXIT_LOCAL_IO}")),
        })?;
    let report = Cache::flush(&dir)?;
    println!(
        "flushed {} entries ({} bytes) from {}",
        report.entries,
        report.bytes,
        dir.display()
    );
    Ok(())
}
