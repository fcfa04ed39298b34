//! pibl's HPACK module against the hpack-test-case corpus (github.com/http2jp/hpack-test-case):
//! the stories vendored in `tests/data/hpack-test-case/` (its README.md says which and why).
//!
//! - Every case of every story decodes, with one `Decoder` per story (the dynamic table carries
//!   across cases), to exactly the story's header list.
//! - Every story's header lists, encoded by pibl's `Encoder` with each indexing mode, decode back
//!   with a fresh `Decoder`, and, where Python's `hpack` is installed, with that independent
//!   decoder too.
//! - The corpus directory is not empty and every story in it was loaded and run, so a wrong path
//!   cannot make these tests pass on nothing.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pibl::h2::hpack::{DecodedHeaders, Decoder, Encoder, Indexing};
use serde_json::Value;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/hpack-test-case");

/// SETTINGS_HEADER_TABLE_SIZE until a case says otherwise (RFC 9113 §6.5.2; the corpus README).
const DEFAULT_TABLE_SIZE: usize = 4096;

/// No story's list comes near it; the list bound itself is tested in `src/h2/hpack/tests.rs`.
const MAX_LIST_SIZE: usize = 1 << 20;

/// The encoders whose stories are vendored: each must be present, so that a story directory
/// lost or renamed fails here rather than shrinking the test.
const ENCODERS: &[&str] = &[
    "go-hpack",
    "haskell-http2-linear-huffman",
    "haskell-http2-naive",
    "haskell-http2-static-huffman",
    "nghttp2",
    "nghttp2-16384-4096",
    "nghttp2-change-table-size",
    "node-http2-hpack",
    "python-hpack",
];

type HeaderList = Vec<(Vec<u8>, Vec<u8>)>;

/// One header block of a story.
struct Case {
    seqno: u64,
    /// SETTINGS_HEADER_TABLE_SIZE as sent and acknowledged just before this case.
    header_table_size: Option<usize>,
    /// The encoded block; absent in `raw-data` stories (header lists only).
    wire: Option<Vec<u8>>,
    headers: HeaderList,
}

struct Story {
    /// `encoder/story_NN.json`, for messages.
    name: String,
    cases: Vec<Case>,
}

impl Story {
    /// The largest table size the story's settings allow: the limit its decoder advertises.
    fn table_size_limit(&self) -> usize {
        self.cases
            .iter()
            .filter_map(|case| case.header_table_size)
            .fold(DEFAULT_TABLE_SIZE, usize::max)
    }
}

fn hex_decode(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("odd-length hex ({} digits)", hex.len()));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| format!("bad hex at {i}: {e}")))
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_case(value: &Value) -> Result<Case, String> {
    let seqno = value["seqno"].as_u64().ok_or("a case without seqno")?;
    let header_table_size = match &value["header_table_size"] {
        Value::Null => None,
        size => Some(size.as_u64().ok_or("header_table_size not a number")? as usize),
    };
    let wire = match &value["wire"] {
        Value::Null => None,
        wire => Some(hex_decode(wire.as_str().ok_or("wire not a string")?)?),
    };
    let mut headers = Vec::new();
    for field in value["headers"].as_array().ok_or("headers not an array")? {
        let object = field.as_object().ok_or("a header that is not an object")?;
        if object.len() != 1 {
            return Err(format!("a header object with {} entries", object.len()));
        }
        for (name, field_value) in object {
            let field_value = field_value.as_str().ok_or("a header value not a string")?;
            headers.push((name.as_bytes().to_vec(), field_value.as_bytes().to_vec()));
        }
    }
    Ok(Case {
        seqno,
        header_table_size,
        wire,
        headers,
    })
}

fn parse_story(name: String, text: &str) -> Result<Story, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut cases = json["cases"]
        .as_array()
        .ok_or("no cases array")?
        .iter()
        .map(parse_case)
        .collect::<Result<Vec<_>, _>>()?;
    // The README: cases in the order they appear, which is seqno order; check it is.
    cases.sort_by_key(|case| case.seqno);
    for (i, case) in cases.iter().enumerate() {
        if case.seqno != i as u64 {
            return Err(format!("seqno {} where {i} was expected", case.seqno));
        }
    }
    if cases.is_empty() {
        return Err("no cases".into());
    }
    Ok(Story { name, cases })
}

