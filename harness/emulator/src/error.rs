//! What can go wrong when configuring or starting the emulator. Nothing that happens to a
//! request is an error here: faults are the emulator's product, and are counted in stats.

use std::path::PathBuf;

/// An error starting the emulator or reading its configuration.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// A configuration value is invalid.
    #[error("emulator config: {key}: {message}")]
    Config {
        /// The dotted key, such as `llm.faults` or `tts.ttfb.sigma`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration file could not be read.
    #[error("cannot read emulator config {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configuration file is not valid TOML or has the wrong shape or values.
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What the parser or validation said (with line and column where known).
        message: String,
    },
    /// A service's listener could not be bound.
    #[error("cannot listen for the emulated {service} service on {addr}: {source}")]
    Bind {
        /// `stt`, `llm`, `tts` or `detector`.
        service: &'static str,
        /// The address it tried.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}
