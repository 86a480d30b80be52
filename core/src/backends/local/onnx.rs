//! ONNX Runtime, loaded once per process from the models folder (or `ORT_DYLIB_PATH`), and
//! sessions on pinned model files.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;

use super::{Device, ModelError, Models};

/// The runtime library inside the models folder.
pub const RUNTIME_FILE: &str = "onnxruntime/libonnxruntime.so.1.31.1";
/// The ONNX Runtime release latlab is built and tested against.
pub const RUNTIME_VERSION: &str = "1.31.1";

static ENVIRONMENT: OnceLock<Mutex<Option<Environment>>> = OnceLock::new();

/// The process's ONNX Runtime environment, loading the library on first use: the file named
/// by `ORT_DYLIB_PATH` when set, else the pinned one in the models folder.
pub fn environment(models: &Models) -> Result<Environment, ModelError> {
    let slot = ENVIRONMENT.get_or_init(|| Mutex::new(None));
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    let path = match std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => models.verified("onnxruntime", RUNTIME_FILE)?,
    };
    let path = std::path::absolute(&path).unwrap_or(path);
    let builder = ort::init_from(&path).map_err(|e| load_error(&path, models, &e))?;
    let env = builder.build().map_err(|e| ModelError::Load {
        path: path.clone(),
        message: format!("creating the ONNX Runtime environment: {e}"),
    })?;
    *slot = Some(env.clone());
    Ok(env)
}

fn load_error(path: &Path, models: &Models, e: &ort::LoadDynamicError) -> ModelError {
    let message = match e {
        ort::LoadDynamicError::BadVersion { version_str, .. } => format!(
            "this is ONNX Runtime {version_str}, too old for latlab: it needs {RUNTIME_VERSION} \
             (fetch it with: {}; or point ORT_DYLIB_PATH at a libonnxruntime.so {RUNTIME_VERSION})",
            models.fetch_command("onnxruntime")
        ),
        other => format!(
            "{other} (fetch the runtime with: {})",
            models.fetch_command("onnxruntime")
        ),
    };
    ModelError::Load {
        path: path.to_path_buf(),
        message,
    }
}

/// What a session runs on, as decided (CUDA was asked for but is not available: a note says
/// why, and it runs on the CPU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Where it runs.
    pub device: Device,
    /// Why it does not run where it was asked to, when it doesn't.
    pub note: Option<String>,
}

/// A session on the pinned file `file` of `model`, with `threads` intra-op threads.
pub fn session(
    models: &Models,
    model: &str,
    file: &str,
    threads: usize,
    device: Device,
) -> Result<(Arc<Mutex<Session>>, Placement), ModelError> {
    let path = models.verified(model, file)?;
    let env = environment(models)?;
    let fail = |what: &str, e: &dyn std::fmt::Display| ModelError::Load {
        path: path.clone(),
        message: format!("{what}: {e}"),
    };
    let mut builder = Session::builder(&env).map_err(|e| fail("session builder", &e))?;
    builder = builder
        .with_intra_threads(threads.max(1))
        .map_err(|e| fail("setting threads", &e))?
        .with_inter_threads(1)
        .map_err(|e| fail("setting threads", &e))?;
    let placement = match device {
        Device::Cpu => Placement {
            device: Device::Cpu,
            note: None,
        },
        Device::Cuda => cuda(&mut builder),
    };
    let session = builder
        .commit_from_file(&path)
        .map_err(|e| fail("loading the model", &e))?;
    Ok((Arc::new(Mutex::new(session)), placement))
}

#[cfg(feature = "cuda-onnx")]
fn cuda(builder: &mut ort::session::builder::SessionBuilder) -> Placement {
    use ort::ep::ExecutionProvider;
    let ep = ort::ep::CUDA::default();
    match ep.is_available() {
        Ok(true) => match ep.register(builder) {
            Ok(()) => Placement {
                device: Device::Cuda,
                note: None,
            },
            Err(e) => Placement {
                device: Device::Cpu,
                note: Some(format!("CUDA execution provider failed ({e}); running on the CPU")),
            },
        },
        _ => Placement {
            device: Device::Cpu,
            note: Some(
                "device = \"cuda\" but this ONNX Runtime has no usable CUDA provider; running on the CPU"
                    .into(),
            ),
        },
    }
}

#[cfg(not(feature = "cuda-onnx"))]
fn cuda(_builder: &mut ort::session::builder::SessionBuilder) -> Placement {
    Placement {
        device: Device::Cpu,
        note: Some(
            "device = \"cuda\" but latlab was built without the `cuda-onnx` feature; running on the CPU"
                .into(),
        ),
    }
}