/// The `.json` files under the corpus directory, one level of encoder directories deep.
fn story_files() -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let dirs = fs::read_dir(CORPUS).unwrap_or_else(|e| panic!("{CORPUS}: {e}"));
    for dir in dirs {
        let dir = dir.expect("corpus directory entry").path();
        if !dir.is_dir() {
            continue;
        }
        let encoder = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("an encoder directory named in UTF-8")
            .to_owned();
        for file in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = file.expect("story directory entry").path();
            if path.extension().is_some_and(|ext| ext == "json") {
                let story = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .expect("a story named in UTF-8");
                files.push((format!("{encoder}/{story}"), path));
            }
        }
    }
    files.sort();
    files
}

fn load_stories() -> Vec<Story> {
    story_files()
        .into_iter()
        .map(|(name, path)| {
            let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            parse_story(name.clone(), &text).unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect()
}

fn decoded_list(list: &DecodedHeaders) -> HeaderList {
    list.iter()
        .map(|field| (field.name.to_vec(), field.value.to_vec()))
        .collect()
}

fn show(list: &HeaderList) -> String {
    let fields: Vec<String> = list
        .iter()
        .map(|(name, value)| {
            format!(
                "{}: {}",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(value)
            )
        })
        .collect();
    fields.join("\n  ")
}

fn assert_same_list(story: &str, seqno: u64, what: &str, got: &HeaderList, want: &HeaderList) {
    assert!(
        got == want,
        "{story} case {seqno} ({what}): decoded\n  {}\nexpected\n  {}",
        show(got),
        show(want)
    );
}

/// Decodes every case of `story` in order with one decoder; returns the number of cases run.
fn decode_story(story: &Story) -> usize {
    let mut decoder = Decoder::new(story.table_size_limit(), MAX_LIST_SIZE);
    let mut list = DecodedHeaders::new();
    let mut settings_table_size = DEFAULT_TABLE_SIZE;
    let mut decoded = 0;
    for case in &story.cases {
        let Some(wire) = &case.wire else { continue };
        if let Some(size) = case.header_table_size {
            settings_table_size = size;
        }
        if let Err(error) = decoder.decode(wire, &mut list) {
            panic!("{} case {}: {error:?}", story.name, case.seqno);
        }
        assert_same_list(
            &story.name,
            case.seqno,
            "corpus wire",
            &decoded_list(&list),
            &case.headers,
        );
        // The peer's encoder keeps its table within the settings (announcing a smaller size at
        // the start of the block after a decrease), and the decoder's table mirrors it.
        assert!(
            decoder.table().size() <= settings_table_size,
            "{} case {}: the table holds {} bytes, the settings allow {settings_table_size}",
            story.name,
            case.seqno,
            decoder.table().size()
        );
        decoded += 1;
    }
    decoded
}

/// Encodes every list of `story` with pibl's encoder in one `indexing` mode, following the
/// story's table-size settings; returns the blocks, one per case.
fn encode_story(story: &Story, indexing: Indexing) -> Vec<Vec<u8>> {
    let mut encoder = Encoder::new(DEFAULT_TABLE_SIZE);
    let mut table_size = DEFAULT_TABLE_SIZE;
    let mut blocks = Vec::with_capacity(story.cases.len());
    for case in &story.cases {
        if let Some(size) = case.header_table_size {
            if size != table_size {
                encoder.set_table_size(size);
                table_size = size;
            }
        }
        let mut block = Vec::new();
        encoder.begin_block(&mut block);
        for (name, value) in &case.headers {
            encoder.encode_field(name, value, indexing, &mut block);
        }
        blocks.push(block);
    }
    blocks
}

const INDEXING_MODES: [Indexing; 3] = [Indexing::Without, Indexing::Incremental, Indexing::Never];

#[test]
fn every_corpus_case_decodes_to_its_header_list() {
    let stories = load_stories();
    let mut cases = 0;
    for story in &stories {
        cases += decode_story(story);
    }
    eprintln!("decoded {cases} cases of {} stories", stories.len());
    assert!(cases > 0, "no case had a wire to decode");
}

#[test]
fn pibl_encoder_round_trips_every_corpus_header_list() {
    let stories = load_stories();
    let mut blocks_checked = 0;
    for indexing in INDEXING_MODES {
        for story in &stories {
            let blocks = encode_story(story, indexing);
            let mut decoder = Decoder::new(story.table_size_limit(), MAX_LIST_SIZE);
            let mut list = DecodedHeaders::new();
            for (case, block) in story.cases.iter().zip(&blocks) {
                if let Err(error) = decoder.decode(block, &mut list) {
                    panic!(
                        "{} case {} ({indexing:?}): pibl's own block: {error:?}",
                        story.name, case.seqno
                    );
                }
                let what = format!("pibl encoder, {indexing:?}");
                assert_same_list(
                    &story.name,
                    case.seqno,
                    &what,
                    &decoded_list(&list),
                    &case.headers,
                );
                blocks_checked += 1;
            }
        }
    }
    assert!(blocks_checked > 0, "no header list was encoded");
}

/// Reads `[{"name", "table_size", "blocks": [hex]}]` on stdin; decodes each story's blocks with
/// one `hpack.Decoder`; prints `[[[name hex, value hex], ...] per block] per story`.
const PYTHON_DECODER: &str = r#"
import json, sys, hpack
out = []
for story in json.load(sys.stdin):
    decoder = hpack.Decoder()
    decoder.max_allowed_table_size = story["table_size"]
    decoder.max_header_list_size = 1 << 20
    lists = []
    for block in story["blocks"]:
        fields = decoder.decode(bytes.fromhex(block), raw=True)
        lists.append([[name.hex(), value.hex()] for name, value in fields])
    out.append(lists)
json.dump(out, sys.stdout)
"#;

/// A Python interpreter that has the `hpack` library, if this machine has one.
fn python_with_hpack() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import hpack"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

#[test]
fn pibl_encoder_output_decodes_with_python_hpack() {
    let Some(python) = python_with_hpack() else {
        eprintln!(
            "skipped: no python3 with the hpack library (pip install hpack) to cross-check \
             pibl's encoder against an independent decoder"
        );
        return;
    };
    let stories = load_stories();
    for indexing in INDEXING_MODES {
        let input: Vec<Value> = stories
            .iter()
            .map(|story| {
                let blocks: Vec<String> = encode_story(story, indexing)
                    .iter()
                    .map(|block| hex_encode(block))
                    .collect();
                serde_json::json!({
                    "name": story.name,
                    "table_size": story.table_size_limit(),
                    "blocks": blocks,
                })
            })
            .collect();
        let mut child = Command::new(python)
            .args(["-c", PYTHON_DECODER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python");
        let mut stdin = child.stdin.take().expect("python's stdin");
        let input = serde_json::to_vec(&input).expect("serialize the blocks");
        // Written from a thread: python's output could fill its pipe before it has read all.
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().expect("python's output");
        writer
            .join()
            .expect("the writer thread")
            .expect("write python's input");
        assert!(
            output.status.success(),
            "python hpack could not decode pibl's blocks ({indexing:?}):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let decoded: Value = serde_json::from_slice(&output.stdout).expect("python's JSON");
        let decoded = decoded.as_array().expect("a list per story");
        assert_eq!(decoded.len(), stories.len());
        for (story, lists) in stories.iter().zip(decoded) {
            let lists = lists.as_array().expect("a list per block");
            assert_eq!(lists.len(), story.cases.len(), "{}", story.name);
            for (case, list) in story.cases.iter().zip(lists) {
                let got: HeaderList = list
                    .as_array()
                    .expect("a list of fields")
                    .iter()
                    .map(|field| {
                        let hex = |i: usize| {
                            hex_decode(field[i].as_str().expect("hex")).expect("python's hex")
                        };
                        (hex(0), hex(1))
                    })
                    .collect();
                let what = format!("pibl encoder, {indexing:?}, python hpack decoder");
                assert_same_list(&story.name, case.seqno, &what, &got, &case.headers);
            }
        }
    }
}

#[test]
fn every_vendored_story_is_loaded_and_run() {
    let files = story_files();
    assert!(!files.is_empty(), "no stories under {CORPUS}");
    let stories = load_stories();
    assert_eq!(stories.len(), files.len());
    let encoders: BTreeSet<&str> = files
        .iter()
        .filter_map(|(name, _)| name.split('/').next())
        .collect();
    for encoder in ENCODERS {
        assert!(
            encoders.contains(encoder),
            "no {encoder} stories under {CORPUS}"
        );
    }
    // Every story with wires has each of its cases decoded: none skipped, none empty.
    for story in &stories {
        let with_wire = story.cases.iter().filter(|c| c.wire.is_some()).count();
        assert!(
            with_wire == story.cases.len() || with_wire == 0,
            "{}: {with_wire} of {} cases have a wire",
            story.name,
            story.cases.len()
        );
        assert_eq!(decode_story(story), with_wire, "{}", story.name);
        assert!(
            story.cases.iter().all(|c| !c.headers.is_empty()),
            "{}: a case without headers",
            story.name
        );
    }
    let total: usize = stories.iter().map(|s| s.cases.len()).sum();
    eprintln!(
        "{} stories from {} encoders, {total} cases",
        stories.len(),
        encoders.len()
    );
    assert!(Path::new(CORPUS).join("README.md").is_file());
}
