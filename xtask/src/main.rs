//! Automation for the workspace: `cargo run -p xtask -- bundle [--check]` builds the browser
//! app (`designer`) into `runtime/assets/app/`, or checks that the committed bundle is fresh.
//!
//! The bundle is committed so that the server builds and runs without any wasm tooling; its
//! `STAMP` is a hash of everything the bundle is built from, which lets CI notice a stale
//! bundle without building it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// Where the bundle goes, relative to the workspace root.
const OUT_DIR: &str = "runtime/assets/app";
/// The cargo profile of the bundle (defined in the root `Cargo.toml`).
const PROFILE: &str = "wasm-release";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
const STALE: &str =
    "the browser bundle is stale: run `cargo run -p xtask -- bundle` and commit runtime/assets/app";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["bundle"] => bundle(),
        ["bundle", "--check"] => check(),
        _ => {
            eprintln!("usage: cargo run -p xtask -- bundle [--check]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `bundle --check`: exits 1 when the committed `STAMP` differs from the sources' hash.
fn check() -> anyhow::Result<ExitCode> {
    let root = root();
    let expected = stamp(&root)?;
    let stamp_path = root.join(OUT_DIR).join("STAMP");
    let found = fs::read_to_string(&stamp_path).unwrap_or_default();
    if found.trim() == expected {
        println!("the browser bundle is up to date ({expected})");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{STALE}");
        Ok(ExitCode::FAILURE)
    }
}

/// `bundle`: cargo build for wasm32, wasm-bindgen, copy into `runtime/assets/app/`, stamp.
fn bundle() -> anyhow::Result<ExitCode> {
    let root = root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "-p", "designer", "--lib", "--target", WASM_TARGET])
        .args(["--profile", PROFILE])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the designer for {WASM_TARGET} failed");
    }

    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let wasm = target_dir
        .join(WASM_TARGET)
        .join(PROFILE)
        .join("designer.wasm");
    check_wasm_bindgen_version(&root)?;
    let staging = target_dir.join("kefu-app-bundle");
    let _ = fs::remove_dir_all(&staging);
    let status = Command::new("wasm-bindgen")
        .arg(&wasm)
        .arg("--out-dir")
        .arg(&staging)
        .args(["--out-name", "kefu_app", "--target", "web"])
        .args(["--no-typescript", "--remove-name-section"])
        .status()
        .context("running wasm-bindgen")?;
    if !status.success() {
        bail!("wasm-bindgen failed");
    }

    let out = root.join(OUT_DIR);
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for file in ["kefu_app.js", "kefu_app_bg.wasm"] {
        fs::copy(staging.join(file), out.join(file)).with_context(|| format!("copying {file}"))?;
    }
    let stamp = stamp(&root)?;
    fs::write(out.join("STAMP"), format!("{stamp}\n")).context("writing STAMP")?;

    let wasm_out = out.join("kefu_app_bg.wasm");
    let raw = fs::metadata(&wasm_out)?.len();
    match gzipped_size(&wasm_out) {
        Some(gz) => println!("wrote {OUT_DIR}: kefu_app_bg.wasm {raw} bytes ({gz} gzipped)"),
        None => println!("wrote {OUT_DIR}: kefu_app_bg.wasm {raw} bytes"),
    }
    Ok(ExitCode::SUCCESS)
}

/// wasm-bindgen's CLI must be exactly the version of the `wasm-bindgen` crate in `Cargo.lock`.
fn check_wasm_bindgen_version(root: &Path) -> anyhow::Result<()> {
    let lock = fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let wanted = parse_lock(&lock)
        .into_iter()
        .find(|package| package.name == "wasm-bindgen")
        .map(|package| package.version)
        .context("Cargo.lock has no wasm-bindgen")?;
    let install = format!("cargo install wasm-bindgen-cli --version {wanted}");
    let output = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .with_context(|| format!("wasm-bindgen is not installed: {install}"))?;
    let found = String::from_utf8_lossy(&output.stdout);
    if !found.split_whitespace().any(|word| word == wanted) {
        bail!(
            "wasm-bindgen is `{}`, Cargo.lock needs {wanted}: {install}",
            found.trim()
        );
    }
    Ok(())
}

/// The gzipped size of `path` (as served with compression), when a `gzip` command exists.
fn gzipped_size(path: &Path) -> Option<usize> {
    let output = Command::new("gzip").arg("-9c").arg(path).output().ok()?;
    output.status.success().then_some(output.stdout.len())
}

