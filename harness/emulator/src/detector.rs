//! The emulated object detector: the KServe v2 / Triton HTTP inference protocol ("Open
//! Inference Protocol" REST, with Triton's binary tensor extension) serving any model name as
//! a YOLOv8 network — input `images` FP32 `[1, 3, H, W]`, output `output0` FP32
//! `[1, 4 + classes, anchors]`.
//!
//! The answer is all zeros except a few seeded random boxes, after a seeded delay; what is
//! sent and when is planned up front by the pure [`plan_inference`]. The output has the real
//! model's size (8400 anchors at 640×640: 2.8 MB of FP32 with 80 classes), so the transfer
//! and decoding costs latlab measures are those of a real server. This module never runs a
//! model.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use rand::RngExt;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use tokio::time::Instant;

use crate::Shutdown;
use crate::config::DetectorConfig;
use crate::faults::Fault;
use crate::seed::{self, Stream};
use crate::stats::ServiceCounters;
use crate::stream::{Ending, Timed, timed_body};
use crate::trace::Mark;

/// The service name used in seeding.
pub const SERVICE: &str = "detector";

/// The model's one input.
pub const INPUT: &str = "images";

/// The model's one output.
pub const OUTPUT: &str = "output0";

/// The header giving the length of the JSON part of a body that carries binary tensors.
pub const INFERENCE_HEADER: &str = "inference-header-content-length";

/// The emulator's own response header: the delay it planned for this answer, in ms (for
/// tests and debugging; real servers do not send it).
pub const PLANNED_HEADER: &str = "x-latlab-infer-ms";

/// Largest request body: a 64 MiB body holds a binary FP32 image of about 2360×2360.
/// Larger ones get HTTP 413.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Largest output tensor, bytes of FP32: the output is made in memory per request.
pub const MAX_OUTPUT_BYTES: usize = 256 << 20;

/// Largest input height or width.
const MAX_SIDE: usize = 16_384;

/// Values of the input sampled into the request's seed: enough to tell frames apart, few
/// enough that hashing costs microseconds whatever the image size.
const DIGEST_SAMPLES: usize = 1024;

/// YOLOv8's anchors for an `h × w` input: one per cell of its stride-8, -16 and -32 grids
/// (8400 at 640×640).
pub fn anchors(h: usize, w: usize) -> usize {
    [8, 16, 32].iter().map(|s| (h / s) * (w / s)).sum()
}

/// The request part of the seed key: the session, the model, the request's `id`, the input
/// shape and a strided sample of the input's values (so different frames draw differently).
pub fn request_key(
    session: &str,
    model: &str,
    id: Option<&str>,
    shape: &[usize],
    data: &[f32],
) -> Vec<u8> {
    let step = data.len().div_ceil(DIGEST_SAMPLES).max(1);
    let mut key = Vec::with_capacity(64 + session.len() + model.len() + 4 * DIGEST_SAMPLES);
    for part in [session, model, id.unwrap_or("")] {
        key.extend_from_slice(part.as_bytes());
        key.push(b'\n');
    }
    for d in shape {
        key.extend_from_slice(&(*d as u64).to_le_bytes());
    }
    key.extend_from_slice(&(data.len() as u64).to_le_bytes());
    for v in data.iter().step_by(step) {
        key.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    key
}

/// One box the emulated model "detects", in input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedBox {
    /// The anchor (column of the output) that carries it.
    pub anchor: usize,
    /// Centre x.
    pub cx: f32,
    /// Centre y.
    pub cy: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
    /// Class index.
    pub class: usize,
    /// Class score, 0.3–0.95.
    pub score: f32,
}

/// Everything about one inference decided before the response is built.
#[derive(Debug, Clone, PartialEq)]
pub struct InferencePlan {
    /// From the request's arrival (received whole) to the response.
    pub delay: Duration,
    /// The fault drawn for this request.
    pub fault: Fault,
    /// Anchors of the output.
    pub anchors: usize,
    /// Output channels: 4 + classes.
    pub channels: usize,
    /// The boxes the output carries.
    pub boxes: Vec<PlannedBox>,
}

