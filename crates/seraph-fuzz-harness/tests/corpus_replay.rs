#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Replays every committed fuzz corpus file through its target, on stable:
//! the regression test for everything the fuzzers found (see
//! docs/robustness.md). A target without a corpus directory, or with an
//! empty one, fails the test: the corpora are part of the repository.

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_corpus_file_replays_without_a_panic() {
    let mut total = 0;
    for (name, run) in seraph_fuzz_harness::TARGETS {
        let dir = corpus_dir(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()).unwrap_or_default())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {} is empty", dir.display());
        assert!(
            files.len() <= 200,
            "corpus {} has {} files: minimize it with `cargo fuzz cmin {name}`",
            dir.display(),
            files.len()
        );
        for file in &files {
            let data = std::fs::read(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            eprintln!("replaying {}", file.display());
            run(&data);
        }
        total += files.len();
    }
    assert!(total >= seraph_fuzz_harness::TARGETS.len());
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in seraph_fuzz_harness::TARGETS {
        let source = fuzz.join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert!(
            text.contains(&format!("seraph_fuzz_harness::{name}(")),
            "{} calls the harness",
            source.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml declares {name}"
        );
    }
    assert!(seraph_fuzz_harness::target("page_walk").is_some());
    assert!(seraph_fuzz_harness::target("nope").is_none());
}