/// The hash of everything the bundle is built from: the `designer` and `flows` sources, and
/// the `Cargo.lock` entries of the designer's dependencies (so that an unrelated server
/// dependency does not make the bundle stale).
fn stamp(root: &Path) -> anyhow::Result<String> {
    let mut files = Vec::new();
    collect_files(root, &root.join("designer"), &mut files)?;
    collect_files(root, &root.join("flows/src"), &mut files)?;
    files.push(PathBuf::from("flows/Cargo.toml"));
    files.sort();

    let mut hasher = Sha256::new();
    for file in &files {
        let contents =
            fs::read(root.join(file)).with_context(|| format!("reading {}", file.display()))?;
        // Portable across platforms: forward slashes, lengths as separators.
        let name = file.to_string_lossy().replace('\\', "/");
        hasher.update(format!("{} {}\n", name, contents.len()).as_bytes());
        hasher.update(&contents);
    }
    let lock = fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    for entry in lock_closure(&lock, "designer") {
        hasher.update(entry.as_bytes());
    }
    let mut hex = String::new();
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

/// Every file under `dir`, as paths relative to `root`.
fn collect_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, files)?;
        } else {
            files.push(path.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

/// One `[[package]]` entry of `Cargo.lock`.
struct LockPackage {
    name: String,
    version: String,
    /// `name` or `name version` (or `name version (source)`), as the lock file writes them.
    dependencies: Vec<String>,
    /// The entry's text, which is what gets hashed.
    text: String,
}

fn parse_lock(lock: &str) -> Vec<LockPackage> {
    let unquote = |value: &str| value.trim().trim_matches('"').to_owned();
    lock.split("[[package]]")
        .skip(1)
        .map(|text| {
            let mut package = LockPackage {
                name: String::new(),
                version: String::new(),
                dependencies: Vec::new(),
                text: text.trim().to_owned(),
            };
            let mut in_dependencies = false;
            for line in text.lines() {
                let line = line.trim();
                if in_dependencies {
                    if line == "]" {
                        in_dependencies = false;
                    } else {
                        package
                            .dependencies
                            .push(unquote(line.trim_end_matches(',')));
                    }
                } else if let Some(value) = line.strip_prefix("name = ") {
                    package.name = unquote(value);
                } else if let Some(value) = line.strip_prefix("version = ") {
                    package.version = unquote(value);
                } else if line.starts_with("dependencies = [") {
                    in_dependencies = true;
                }
            }
            package
        })
        .collect()
}

/// The texts of the lock entries `root` depends on (itself included), sorted.
fn lock_closure(lock: &str, root: &str) -> BTreeSet<String> {
    let packages = parse_lock(lock);
    let mut by_name: BTreeMap<&str, Vec<&LockPackage>> = BTreeMap::new();
    for package in &packages {
        by_name.entry(&package.name).or_default().push(package);
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dependency) = todo.pop() {
        let mut words = dependency.split_whitespace();
        let name = words.next().unwrap_or_default();
        let version = words.next();
        let Some(candidates) = by_name.get(name) else {
            continue;
        };
        for package in candidates {
            if version.is_some_and(|version| version != package.version) {
                continue;
            }
            if seen.insert(package.text.clone()) {
                todo.extend(package.dependencies.iter().cloned());
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "dep 1.0.0",
 "shared",
]

[[package]]
name = "dep"
version = "1.0.0"

[[package]]
name = "dep"
version = "2.0.0"

[[package]]
name = "shared"
version = "0.3.0"

[[package]]
name = "server-only"
version = "9.0.0"
dependencies = [
 "dep 2.0.0",
]
"#;

    #[test]
    fn the_stamp_covers_only_the_apps_dependencies() {
        let closure = lock_closure(LOCK, "app");
        let versions: Vec<&str> = closure
            .iter()
            .filter_map(|text| text.lines().nth(1))
            .collect();
        assert_eq!(
            versions,
            [
                "version = \"0.1.0\"",
                "version = \"1.0.0\"",
                "version = \"0.3.0\""
            ]
        );
        // A server-only dependency changing does not make the bundle stale.
        let changed = LOCK.replace("version = \"9.0.0\"", "version = \"9.1.0\"");
        assert_eq!(lock_closure(&changed, "app"), closure);
        let changed = LOCK.replace("version = \"0.3.0\"", "version = \"0.4.0\"");
        assert_ne!(lock_closure(&changed, "app"), closure);
    }
}
