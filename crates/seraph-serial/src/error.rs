//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// What can go wrong setting up the serial port.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The output file could not be created or truncated.
    #[error("cannot open serial output file `{path}`: {source}")]
    OpenOutput {
        /// The file asked for.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}
