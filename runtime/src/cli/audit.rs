//! `kefu audit verify`: walks the audit trail's hash chain across its segments and names the
//! first line that does not fit (an edit, a deletion, a gap, a missing segment).

use std::path::Path;
use std::process::ExitCode;

/// Verifies the segments in `DATA_DIR/audit/`: exit 0 with the count when the chain holds, 1
/// with the segment and line of the first break when it does not, 2 when it cannot be read.
pub fn verify(data_dir: &Path) -> ExitCode {
    let dir = crate::audit::log::audit_dir(data_dir);
    match crate::audit::verify(&dir) {
        Ok(Ok(verified)) => {
            println!(
                "OK: {} audit records, chain intact ({} segments in {})",
                verified.records,
                verified.segments,
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Ok(Err(broken)) => {
            println!(
                "BROKEN: {} line {}: {}",
                dir.join(&broken.segment).display(),
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
