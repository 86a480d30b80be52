//! The models folder: where local backends find their files, and the check that a file is
//! the one `models/lock.toml` pins before anything loads it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Environment variable naming the models folder (default: the nearest `models/` holding a
/// `lock.toml`, from the current directory up).
pub const MODELS_ENV: &str = "LATLAB_MODELS";

/// A model file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file is not there.
    #[error("model file {path} is missing (model `{model}`); fetch it with: {fetch}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The model's name in `lock.toml`.
        model: String,
        /// The command that fetches it.
        fetch: String,
    },
    /// The file is there but is not the pinned one (truncated, corrupted, replaced).
    #[error(
        "model file {path} is corrupt or not the pinned one (model `{model}`: SHA-256 {actual}, expected {expected}); fetch it again with: {fetch}"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The model's name in `lock.toml`.
        model: String,
        /// Its pinned SHA-256.
        expected: String,
        /// What it hashes to.
        actual: String,
        /// The command that fetches it.
        fetch: String,
    },
    /// `lock.toml` is missing, unreadable or does not know the model.
    #[error("{0}")]
    Lock(String),
    /// The runtime or model library refused the file.
    #[error("loading {path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What the library said.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
struct Lock {
    model: Vec<LockedModel>,
}

#[derive(Debug, Deserialize)]
struct LockedModel {
    name: String,
    files: BTreeMap<String, String>,
}

/// The models folder and its lock file.
#[derive(Debug, Clone)]
pub struct Models {
    root: PathBuf,
}

impl Models {
    /// The folder named by `LATLAB_MODELS`, else the nearest `models/` with a `lock.toml` from
    /// the current directory up, else from the running program's folder up (a `latlab` built
    /// in `target/release/` finds its checkout's models from anywhere), else `./models`.
    pub fn locate() -> Models {
        if let Some(dir) = std::env::var_os(MODELS_ENV).filter(|v| !v.is_empty()) {
            return Models::at(dir);
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let exe = std::env::current_exe().ok();
        let found = |start: &Path| {
            start
                .ancestors()
                .map(|d| d.join("models"))
                .find(|d| d.join("lock.toml").is_file())
        };
        found(&cwd)
            .or_else(|| exe.as_deref().and_then(found))
            .map_or_else(|| Models::at(cwd.join("models")), Models::at)
    }

    /// The models folder at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Models {
        Models { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The command that fetches `model` into this folder.
    pub fn fetch_command(&self, model: &str) -> String {
        format!(
            "python3 {} {model}",
            self.root.join("fetch.py").to_string_lossy()
        )
    }

    /// The path of `file` (relative to the folder) of `model`, after checking that it exists
    /// and has the SHA-256 `lock.toml` pins for it.
    pub fn verified(&self, model: &str, file: &str) -> Result<PathBuf, ModelError> {
        let lock_path = self.root.join("lock.toml");
        let text = std::fs::read_to_string(&lock_path).map_err(|e| {
            ModelError::Lock(format!(
                "cannot read {} ({e}); set {MODELS_ENV} to latlab's models folder",
                lock_path.display()
            ))
        })?;
        let lock: Lock = toml::from_str(&text)
            .map_err(|e| ModelError::Lock(format!("{}: {e}", lock_path.display())))?;
        let entry = lock.model.iter().find(|m| m.name == model).ok_or_else(|| {
            ModelError::Lock(format!("{} has no model `{model}`", lock_path.display()))
        })?;
        let expected = entry.files.get(file).ok_or_else(|| {
            ModelError::Lock(format!(
                "{}: model `{model}` has no file {file}",
                lock_path.display()
            ))
        })?;
        let path = self.root.join(file);
        if !path.is_file() {
            return Err(ModelError::Missing {
                path,
                model: model.to_string(),
                fetch: self.fetch_command(model),
            });
        }
        let actual = sha256_file(&path).map_err(|e| ModelError::Load {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if expected != "PENDING" && !actual.eq_ignore_ascii_case(expected) {
            return Err(ModelError::Corrupt {
                path,
                model: model.to_string(),
                expected: expected.clone(),
                actual,
                fetch: self.fetch_command(model),
            });
        }
        Ok(path)
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[[model]]
name = "tiny"
files = { "t/model.bin" = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" }
"#;

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lock.toml"), LOCK).unwrap();
        std::fs::create_dir(dir.path().join("t")).unwrap();
        dir
    }

    #[test]
    fn a_missing_file_names_itself_and_the_fetch_command() {
        let dir = folder();
        let err = Models::at(dir.path())
            .verified("tiny", "t/model.bin")
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ModelError::Missing { .. }), "{text}");
        assert!(
            text.contains("t/model.bin") && text.contains("fetch.py tiny"),
            "{text}"
        );
    }

    #[test]
    fn a_corrupt_file_is_refused_and_a_good_one_passes() {
        let dir = folder();
        let models = Models::at(dir.path());
        std::fs::write(dir.path().join("t/model.bin"), b"fo").unwrap();
        let err = models.verified("tiny", "t/model.bin").unwrap_err();
        assert!(matches!(err, ModelError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("fetch.py tiny"), "{err}");
        // sha256("foo") is the pinned value.
        std::fs::write(dir.path().join("t/model.bin"), b"foo").unwrap();
        assert_eq!(
            models.verified("tiny", "t/model.bin").unwrap(),
            dir.path().join("t/model.bin")
        );
    }

    #[test]
    fn an_unknown_model_is_a_lock_error() {
        let dir = folder();
        let err = Models::at(dir.path()).verified("huge", "x").unwrap_err();
        assert!(matches!(err, ModelError::Lock(_)), "{err}");
    }
}
