//! `kefu validate FILE…`: every diagnostic of every file, for people or (`--json`) for tools.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use flows::{Diagnostic, Severity};
use serde::Serialize;

use super::files::{self, Loaded};

#[derive(Serialize)]
struct FileReport {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    load_error: Option<String>,
    diagnostics: Vec<Diagnostic>,
}

/// Validates `paths`; exit code 1 when any file has errors or cannot be read.
pub fn main(paths: &[PathBuf], json: bool) -> ExitCode {
    let loaded: Vec<Loaded> = paths.iter().map(|p| files::load(p)).collect();
    let reports = check(&loaded);
    let mut out = std::io::stdout().lock();
    let written = if json {
        write_json(&mut out, &reports)
    } else {
        write_human(&mut out, &reports, &loaded)
    };
    if let Err(error) = written {
        eprintln!("kefu: cannot write the report: {error}");
        return ExitCode::FAILURE;
    }
    let failed = reports.iter().any(|r| {
        r.load_error.is_some() || r.diagnostics.iter().any(|d| d.severity == Severity::Error)
    });
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn check(loaded: &[Loaded]) -> Vec<FileReport> {
    let library = files::library_for(loaded);
    loaded
        .iter()
        .map(|l| match &l.flow {
            Ok(flow) => FileReport {
                file: l.path.display().to_string(),
                load_error: None,
                diagnostics: flows::validate(flow, &library),
            },
            Err(error) => FileReport {
                file: l.path.display().to_string(),
                load_error: Some(error.clone()),
                diagnostics: Vec::new(),
            },
        })
        .collect()
}

fn write_json(out: &mut impl Write, reports: &[FileReport]) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, reports)?;
    writeln!(out)
}

fn write_human(
    out: &mut impl Write,
    reports: &[FileReport],
    loaded: &[Loaded],
) -> std::io::Result<()> {
    let (mut errors, mut warnings) = (0, 0);
    for (report, l) in reports.iter().zip(loaded) {
        if let Some(error) = &report.load_error {
            errors += 1;
            writeln!(out, "{}: error: {error}", report.file)?;
            continue;
        }
        for d in &report.diagnostics {
            match d.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            let line = d.node.as_deref().and_then(|n| files::node_line(&l.text, n));
            match line {
                Some(line) => writeln!(out, "{}:{line}: {d}", report.file)?,
                None => writeln!(out, "{}: {d}", report.file)?,
            }
        }
    }
    let files = reports.len();
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    writeln!(
        out,
        "{} checked: {}, {}",
        plural(files, "file"),
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}
