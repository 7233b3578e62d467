//! A migration that has landed is never edited: a database migrated by an earlier build
//! would refuse to start (sqlx compares checksums) or, worse, differ silently from a new
//! one. `migrations/landed.sha256` holds the SHA-256 of every landed migration
//! (`sha256sum` format); this test fails when one of them changes or disappears, and when
//! a migration is not yet listed (add its line in the commit that lands it).

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

#[test]
fn landed_migrations_are_never_edited() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let listed: BTreeMap<String, String> = std::fs::read_to_string(root.join("landed.sha256"))
        .unwrap()
        .lines()
        .map(|line| {
            let (hash, path) = line.split_once("  ").expect("`<sha256>  <path>` per line");
            (path.to_owned(), hash.to_owned())
        })
        .collect();
    let mut on_disk = BTreeMap::new();
    for dialect in ["sqlite", "postgres"] {
        for entry in std::fs::read_dir(root.join(dialect)).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{dialect}/{}", path.file_name().unwrap().to_string_lossy());
            on_disk.insert(name, hex::encode(Sha256::digest(std::fs::read(&path).unwrap())));
        }
    }
    for (path, hash) in &listed {
        match on_disk.get(path) {
            None => panic!("landed migration {path} was removed"),
            Some(now) => assert_eq!(
                now, hash,
                "landed migration {path} was edited; add a new one instead"
            ),
        }
    }
    let unlisted: Vec<_> = on_disk.keys().filter(|p| !listed.contains_key(*p)).collect();
    assert!(
        unlisted.is_empty(),
        "{unlisted:?} not in migrations/landed.sha256: add `sha256sum <file>` when it lands"
    );
    // Both dialects have the same migrations, by number and name.
    let names = |d: &str| -> Vec<String> {
        on_disk
            .keys()
            .filter_map(|p| p.strip_prefix(&format!("{d}/")).map(|n| n[..4].to_owned()))
            .collect()
    };
    assert_eq!(
        names("sqlite"),
        names("postgres"),
        "each migration lands in both dialects"
    );
}
