//! `kefu export FLOW.json [-o FILE]`: the flow, with the sub-flows it calls, compiled by
//! `codegen` into one Rust module, printed or written to a file.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use codegen::CodegenError;

use super::files;

/// Compiles `file` and prints the module, or writes it to `output` (a file, or a folder to
/// write `codegen::file_name` in). A flow with errors is reported like `kefu validate`
/// reports it, on stderr, and nothing is written; the exit code is then 1.
pub fn main(file: &Path, output: Option<&Path>) -> ExitCode {
    let loaded = files::load(file);
    let flow = match &loaded.flow {
        Ok(flow) => flow.clone(),
        Err(error) => {
            eprintln!("{}: error: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let given = std::slice::from_ref(&loaded);
    let neighbours = files::neighbours(given);
    let library = files::library_of(given, &neighbours);
    let code = match codegen::compile(&flow, &codegen::Options::with_library(library)) {
        Ok(code) => code,
        Err(CodegenError::Invalid {
            flow: failing,
            diagnostics,
        }) => {
            let source = files::source_of(&failing, given, &neighbours);
            for d in &diagnostics {
                let line = source.and_then(|s| {
                    let line = files::node_line(&s.text, d.node.as_deref()?)?;
                    Some(format!("{}:{line}", s.path.display()))
                });
                let at = line
                    .or_else(|| source.map(|s| s.path.display().to_string()))
                    .unwrap_or_else(|| format!("flow `{failing}`"));
                eprintln!("{at}: {d}");
            }
            let errors = match diagnostics.len() {
                1 => "1 error".to_owned(),
                n => format!("{n} errors"),
            };
            if failing == flow.id {
                eprintln!("kefu: `{failing}` not exported: it has {errors}");
            } else {
                eprintln!(
                    "kefu: `{}` not exported: it calls `{failing}`, which has {errors}",
                    flow.id
                );
            }
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("{}: error: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let written = match output {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(code.as_bytes()).and_then(|()| out.flush())
        }
        Some(output) => {
            let path = if output.is_dir() {
                output.join(codegen::file_name(&flow.id))
            } else {
                output.to_owned()
            };
            // An unchanged module is left alone, so that builds depending on it stay fresh.
            if std::fs::read(&path).is_ok_and(|old| old == code.as_bytes()) {
                Ok(())
            } else {
                write_atomically(&path, &code).map_err(|error| {
                    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
                })
            }
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        // The reader (`kefu export … | head`) has seen what it wanted.
        Err(error) if output.is_none() && error.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kefu: cannot write the module: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `contents` to a temporary file beside `path` and renames it over `path`, so that
/// `path` is never half-written: a build that reads it sees the old module or the new one.
pub fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let temp: PathBuf = folder.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(contents.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        // Nothing useful can be done if the clean-up fails too; the write error is the news.
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::write_atomically;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("kefu-export-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.rs");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m.rs"]);
        // A folder that does not exist: an error, and nothing left behind.
        assert!(write_atomically(&dir.join("missing").join("m.rs"), "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