impl InferencePlan {
    /// The output tensor, `[1, channels, anchors]` row-major: zeros except the planned boxes.
    pub fn output(&self) -> Vec<f32> {
        let n = self.anchors;
        let mut out = vec![0.0f32; self.channels * n];
        for b in &self.boxes {
            out[b.anchor] = b.cx;
            out[n + b.anchor] = b.cy;
            out[2 * n + b.anchor] = b.w;
            out[3 * n + b.anchor] = b.h;
            out[(4 + b.class) * n + b.anchor] = b.score;
        }
        out
    }
}

/// Plans the answer to a request with seed key `key` (see [`request_key`]) for an
/// `input_h × input_w` input under `seed`.
pub fn plan_inference(
    seed: u64,
    config: &DetectorConfig,
    key: &[u8],
    input_h: usize,
    input_w: usize,
) -> InferencePlan {
    let mut timing = seed::request_rng(seed, SERVICE, key, Stream::Timing);
    let mpixels = (input_h * input_w) as f64 / 1e6;
    let extra_ms = config.ms_per_mpixel * mpixels;
    let extra = if extra_ms.is_finite() && extra_ms > 0.0 {
        Duration::from_secs_f64(extra_ms / 1000.0)
    } else {
        Duration::ZERO
    };
    let delay = config.infer.sample(&mut timing) + extra;
    let anchors = anchors(input_h, input_w);
    let classes = config.classes.max(1) as usize;
    let mut content = seed::request_rng(seed, SERVICE, key, Stream::Content);
    let count = if config.max_boxes == 0 {
        0
    } else {
        content.random_range(1..=config.max_boxes as usize)
    }
    .min(anchors);
    let (fw, fh) = (input_w as f32, input_h as f32);
    let mut boxes: Vec<PlannedBox> = Vec::with_capacity(count);
    while boxes.len() < count {
        let anchor = content.random_range(0..anchors);
        let w = content.random_range(0.05f32..0.5) * fw;
        let h = content.random_range(0.05f32..0.5) * fh;
        let cx = content.random_range(w / 2.0..=fw - w / 2.0);
        let cy = content.random_range(h / 2.0..=fh - h / 2.0);
        let class = content.random_range(0..classes);
        let score = content.random_range(0.3f32..0.95);
        if boxes.iter().all(|b| b.anchor != anchor) {
            boxes.push(PlannedBox {
                anchor,
                cx,
                cy,
                w,
                h,
                class,
                score,
            });
        }
    }
    let fault = config
        .faults
        .draw(&mut seed::request_rng(seed, SERVICE, key, Stream::Fault));
    InferencePlan {
        delay,
        fault,
        anchors,
        channels: 4 + classes,
        boxes,
    }
}

/// What the handlers share.
pub(crate) struct DetectorState {
    /// The run's seed.
    pub seed: u64,
    /// This service's config.
    pub config: DetectorConfig,
    /// This service's counters.
    pub counters: Arc<ServiceCounters>,
    /// Fires when the emulator stops.
    pub shutdown: Shutdown,
    /// The wire trace.
    pub trace: Arc<crate::trace::WireTrace>,
}

