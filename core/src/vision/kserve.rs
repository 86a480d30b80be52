//! placeholder: the KServe v2 client lands from the emu-kserve branch.
#![allow(missing_docs, dead_code)]
use super::yolo::YoloSpec;
use super::{Detected, Detector, Frame};
use crate::backends::Timeouts;
use crate::timing::{ErrorKind, StageError};
pub struct KServeDetector;
impl KServeDetector {
    pub async fn connect(
        _base_url: &str,
        _model: &str,
        _spec: YoloSpec,
        _binary: bool,
        _timeouts: &Timeouts,
    ) -> Result<KServeDetector, StageError> {
        Err(StageError::new(ErrorKind::Connect, "not yet"))
    }
}
#[async_trait::async_trait]
impl Detector for KServeDetector {
    fn describe(&self) -> String {
        String::new()
    }
    async fn detect(&self, _frame: &Frame) -> Result<Detected, StageError> {
        Err(StageError::new(ErrorKind::Connect, "not yet"))
    }
}
