//! Compression with the real decompressors (`gzip -d`, `brotli -d`, `zstd -d` from Debian's
//! packages, installed by .ci/run): what pibl's encoders make is what those tools read. A tool
//! that is missing skips its coding, said on stderr.

use std::io::Write;
use std::process::{Command, Stdio};

use pibl::compress::{Coding, Encoder, Levels, STEP_INPUT};

/// The tool and its arguments that decode `coding` from stdin to stdout.
fn decoder(coding: Coding) -> (&'static str, &'static [&'static str]) {
    match coding {
        Coding::Gzip => ("gzip", &["-d", "-c"]),
        Coding::Br => ("brotli", &["-d", "-c"]),
        Coding::Zstd => ("zstd", &["-d", "-c", "-q"]),
    }
}

/// Decodes with the real tool; `None` when it is not installed.
fn decode_with_tool(coding: Coding, data: &[u8]) -> Option<Vec<u8>> {
    let (tool, args) = decoder(coding);
    let mut child = match Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED {tool}: {e}");
            return None;
        }
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("decoder ran");
    writer
        .join()
        .expect("writer")
        .expect("decoder took its input");
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

/// Encodes through pibl's encoder with `room` bytes of output per call.
fn encode(coding: Coding, input: &[u8], room: usize) -> Vec<u8> {
    let mut enc = Encoder::new(coding, Levels::DEFAULT.of(coding)).expect("encoder");
    let mut buf = vec![0u8; room];
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let p = enc.compress(&input[at..], &mut buf).expect("compress");
        assert!(p.consumed <= STEP_INPUT);
        at += p.consumed;
        out.extend_from_slice(&buf[..p.written]);
    }
    loop {
        let d = enc.finish(&mut buf).expect("finish");
        out.extend_from_slice(&buf[..d.written]);
        if d.done {
            return out;
        }
    }
}

fn text(len: usize) -> Vec<u8> {
    let line = b"<li class=\"entry\"><a href=\"/articles/17\">Load balancing, part 17</a></li>\n";
    let mut out = Vec::with_capacity(len);
    let mut n = 0u32;
    while out.len() < len {
        out.extend_from_slice(line);
        out.extend_from_slice(n.to_string().as_bytes());
        n = n.wrapping_mul(31).wrapping_add(7);
    }
    out.truncate(len);
    out
}

#[test]
fn the_encoders_output_decodes_with_the_real_tools() {
    for len in [0, 1, 5000, 1 << 20] {
        let input = text(len);
        for coding in Coding::PREFERENCE {
            let encoded = encode(coding, &input, 16 * 1024);
            if let Some(decoded) = decode_with_tool(coding, &encoded) {
                assert!(decoded == input, "{coding:?}, {len} bytes: decoded differs");
            }
        }
    }
}

#[test]
fn small_output_room_still_makes_a_valid_stream() {
    let input = text(100_000);
    for coding in Coding::PREFERENCE {
        let encoded = encode(coding, &input, 7);
        if let Some(decoded) = decode_with_tool(coding, &encoded) {
            assert!(decoded == input, "{coding:?}: decoded differs");
        }
    }
}