/// The router of the detector service.
pub(crate) fn router(state: Arc<DetectorState>) -> Router {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(health))
        .route("/v2/health/ready", get(health))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(versioned_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(versioned_infer),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A KServe v2 error: `{"error": "message"}`.
fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

async fn server_metadata(State(state): State<Arc<DetectorState>>) -> Response {
    state.counters.request();
    axum::Json(json!({
        "name": "latlab-emulator",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
    .into_response()
}

async fn health(State(state): State<Arc<DetectorState>>) -> StatusCode {
    state.counters.request();
    StatusCode::OK
}

async fn model_ready(State(state): State<Arc<DetectorState>>) -> StatusCode {
    state.counters.request();
    StatusCode::OK
}

async fn model_metadata(
    State(state): State<Arc<DetectorState>>,
    Path(name): Path<String>,
) -> Response {
    state.counters.request();
    metadata(&state.config, &name)
}

async fn versioned_metadata(
    State(state): State<Arc<DetectorState>>,
    Path((name, _version)): Path<(String, String)>,
) -> Response {
    state.counters.request();
    metadata(&state.config, &name)
}

fn metadata(config: &DetectorConfig, name: &str) -> Response {
    axum::Json(json!({
        "name": name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{ "name": INPUT, "datatype": "FP32", "shape": [-1, 3, -1, -1] }],
        "outputs": [{
            "name": OUTPUT,
            "datatype": "FP32",
            "shape": [-1, 4 + i64::from(config.classes), -1],
        }],
    }))
    .into_response()
}

/// A number or an array of numbers, nested to any depth, flattened row-major (the v2
/// protocol allows both shapes for `data`).
struct Flat(Vec<f32>);

struct FlatInto<'a>(&'a mut Vec<f32>);

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flat, D::Error> {
        let mut values = Vec::new();
        FlatInto(&mut values).deserialize(deserializer)?;
        Ok(Flat(values))
    }
}

impl<'de> DeserializeSeed<'de> for FlatInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FlatInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number or a (nested) array of numbers")
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push(v as f32);
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push(v as f32);
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.0.push(v as f32);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(FlatInto(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

#[derive(Deserialize)]
struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    inputs: Vec<RequestInput>,
    #[serde(default)]
    outputs: Option<Vec<RequestOutput>>,
    #[serde(default)]
    parameters: Option<RequestParameters>,
}

#[derive(Deserialize)]
struct RequestInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<InputParameters>,
    #[serde(default)]
    data: Option<Flat>,
}

#[derive(Deserialize)]
struct InputParameters {
    #[serde(default)]
    binary_data_size: Option<u64>,
}

#[derive(Deserialize)]
struct RequestOutput {
    name: String,
    #[serde(default)]
    parameters: Option<OutputParameters>,
}

#[derive(Deserialize)]
struct OutputParameters {
    #[serde(default)]
    binary_data: Option<bool>,
}

#[derive(Deserialize)]
struct RequestParameters {
    #[serde(default)]
    binary_data_output: Option<bool>,
}

/// A valid request's content.
#[derive(Debug, PartialEq)]
struct Input {
    id: Option<String>,
    height: usize,
    width: usize,
    data: Vec<f32>,
    binary_output: bool,
}

/// Parses and validates an infer request; the error is the message of the HTTP 400.
fn parse_request(header_len: Option<&HeaderValue>, body: &[u8]) -> Result<Input, String> {
    let split = match header_len {
        None => body.len(),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|n| *n <= body.len())
            .ok_or_else(|| {
                format!(
                    "{INFERENCE_HEADER} {v:?} is not a byte count within the body of {} bytes",
                    body.len()
                )
            })?,
    };
    let (json, binary) = body.split_at(split);
    let request: InferRequest =
        serde_json::from_slice(json).map_err(|e| format!("malformed inference request: {e}"))?;
    let [input] = <[RequestInput; 1]>::try_from(request.inputs)
        .map_err(|inputs| format!("expected 1 input '{INPUT}', got {} inputs", inputs.len()))?;
    if input.name != INPUT {
        return Err(format!(
            "unexpected inference input '{}', expected '{INPUT}'",
            input.name
        ));
    }
    if input.datatype != "FP32" {
        return Err(format!(
            "input '{INPUT}': datatype {} does not match the model's FP32",
            input.datatype
        ));
    }
    let (height, width) = match input.shape.as_slice() {
        [1, 3, h, w] if *h > 0 && *w > 0 => (*h as usize, *w as usize),
        _ => {
            return Err(format!(
                "input '{INPUT}': shape {:?} is not [1, 3, H, W]",
                input.shape
            ));
        }
    };
    if height % 32 != 0 || width % 32 != 0 || height > MAX_SIDE || width > MAX_SIDE {
        return Err(format!(
            "input '{INPUT}': shape {:?}: H and W must be multiples of 32 (at most {MAX_SIDE})",
            input.shape
        ));
    }
    let count = 3 * height * width;
    let size = input.parameters.and_then(|p| p.binary_data_size);
    let data = match (size, input.data) {
        (Some(size), _) => {
            if size != 4 * count as u64 {
                return Err(format!(
                    "input '{INPUT}': binary_data_size {size} does not match shape {:?} ({} bytes of FP32)",
                    input.shape,
                    4 * count
                ));
            }
            if binary.len() as u64 != size {
                return Err(format!(
                    "input '{INPUT}': binary_data_size is {size} but {} bytes follow the JSON header",
                    binary.len()
                ));
            }
            binary
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        (None, Some(Flat(data))) => {
            if data.len() != count {
                return Err(format!(
                    "input '{INPUT}': shape {:?} needs {count} values, data holds {}",
                    input.shape,
                    data.len()
                ));
            }
            data
        }
        (None, None) => {
            return Err(format!(
                "input '{INPUT}' has no data (neither `data` nor `binary_data_size`)"
            ));
        }
    };
    if size.is_none() && !binary.is_empty() {
        return Err(format!(
            "{} bytes follow the JSON header but no input declares binary_data_size",
            binary.len()
        ));
    }
    let mut binary_output = request
        .parameters
        .and_then(|p| p.binary_data_output)
        .unwrap_or(false);
    for output in request.outputs.unwrap_or_default() {
        if output.name != OUTPUT {
            return Err(format!(
                "unexpected inference output '{}', expected '{OUTPUT}'",
                output.name
            ));
        }
        if let Some(b) = output.parameters.and_then(|p| p.binary_data) {
            binary_output = b;
        }
    }
    Ok(Input {
        id: request.id,
        height,
        width,
        data,
        binary_output,
    })
}

#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: [ResponseOutput<'a>; 1],
}

