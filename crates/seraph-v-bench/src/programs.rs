//! The programs the benchmark spawns (`seraph-v`, `kvm-floor`): where they
//! are and how to build them. `cargo run -p seraph-v-bench` builds only the
//! bench binary itself, so on a fresh clone the other two do not exist yet;
//! the bench builds them first, with the same profile and target directory
//! as itself, and stops with the exact command when it cannot.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::BenchError;

/// The spawned binaries, next to the bench's own executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programs {
    /// The directory holding the bench binary (e.g. `target/release`).
    pub bin_dir: PathBuf,
    /// `seraph-v` (package seraph-v-cli).
    pub seraph_v: PathBuf,
    /// `kvm-floor` (this package).
    pub kvm_floor: PathBuf,
}

impl Programs {
    /// The programs next to `bench_exe`.
    pub fn beside(bench_exe: &Path) -> Result<Self, BenchError> {
        let bin_dir = bench_exe
            .parent()
            .ok_or_else(|| BenchError::Setup("the bench binary has no directory".into()))?
            .to_owned();
        Ok(Self {
            seraph_v: bin_dir.join("seraph-v"),
            kvm_floor: bin_dir.join("kvm-floor"),
            bin_dir,
        })
    }

    /// The programs next to the running bench.
    pub fn current() -> Result<Self, BenchError> {
        let exe = std::env::current_exe().map_err(BenchError::io("current_exe"))?;
        Self::beside(&exe)
    }

    /// The cargo profile the bench was built with, from its directory name
    /// (`release`, `debug`, or a custom profile's name).
    pub fn profile(&self) -> String {
        self.bin_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "release".into())
    }

    /// The cargo commands (arguments after `cargo`) that build both
    /// programs with the bench's profile. Two commands, one per package, so
    /// each builds with the features `cargo build -p <package>` would use
    /// and nothing is rebuilt twice.
    pub fn build_commands(&self) -> [Vec<String>; 2] {
        let profile = match self.profile().as_str() {
            "release" => vec!["--release".to_owned()],
            "debug" => Vec::new(),
            other => vec!["--profile".to_owned(), other.to_owned()],
        };
        let command = |package: &str, bin: &str| {
            let mut args = vec!["build".to_owned(), "--quiet".to_owned()];
            args.extend(profile.iter().cloned());
            args.extend(["-p", package, "--bin", bin].map(str::to_owned));
            args
        };
        [
            command("seraph-v-cli", "seraph-v"),
            command("seraph-v-bench", "kvm-floor"),
        ]
    }

    /// The programs that are not there.
    pub fn missing(&self) -> Vec<&Path> {
        [self.seraph_v.as_path(), self.kvm_floor.as_path()]
            .into_iter()
            .filter(|p| !p.is_file())
            .collect()
    }

    /// Builds both programs with `cargo` (the `CARGO` that ran the bench;
    /// `None` when the bench was not started by cargo, then nothing is
    /// built), then checks that both exist, or says how to get them.
    pub fn ensure_built(&self, cargo: Option<OsString>) -> Result<(), BenchError> {
        if let Some(cargo) = cargo {
            for args in self.build_commands() {
                eprintln!("seraph-v-bench: cargo {}", args.join(" "));
                let status = Command::new(&cargo).args(&args).status().map_err(|e| {
                    BenchError::Setup(format!("cannot run {}: {e}", Path::new(&cargo).display()))
                })?;
                if !status.success() {
                    return Err(BenchError::Setup(format!(
                        "`cargo {}` failed ({status})",
                        args.join(" ")
                    )));
                }
            }
        }
        self.check()
    }

    /// Ok if both programs exist; else an error naming the build commands.
    pub fn check(&self) -> Result<(), BenchError> {
        let missing = self.missing();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
        let commands: Vec<String> = self
            .build_commands()
            .iter()
            .map(|a| format!("cargo {}", a.join(" ")))
            .collect();
        Err(BenchError::Setup(format!(
            "{} missing: build with `{}` (with the same CARGO_TARGET_DIR as the bench)",
            names.join(" and "),
            commands.join(" && ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_commands_follow_the_bench_profile() -> Result<(), BenchError> {
        let release = Programs::beside(Path::new("/t/release/seraph-v-bench"))?;
        assert_eq!(release.seraph_v, Path::new("/t/release/seraph-v"));
        assert_eq!(release.kvm_floor, Path::new("/t/release/kvm-floor"));
        let [cli, floor] = release.build_commands();
        assert_eq!(
            cli.join(" "),
            "build --quiet --release -p seraph-v-cli --bin seraph-v"
        );
        assert_eq!(
            floor.join(" "),
            "build --quiet --release -p seraph-v-bench --bin kvm-floor"
        );
        let debug = Programs::beside(Path::new("/t/debug/seraph-v-bench"))?;
        assert_eq!(
            debug.build_commands()[0].join(" "),
            "build --quiet -p seraph-v-cli --bin seraph-v"
        );
        let custom = Programs::beside(Path::new("/t/bench-prof/seraph-v-bench"))?;
        assert_eq!(
            custom.build_commands()[1].join(" "),
            "build --quiet --profile bench-prof -p seraph-v-bench --bin kvm-floor"
        );
        assert!(Programs::beside(Path::new("/")).is_err());
        Ok(())
    }

    #[test]
    fn missing_programs_name_the_command() -> Result<(), BenchError> {
        let root = std::env::temp_dir().join(format!("seraph-v-bench-prog-{}", std::process::id()));
        let dir = root.join("debug");
        std::fs::create_dir_all(&dir).map_err(BenchError::io(&dir))?;
        let programs = Programs::beside(&dir.join("seraph-v-bench"))?;
        let message = programs.ensure_built(None).err().map(|e| e.to_string());
        let message = message.unwrap_or_default();
        assert!(message.contains("kvm-floor"), "{message}");
        assert!(
            message.contains("cargo build --quiet -p seraph-v-cli --bin seraph-v"),
            "{message}"
        );
        std::fs::write(&programs.seraph_v, b"").map_err(BenchError::io(&dir))?;
        std::fs::write(&programs.kvm_floor, b"").map_err(BenchError::io(&dir))?;
        assert!(programs.check().is_ok());
        std::fs::remove_dir_all(&root).map_err(BenchError::io(&root))?;
        Ok(())
    }
}
