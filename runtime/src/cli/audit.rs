//! `kefu audit verify`: walks the audit trail's hash chain and names the first line that does
//! not fit (an edit, a deletion, a gap).

use std::path::Path;
use std::process::ExitCode;

/// Verifies `DATA_DIR/audit/audit.log`: exit 0 with the count when the chain holds, 1 with the
/// first broken line when it does not, 2 when the file cannot be read.
pub fn verify(data_dir: &Path) -> ExitCode {
    let path = crate::audit::log::log_path(data_dir);
    match crate::audit::verify(&path) {
        Ok(Ok(count)) => {
            println!(
                "OK: {count} audit records, chain intact ({})",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Ok(Err(broken)) => {
            println!(
                "BROKEN: {} line {}: {}",
                path.display(),
                broken.line,
                broken.problem
            );
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("kefu audit verify: {error}");
            ExitCode::from(2)
        }
    }
}