#[derive(Serialize)]
struct ResponseOutput<'a> {
    name: &'static str,
    datatype: &'static str,
    shape: [usize; 3],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a [f32]>,
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

/// The response body and, when binary data follows the JSON, the JSON's length.
fn encode_response(
    model: &str,
    id: Option<&str>,
    plan: &InferencePlan,
    binary: bool,
) -> (Bytes, Option<usize>) {
    let output = plan.output();
    let response = InferResponse {
        model_name: model,
        model_version: "1",
        id,
        outputs: [ResponseOutput {
            name: OUTPUT,
            datatype: "FP32",
            shape: [1, plan.channels, plan.anchors],
            parameters: binary.then_some(BinarySize {
                binary_data_size: 4 * output.len(),
            }),
            data: (!binary).then_some(output.as_slice()),
        }],
    };
    let mut bytes = Vec::with_capacity(256 + 4 * output.len());
    // Serialising plain structs, strings and finite numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut bytes, &response);
    if !binary {
        return (Bytes::from(bytes), None);
    }
    let header_len = bytes.len();
    for v in &output {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    (Bytes::from(bytes), Some(header_len))
}

async fn infer(
    state: State<Arc<DetectorState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve(state, name, headers, body).await
}

async fn versioned_infer(
    state: State<Arc<DetectorState>>,
    Path((name, _version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve(state, name, headers, body).await
}

async fn serve(
    State(state): State<Arc<DetectorState>>,
    model: String,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let start = Instant::now();
    let session = crate::session_of(&headers);
    state.trace.mark(session, Mark::DetectorRequest);
    state.counters.request();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), &rejection.body_text()),
    };
    let input = match parse_request(headers.get(INFERENCE_HEADER), &body) {
        Ok(input) => input,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    drop(body);
    let (h, w) = (input.height, input.width);
    let output_bytes = 4 * (4 + state.config.classes as usize) * anchors(h, w);
    if output_bytes > MAX_OUTPUT_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "input '{INPUT}' of {w}x{h} would give an output of {output_bytes} bytes; \
                 the emulator makes at most {MAX_OUTPUT_BYTES}"
            ),
        );
    }
    let key = request_key(
        session,
        &model,
        input.id.as_deref(),
        &[1, 3, h, w],
        &input.data,
    );
    let plan = plan_inference(state.seed, &state.config, &key, h, w);
    state.counters.fault(plan.fault);
    if plan.fault == Fault::Http5xx {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Server is not ready: the model instance is unavailable (emulated)",
        );
    }
    let (bytes, header_len) =
        encode_response(&model, input.id.as_deref(), &plan, input.binary_output);
    let shutdown = state.shutdown.clone();
    let at = plan.delay;
    let respond = |body: Body, header_len: Option<usize>| {
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        let content_type = if header_len.is_some() {
            "application/octet-stream"
        } else {
            "application/json"
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(len) = header_len {
            headers.insert(INFERENCE_HEADER, HeaderValue::from(len));
        }
        if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", at.as_secs_f64() * 1000.0)) {
            headers.insert(PLANNED_HEADER, v);
        }
        response
    };
    let half = bytes.slice(..bytes.len() / 2);
    let (chunks, ending, header_len) = match plan.fault {
        Fault::Stall => (
            vec![Timed { at, bytes: half }],
            Ending::StallAfter(1),
            header_len,
        ),
        Fault::Disconnect => (
            vec![Timed { at, bytes: half }],
            Ending::DisconnectAfter(1),
            header_len,
        ),
        Fault::Malformed => (
            vec![Timed {
                at,
                bytes: Bytes::from_static(b"{\"model_name\": broken"),
            }],
            Ending::Complete,
            None,
        ),
        Fault::None | Fault::Http5xx => {
            // A whole body: the headers leave with it, when the inference is done.
            tokio::select! {
                _ = tokio::time::sleep_until(start + at) => {}
                _ = shutdown.wait() => {}
            }
            state.trace.mark(session, Mark::DetectorResponse);
            return respond(Body::from(bytes), header_len);
        }
    };
    respond(
        timed_body(start, chunks, ending, shutdown, None),
        header_len,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::Timing;

    #[test]
    fn anchors_match_yolov8() {
        assert_eq!(anchors(640, 640), 8400);
        assert_eq!(anchors(480, 640), 6300);
        assert_eq!(anchors(32, 32), 21);
    }

    #[test]
    fn plan_is_deterministic_and_boxes_lie_inside_the_input() {
        let config = DetectorConfig {
            max_boxes: 5,
            ms_per_mpixel: 10.0,
            infer: Timing::constant(20.0),
            ..DetectorConfig::default()
        };
        let data = vec![0.5f32; 3 * 64 * 96];
        let key = request_key("s#0", "yolov8n", Some("3"), &[1, 3, 64, 96], &data);
        let a = plan_inference(1, &config, &key, 64, 96);
        assert_eq!(a, plan_inference(1, &config, &key, 64, 96));
        // 20 ms + 10 ms per megapixel of a 96x64 input.
        let want = 20.0 + 10.0 * (64.0 * 96.0) / 1e6;
        assert!((a.delay.as_secs_f64() * 1000.0 - want).abs() < 1e-6);
        assert!((1..=5).contains(&a.boxes.len()));
        for b in &a.boxes {
            assert!(b.cx - b.w / 2.0 >= 0.0 && b.cx + b.w / 2.0 <= 96.0, "{b:?}");
            assert!(b.cy - b.h / 2.0 >= 0.0 && b.cy + b.h / 2.0 <= 64.0, "{b:?}");
            assert!((0.3..0.95).contains(&b.score) && b.class < 80);
        }
        let other = request_key("s#1", "yolov8n", Some("3"), &[1, 3, 64, 96], &data);
        assert_ne!(a.boxes, plan_inference(1, &config, &other, 64, 96).boxes);
        let out = a.output();
        assert_eq!(out.len(), 84 * anchors(64, 96));
        assert_eq!(out.iter().filter(|v| **v != 0.0).count(), 5 * a.boxes.len());
    }

    fn header(n: usize) -> HeaderValue {
        HeaderValue::from(n)
    }

    #[test]
    fn binary_and_json_requests_parse_to_the_same_input() {
        let values: Vec<f32> = (0..3 * 32 * 64).map(|i| i as f32 / 7.0).collect();
        let json = json!({
            "id": "9",
            "inputs": [{"name": "images", "shape": [1, 3, 32, 64], "datatype": "FP32",
                        "data": values}],
            "outputs": [{"name": "output0", "parameters": {"binary_data": false}}],
        });
        let from_json = parse_request(None, &serde_json::to_vec(&json).unwrap()).unwrap();
        let head = json!({
            "id": "9",
            "inputs": [{"name": "images", "shape": [1, 3, 32, 64], "datatype": "FP32",
                        "parameters": {"binary_data_size": 4 * values.len()}}],
            "outputs": [{"name": "output0", "parameters": {"binary_data": true}}],
        });
        let mut body = serde_json::to_vec(&head).unwrap();
        let len = body.len();
        for v in &values {
            body.extend_from_slice(&v.to_le_bytes());
        }
        let from_binary = parse_request(Some(&header(len)), &body).unwrap();
        assert_eq!(from_json.data, values);
        assert_eq!(from_binary.data, values);
        assert!(from_binary.binary_output && !from_json.binary_output);
        assert_eq!((from_json.height, from_json.width), (32, 64));
    }

    #[test]
    fn nested_data_is_flattened_row_major() {
        let body = json!({
            "inputs": [{"name": "images", "shape": [1, 3, 32, 32], "datatype": "FP32",
                        "data": [[vec![vec![1.0; 32]; 32], vec![vec![2.0; 32]; 32],
                                  vec![vec![3; 32]; 32]]]}],
        });
        let input = parse_request(None, &serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(input.data.len(), 3 * 1024);
        assert_eq!(
            (input.data[0], input.data[1024], input.data[2048]),
            (1.0, 2.0, 3.0)
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let check = |body: serde_json::Value, needle: &str| {
            let e = parse_request(None, &serde_json::to_vec(&body).unwrap()).unwrap_err();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        };
        let input = |shape: serde_json::Value, datatype: &str, data: Vec<f32>| {
            json!({"inputs": [{"name": "images", "shape": shape, "datatype": datatype,
                               "data": data}]})
        };
        check(
            input(json!([1, 3, 32, 32]), "INT8", vec![]),
            "datatype INT8",
        );
        check(
            input(json!([3, 32, 32]), "FP32", vec![]),
            "is not [1, 3, H, W]",
        );
        check(
            input(json!([1, 3, 30, 32]), "FP32", vec![]),
            "multiples of 32",
        );
        check(
            input(json!([1, 3, 32, 32]), "FP32", vec![0.0; 10]),
            "needs 3072 values, data holds 10",
        );
        check(json!({"inputs": []}), "got 0 inputs");
        check(
            json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}),
            "unexpected inference input 'x'",
        );
        let mut ok = input(json!([1, 3, 32, 32]), "FP32", vec![0.0; 3072]);
        ok["outputs"] = json!([{"name": "boxes"}]);
        check(ok, "unexpected inference output 'boxes'");
        let e = parse_request(None, b"{\"inputs\": [").unwrap_err();
        assert!(e.contains("malformed inference request"), "{e}");
        // Binary size mismatches, and a header length past the body.
        let head = json!({"inputs": [{"name": "images", "shape": [1, 3, 32, 32],
            "datatype": "FP32", "parameters": {"binary_data_size": 100}}]});
        let body = serde_json::to_vec(&head).unwrap();
        let e = parse_request(Some(&header(body.len())), &body).unwrap_err();
        assert!(e.contains("binary_data_size 100 does not match"), "{e}");
        let e = parse_request(Some(&header(body.len() + 1)), &body).unwrap_err();
        assert!(e.contains(INFERENCE_HEADER), "{e}");
    }

    #[test]
    fn a_binary_response_declares_its_size_after_the_json() {
        let config = DetectorConfig {
            classes: 2,
            ..DetectorConfig::default()
        };
        let plan = plan_inference(3, &config, b"k", 32, 32);
        let (bytes, header_len) = encode_response("m", Some("1"), &plan, true);
        let len = header_len.unwrap();
        let head: serde_json::Value = serde_json::from_slice(&bytes[..len]).unwrap();
        assert_eq!(head["outputs"][0]["shape"], json!([1, 6, 21]));
        assert_eq!(
            head["outputs"][0]["parameters"]["binary_data_size"],
            6 * 21 * 4
        );
        assert_eq!(bytes.len() - len, 6 * 21 * 4);
        let (bytes, header_len) = encode_response("m", None, &plan, false);
        assert!(header_len.is_none());
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["outputs"][0]["data"].as_array().unwrap().len(), 6 * 21);
    }
}
