//! Unit tests of one entry on disk: the sidecar, publishing, damaged files, the stamp.

use super::*;
use crate::cache::PendingEntry;

fn meta() -> EntryMeta {
    EntryMeta {
        primary: "GET http://a:80/x".into(),
        vary: vec![("accept".into(), "text/html".into())],
        status: 200,
        headers: b"Content-Type: text/plain\r\nETag: \"1\"\r\n".to_vec(),
        stored_at: 1000,
        initial_age: 2,
        lifetime: 60,
        always_revalidate: false,
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pibl-entry-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn sidecar_round_trips_and_detects_corruption() {
    let m = meta();
    let bytes = m.encode(5, 7, None);
    assert_eq!(EntryMeta::decode(&bytes), Some((m.clone(), 5, 7, None)));
    for i in [0, 9, 20, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[i] ^= 1;
        assert_eq!(EntryMeta::decode(&bad), None, "flip at {i}");
    }
    assert_eq!(EntryMeta::decode(&bytes[..bytes.len() - 3]), None);
    assert_eq!(m.header("etag"), Some("\"1\""));
}

#[test]
fn published_entry_loads_and_damaged_ones_do_not() {
    let dir = tmpdir("pub");
    let mut p = PendingEntry::create(&dir, meta(), true, 1 << 20).unwrap();
    p.append(b"5\r\nhel");
    p.append(b"lo\r\n0\r\n\r\n");
    let e = p.publish().unwrap();
    assert_eq!(e.body(), b"hello");
    let loaded = CacheEntry::load(&e.path).unwrap();
    assert_eq!(loaded.body(), b"hello");
    assert_eq!(loaded.meta, meta());
    assert!(loaded.is_fresh(1000) && !loaded.is_fresh(1058));

    // Truncated body: refused.
    fs::write(e.path.with_extension("body"), b"hell").unwrap();
    assert_eq!(
        CacheEntry::load(&e.path).unwrap_err(),
        "body length mismatch"
    );
    // Same length, other bytes: refused.
    fs::write(e.path.with_extension("body"), b"jello").unwrap();
    assert_eq!(
        CacheEntry::load(&e.path).unwrap_err(),
        "body checksum mismatch"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn targeted_fields_go_last_and_clients_get_the_head_without_them() {
    let mut h =
        b"Pibl-Cache-Control: max-age=1\r\nA: 1\r\nCDN-Cache-Control: max-age=2\r\nB: 2\r\n"
            .to_vec();
    let (client_end, cdn_end) = put_targeted_last(&mut h);
    assert_eq!(
        h,
        b"A: 1\r\nB: 2\r\nCDN-Cache-Control: max-age=2\r\nPibl-Cache-Control: max-age=1\r\n"
    );
    assert_eq!(&h[..client_end], b"A: 1\r\nB: 2\r\n");
    assert_eq!(&h[client_end..cdn_end], b"CDN-Cache-Control: max-age=2\r\n");
    let mut plain = b"A: 1\r\n".to_vec();
    assert_eq!(put_targeted_last(&mut plain), (6, 6));
}

#[test]
fn a_changed_body_file_is_noticed() {
    let dir = tmpdir("stamp");
    let mut p = PendingEntry::create(&dir, meta(), false, 1 << 20).unwrap();
    p.append(b"hello");
    let e = p.publish().unwrap();
    assert!(e.file_unchanged());
    // File times move in clock ticks on kernels without multigrain timestamps.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(e.path.with_extension("body"), b"jello").unwrap();
    assert!(!e.file_unchanged());
    fs::remove_file(e.path.with_extension("body")).unwrap();
    assert!(!e.file_unchanged());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn abandoned_entry_leaves_no_file() {
    let dir = tmpdir("abandon");
    let mut p = PendingEntry::create(&dir, meta(), false, 4).unwrap();
    p.append(b"too long");
    assert!(p.is_failed());
    drop(p);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir_all(&dir).unwrap();
}
