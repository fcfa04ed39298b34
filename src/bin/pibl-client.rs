//! `pibl-client`: command-line HTTP client with a request log and a local cache.
//! See `docs/client.md`; all logic lives in `pibl::client`.

use pibl::client::cache::{default_dir, Cache};
use pibl::client::log::local_offset;
use pibl::client::{parse_args, session, usage, ClientError, Command};
use std::path::PathBuf;
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
fn flush(cache_dir: Option<PathBuf>) -> Result<(), ClientError> {
    let dir = cache_dir.or_else(default_dir).ok_or_else(|| {
        ClientError::Usage("no cache directory: HOME is unset; pass --cache-dir DIR".into())
    })?;
    let report = Cache::flush(&dir)?;
    let entries = if report.entries == 1 {
        "entry"
    } else {
        "entries"
    };
    let bytes = if report.bytes == 1 { "byte" } else { "bytes" };
    println!(
        "flushed {} cache {entries} ({} {bytes}) from {}",
        report.entries,
        report.bytes,
        dir.display()
    );
    Ok(())
}
