//! The remote detector: a YOLOv8 model served over the KServe v2 / Triton HTTP inference
//! protocol (the "Open Inference Protocol" REST binding), as Triton, KServe, Seldon MLServer
//! and OpenVINO Model Server speak it.
//!
//! [`KServeDetector::connect`] reads the model's metadata (`GET /v2/models/{model}`) once and
//! checks that it takes an FP32 `[1, 3, H, W]` image and returns an FP32 output; every
//! [`Detector::detect`] letterboxes the frame with [`yolo::preprocess`], sends it to
//! `POST /v2/models/{model}/infer` — as Triton's binary tensor extension (the JSON header,
//! then the raw little-endian floats, its length in `Inference-Header-Content-Length`) or as a
//! JSON `data` array — and decodes the output with [`yolo::decode`].
//!
//! This module never retries and never hides a failure: each becomes a typed [`StageError`].

use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::yolo::{self, YoloSpec};
use super::{Detected, Detector, Frame};
use crate::backends::{
    HttpClients, SESSION_HEADER, Timeouts, join_url, next_chunk, reject_status, send,
};
use crate::timing::{ErrorKind, StageError};

/// The header giving the length of the JSON part of a body that carries binary tensors.
pub const INFERENCE_HEADER: &str = "inference-header-content-length";

/// A response larger than this is refused as a protocol error rather than buffered: a YOLOv8
/// output at 640×640 with 80 classes is 2.8 MB in binary, about 3 MB as JSON.
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// A YOLOv8 detector behind a KServe v2 / Triton HTTP endpoint.
#[derive(Debug)]
pub struct KServeDetector {
    http: reqwest::Client,
    infer_url: String,
    model: String,
    input: String,
    output: String,
    spec: YoloSpec,
    binary: bool,
    timeouts: Timeouts,
    session: Option<String>,
    /// The last input tensor's allocation, reused by the next frame (taken, not locked,
    /// across a request, so concurrent frames never wait for each other).
    buffer: Mutex<Vec<f32>>,
}

/// `GET /v2/models/{model}`: the parts latlab checks.
#[derive(Debug, Deserialize)]
struct ModelMetadata {
    #[serde(default)]
    inputs: Vec<TensorMetadata>,
    #[serde(default)]
    outputs: Vec<TensorMetadata>,
}

#[derive(Debug, Deserialize)]
struct TensorMetadata {
    name: String,
    datatype: String,
    #[serde(default)]
    shape: Vec<i64>,
}

impl KServeDetector {
    /// Reads `{base_url}/v2/models/{model}` and checks it against `spec`: one FP32 input of
    /// shape `[1|-1, 3, H|-1, W|-1]` with `H = spec.input_h`, `W = spec.input_w`, and an FP32
    /// output (with `4 + classes` channels where its shape says). `binary` picks Triton's
    /// binary tensor extension for requests and responses; `false` sends and asks for JSON.
    ///
    /// A model that does not fit is a [`ErrorKind::Protocol`] error naming the model, the
    /// field and what was expected; an unknown model is the server's HTTP error.
    pub async fn connect(
        base_url: &str,
        model: &str,
        spec: YoloSpec,
        binary: bool,
        timeouts: &Timeouts,
    ) -> Result<KServeDetector, StageError> {
        let http = HttpClients::new(timeouts)?.get(true).clone();
        let model_url = join_url(base_url, &format!("v2/models/{model}"));
        let resp = send(http.get(&model_url), timeouts).await?;
        let resp = reject_status(resp, timeouts, error_message).await?;
        let body = read_body(resp, timeouts).await?;
        let metadata: ModelMetadata = serde_json::from_slice(&body).map_err(|e| {
            StageError::new(
                ErrorKind::Protocol,
                format!("model `{model}`: metadata is not valid KServe v2 JSON: {e}"),
            )
        })?;
        let (input, output) = check_metadata(model, &metadata, &spec)?;
        Ok(KServeDetector {
            http,
            infer_url: join_url(&model_url, "infer"),
            model: model.to_string(),
            input,
            output,
            spec,
            binary,
            timeouts: *timeouts,
            session: None,
            buffer: Mutex::new(Vec::new()),
        })
    }

    /// Sends `session` in latlab's session header with every request, so latlab's emulator
    /// seeds this stream's timings apart from other streams'. Real servers ignore it.
    pub fn with_session(mut self, session: impl Into<String>) -> KServeDetector {
        self.session = Some(session.into());
        self
    }

    /// The model's input tensor name, from its metadata.
    pub fn input_name(&self) -> &str {
        &self.input
    }

    /// The output tensor this detector decodes, from the model's metadata.
    pub fn output_name(&self) -> &str {
        &self.output
    }

    /// Takes the reusable input buffer (or a fresh one if another frame holds it).
    fn take_buffer(&self) -> Vec<f32> {
        std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn return_buffer(&self, buffer: Vec<f32>) {
        *self.buffer.lock().unwrap_or_else(|e| e.into_inner()) = buffer;
    }
}

#[async_trait]
impl Detector for KServeDetector {
    fn describe(&self) -> String {
        let json = if self.binary { "" } else { " json" };
        format!(
            "kserve:{}@{}x{}{json}",
            self.model, self.spec.input_w, self.spec.input_h
        )
    }

    async fn detect(&self, frame: &Frame) -> Result<Detected, StageError> {
        let (w, h) = (self.spec.input_w, self.spec.input_h);
        let mut tensor = self.take_buffer();
        let letterbox = yolo::preprocess(frame, w, h, &mut tensor);
        let preprocess_end = Instant::now();
        // Encoding is part of talking to the server, so it counts as inference.
        let shape = [1, 3, h as usize, w as usize];
        let id = frame.index.to_string();
        let body = encode_request(&id, &self.input, &self.output, shape, &tensor, self.binary);
        self.return_buffer(tensor);

        let mut request = self.http.post(&self.infer_url);
        request = match body.header_len {
            Some(len) => request
                .header(INFERENCE_HEADER, len)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream"),
            None => request.header(reqwest::header::CONTENT_TYPE, "application/json"),
        };
        if let Some(session) = &self.session {
            request = request.header(SESSION_HEADER, session);
        }
        let resp = send(request.body(body.bytes), &self.timeouts).await?;
        let resp = reject_status(resp, &self.timeouts, error_message).await?;
        let header_len = inference_header(resp.headers())?;
        let bytes = read_body(resp, &self.timeouts).await?;
        let inference_end = Instant::now();

        let (values, out_shape) = parse_response(&bytes, header_len, &self.output)?;
        let detections =
            yolo::decode(&values, &out_shape, &self.spec, &letterbox).map_err(|e| {
                StageError::new(
                    ErrorKind::Protocol,
                    format!("model `{}`: output `{}`: {e}", self.model, self.output),
                )
            })?;
        Ok(Detected {
            detections,
            preprocess_end,
            inference_end,
        })
    }
}

/// A KServe v2 error body is `{"error": "message"}`.
fn error_message(v: &serde_json::Value) -> Option<String> {
    v.get("error").and_then(|m| m.as_str()).map(str::to_string)
}

/// Checks the model's metadata against the spec; returns the input and output names.
fn check_metadata(
    model: &str,
    metadata: &ModelMetadata,
    spec: &YoloSpec,
) -> Result<(String, String), StageError> {
    let (h, w) = (i64::from(spec.input_h), i64::from(spec.input_w));
    let wanted =
        format!("one FP32 input of shape [1|-1, 3, {h}|-1, {w}|-1] (the spec's {w}x{h} image)");
    let mismatch = |field: String, found: String| {
        StageError::new(
            ErrorKind::Protocol,
            format!("model `{model}`: {field} is {found}; expected {wanted}"),
        )
    };
    let [input] = metadata.inputs.as_slice() else {
        let names: Vec<&str> = metadata.inputs.iter().map(|t| t.name.as_str()).collect();
        return Err(mismatch(
            "inputs".into(),
            format!("{} tensors {names:?}", names.len()),
        ));
    };
    if input.datatype != "FP32" {
        return Err(mismatch(
            format!("input `{}` datatype", input.name),
            input.datatype.clone(),
        ));
    }
    let fits = |dim: i64, want: i64| dim == want || dim == -1;
    let shape_fits = matches!(input.shape.as_slice(),
        [n, c, ih, iw] if fits(*n, 1) && *c == 3 && fits(*ih, h) && fits(*iw, w));
    if !shape_fits {
        return Err(mismatch(
            format!("input `{}` shape", input.name),
            format!("{:?}", input.shape),
        ));
    }
    let Some(output) = metadata.outputs.iter().find(|t| t.datatype == "FP32") else {
        let found: Vec<String> = metadata
            .outputs
            .iter()
            .map(|t| format!("{} {}", t.name, t.datatype))
            .collect();
        return Err(StageError::new(
            ErrorKind::Protocol,
            format!("model `{model}`: outputs are {found:?}; expected an FP32 output"),
        ));
    };
    // YOLOv8's output is [batch, 4 + classes, anchors]; where the server states the channel
    // count, it must match the spec's classes or every frame would fail to decode.
    let channels = 4 + spec.classes.len() as i64;
    if let [.., c, _] = output.shape.as_slice()
        && *c >= 0
        && *c != channels
    {
        return Err(StageError::new(
            ErrorKind::Protocol,
            format!(
                "model `{model}`: output `{}` shape is {:?}; expected [-1, {channels}, -1] \
                 (4 box values + the spec's {} classes)",
                output.name,
                output.shape,
                spec.classes.len()
            ),
        ));
    }
    Ok((input.name.clone(), output.name.clone()))
}

/// An encoded infer request: the body, and the JSON header's length when binary data follows.
#[derive(Debug)]
struct RequestBody {
    bytes: Vec<u8>,
    header_len: Option<usize>,
}

#[derive(Serialize)]
struct InferRequest<'a> {
    id: &'a str,
    inputs: [InputTensor<'a>; 1],
    outputs: [OutputRequest<'a>; 1],
}

#[derive(Serialize)]
struct InputTensor<'a> {
    name: &'a str,
    shape: [usize; 4],
    datatype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a [f32]>,
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

#[derive(Serialize)]
struct OutputRequest<'a> {
    name: &'a str,
    parameters: BinaryOutput,
}

#[derive(Serialize)]
struct BinaryOutput {
    binary_data: bool,
}

/// Builds the infer request for one `[1, 3, H, W]` tensor: binary (JSON header, then the
/// floats little-endian) or all JSON (the floats as a flat `data` array).
fn encode_request(
    id: &str,
    input: &str,
    output: &str,
    shape: [usize; 4],
    tensor: &[f32],
    binary: bool,
) -> RequestBody {
    let request = InferRequest {
        id,
        inputs: [InputTensor {
            name: input,
            shape,
            datatype: "FP32",
            parameters: binary.then_some(BinarySize {
                binary_data_size: std::mem::size_of_val(tensor),
            }),
            data: (!binary).then_some(tensor),
        }],
        outputs: [OutputRequest {
            name: output,
            parameters: BinaryOutput {
                binary_data: binary,
            },
        }],
    };
    let mut bytes = Vec::with_capacity(if binary {
        256 + std::mem::size_of_val(tensor)
    } else {
        256 + tensor.len() * 12
    });
    // Serialising plain structs, numbers and strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut bytes, &request);
    if !binary {
        return RequestBody {
            bytes,
            header_len: None,
        };
    }
    let header_len = bytes.len();
    for v in tensor {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    RequestBody {
        bytes,
        header_len: Some(header_len),
    }
}

/// The response's `Inference-Header-Content-Length`, if any.
fn inference_header(headers: &reqwest::header::HeaderMap) -> Result<Option<usize>, StageError> {
    let Some(value) = headers.get(INFERENCE_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            StageError::new(
                ErrorKind::Protocol,
                format!("{INFERENCE_HEADER} is not a byte count: {value:?}"),
            )
        })
}

/// Reads a whole body: each chunk within the stall timeout, at most [`MAX_RESPONSE_BYTES`].
async fn read_body(
    mut resp: reqwest::Response,
    timeouts: &Timeouts,
) -> Result<Vec<u8>, StageError> {
    let expected = resp.content_length().unwrap_or(0) as usize;
    let mut body = Vec::with_capacity(expected.min(MAX_RESPONSE_BYTES));
    while let Some(chunk) = next_chunk(&mut resp, timeouts).await {
        body.extend_from_slice(&chunk?);
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(StageError::new(
                ErrorKind::Protocol,
                format!("response is over {MAX_RESPONSE_BYTES} bytes"),
            ));
        }
    }
    Ok(body)
}

#[derive(Debug, Deserialize)]
struct InferResponse {
    #[serde(default)]
    outputs: Vec<ResponseOutput>,
}

#[derive(Debug, Deserialize)]
struct ResponseOutput {
    name: String,
    datatype: String,
    shape: Vec<i64>,
    #[serde(default)]
    parameters: Option<OutputParameters>,
    #[serde(default)]
    data: Option<Vec<f32>>,
}

#[derive(Debug, Default, Deserialize)]
struct OutputParameters {
    #[serde(default)]
    binary_data_size: Option<usize>,
}

fn protocol(message: String) -> StageError {
    StageError::new(ErrorKind::Protocol, message)
}

/// Parses an infer response and returns output `name`'s values and shape. `header_len` is
/// the response's `Inference-Header-Content-Length`: the JSON ends there and the outputs that
/// declare `binary_data_size` follow in order; without it the whole body is JSON.
fn parse_response(
    body: &[u8],
    header_len: Option<usize>,
    name: &str,
) -> Result<(Vec<f32>, Vec<usize>), StageError> {
    let split = header_len.unwrap_or(body.len());
    if split > body.len() {
        return Err(protocol(format!(
            "{INFERENCE_HEADER} is {split} but the body holds {} bytes",
            body.len()
        )));
    }
    let (json, binary) = body.split_at(split);
    let mut response: InferResponse = serde_json::from_slice(json)
        .map_err(|e| protocol(format!("infer response is not valid KServe v2 JSON: {e}")))?;
    let mut offset = 0usize;
    let mut found = None;
    for (index, out) in response.outputs.iter().enumerate() {
        let size = out.parameters.as_ref().and_then(|p| p.binary_data_size);
        if out.name == name {
            found = Some((index, offset));
        }
        offset = offset.saturating_add(size.unwrap_or(0));
    }
    if offset != binary.len() {
        return Err(protocol(format!(
            "the outputs declare {offset} bytes of binary data but {} follow the JSON",
            binary.len()
        )));
    }
    let Some((index, start)) = found else {
        let names: Vec<&str> = response.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(protocol(format!(
            "no output `{name}` in the response (outputs: {names:?})"
        )));
    };
    let out = response.outputs.swap_remove(index);
    if out.datatype != "FP32" {
        return Err(protocol(format!(
            "output `{name}` datatype is {}; expected FP32",
            out.datatype
        )));
    }
    let shape: Vec<usize> = out
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| protocol(format!("output `{name}` shape {:?} is negative", out.shape)))?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| protocol(format!("output `{name}` shape {shape:?} overflows")))?;
    let values = match (out.parameters.and_then(|p| p.binary_data_size), out.data) {
        (Some(size), _) => {
            if size % 4 != 0 || size / 4 != count {
                return Err(protocol(format!(
                    "output `{name}` shape {shape:?} needs {} bytes of FP32 but binary_data_size is {size}",
                    count.saturating_mul(4)
                )));
            }
            binary[start..start + size]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        (None, Some(data)) => {
            if data.len() != count {
                return Err(protocol(format!(
                    "output `{name}` shape {shape:?} needs {count} values but data holds {}",
                    data.len()
                )));
            }
            data
        }
        (None, None) => {
            return Err(protocol(format!(
                "output `{name}` has neither data nor binary_data_size"
            )));
        }
    };
    Ok((values, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(classes: usize) -> YoloSpec {
        YoloSpec {
            input_w: 640,
            input_h: 480,
            classes: (0..classes).map(|c| format!("c{c}")).collect(),
            conf: 0.25,
            iou: 0.45,
            max_det: 300,
        }
    }

    fn metadata(input_shape: &[i64], output_shape: &[i64]) -> ModelMetadata {
        serde_json::from_value(serde_json::json!({
            "name": "yolov8n",
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "images", "datatype": "FP32", "shape": input_shape}],
            "outputs": [{"name": "output0", "datatype": "FP32", "shape": output_shape}],
        }))
        .unwrap()
    }

    #[test]
    fn metadata_with_dynamic_or_matching_dims_is_accepted() {
        for input in [[-1, 3, -1, -1], [1, 3, 480, 640], [-1, 3, 480, -1]] {
            let (i, o) =
                check_metadata("yolov8n", &metadata(&input, &[-1, 84, -1]), &spec(80)).unwrap();
            assert_eq!((i.as_str(), o.as_str()), ("images", "output0"));
        }
    }

    #[test]
    fn metadata_mismatches_name_the_model_field_and_expectation() {
        let e = check_metadata(
            "yolov8n",
            &metadata(&[1, 3, 640, 640], &[-1, 84, -1]),
            &spec(80),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.message.contains("`yolov8n`"), "{}", e.message);
        assert!(e.message.contains("input `images` shape"), "{}", e.message);
        assert!(e.message.contains("480|-1, 640|-1"), "{}", e.message);

        let e =
            check_metadata("m", &metadata(&[-1, 3, -1, -1], &[1, 84, 8400]), &spec(3)).unwrap_err();
        assert!(e.message.contains("output `output0`"), "{}", e.message);
        assert!(e.message.contains("[-1, 7, -1]"), "{}", e.message);

        let mut m = metadata(&[-1, 3, -1, -1], &[-1, 84, -1]);
        m.inputs[0].datatype = "UINT8".into();
        let e = check_metadata("m", &m, &spec(80)).unwrap_err();
        assert!(e.message.contains("datatype is UINT8"), "{}", e.message);
        m.outputs[0].datatype = "INT64".into();
        m.inputs[0].datatype = "FP32".into();
        let e = check_metadata("m", &m, &spec(80)).unwrap_err();
        assert!(
            e.message.contains("expected an FP32 output"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_binary_request_is_a_json_header_then_little_endian_floats() {
        let tensor = [1.0f32, -2.5, 0.25];
        let body = encode_request("7", "images", "output0", [1, 3, 1, 1], &tensor, true);
        let len = body.header_len.unwrap();
        let header: serde_json::Value = serde_json::from_slice(&body.bytes[..len]).unwrap();
        assert_eq!(header["id"], "7");
        assert_eq!(header["inputs"][0]["name"], "images");
        assert_eq!(header["inputs"][0]["datatype"], "FP32");
        assert_eq!(
            header["inputs"][0]["shape"],
            serde_json::json!([1, 3, 1, 1])
        );
        assert_eq!(header["inputs"][0]["parameters"]["binary_data_size"], 12);
        assert!(header["inputs"][0].get("data").is_none());
        assert_eq!(header["outputs"][0]["name"], "output0");
        assert_eq!(header["outputs"][0]["parameters"]["binary_data"], true);
        let raw = &body.bytes[len..];
        assert_eq!(raw.len(), 12);
        assert_eq!(raw[4..8], (-2.5f32).to_le_bytes());
    }

    #[test]
    fn a_json_request_carries_the_floats_as_data() {
        let tensor = [0.5f32, 1.0, 0.0];
        let body = encode_request("1", "images", "output0", [1, 3, 1, 1], &tensor, false);
        assert_eq!(body.header_len, None);
        let v: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(v["inputs"][0]["data"], serde_json::json!([0.5, 1.0, 0.0]));
        assert!(v["inputs"][0].get("parameters").is_none());
        assert_eq!(v["outputs"][0]["parameters"]["binary_data"], false);
    }

    /// A binary response: `other` (2 bytes of BOOL) before `output0`, as Triton orders them.
    fn binary_response(values: &[f32], shape: &[i64], declared: usize) -> (Vec<u8>, usize) {
        let header = serde_json::json!({
            "model_name": "m",
            "outputs": [
                {"name": "other", "datatype": "BOOL", "shape": [2],
                 "parameters": {"binary_data_size": 2}},
                {"name": "output0", "datatype": "FP32", "shape": shape,
                 "parameters": {"binary_data_size": declared}},
            ],
        });
        let mut body = serde_json::to_vec(&header).unwrap();
        let len = body.len();
        body.extend_from_slice(&[1, 0]);
        for v in values {
            body.extend_from_slice(&v.to_le_bytes());
        }
        (body, len)
    }

    #[test]
    fn a_binary_response_is_split_at_the_header_and_read_in_output_order() {
        let values = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (body, len) = binary_response(&values, &[1, 2, 3], 24);
        let (got, shape) = parse_response(&body, Some(len), "output0").unwrap();
        assert_eq!(got, values);
        assert_eq!(shape, [1, 2, 3]);
    }

    #[test]
    fn byte_size_and_shape_mismatches_are_protocol_errors() {
        let values = [1.0f32, 2.0, 3.0, 4.0];
        // Shape says 6 floats, 16 bytes declared and sent.
        let (body, len) = binary_response(&values, &[1, 2, 3], 16);
        let e = parse_response(&body, Some(len), "output0").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.message.contains("needs 24 bytes"), "{}", e.message);
        // Declared 24 bytes, 16 sent (a body cut cleanly).
        let (body, len) = binary_response(&values, &[1, 2, 3], 24);
        let e = parse_response(&body, Some(len), "output0").unwrap_err();
        assert!(e.message.contains("declare 26 bytes"), "{}", e.message);
        // The header length runs past the body.
        let e = parse_response(&body, Some(body.len() + 1), "output0").unwrap_err();
        assert!(e.message.contains(INFERENCE_HEADER), "{}", e.message);
        // JSON data of the wrong length, a negative dim, a missing output, broken JSON.
        let json =
            br#"{"outputs":[{"name":"output0","datatype":"FP32","shape":[1,2,2],"data":[1,2,3]}]}"#;
        let e = parse_response(json, None, "output0").unwrap_err();
        assert!(e.message.contains("needs 4 values"), "{}", e.message);
        let json =
            br#"{"outputs":[{"name":"output0","datatype":"FP32","shape":[1,-2],"data":[]}]}"#;
        let e = parse_response(json, None, "output0").unwrap_err();
        assert!(e.message.contains("negative"), "{}", e.message);
        let e = parse_response(json, None, "boxes").unwrap_err();
        assert!(e.message.contains("no output `boxes`"), "{}", e.message);
        let e = parse_response(b"{\"outputs\": broken", None, "output0").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
    }

    #[test]
    fn a_json_response_reads_data() {
        let json = br#"{"model_name":"m","outputs":[{"name":"output0","datatype":"FP32","shape":[1,2,2],"data":[1,2,3,4.5]}]}"#;
        let (v, shape) = parse_response(json, None, "output0").unwrap();
        assert_eq!(v, [1.0, 2.0, 3.0, 4.5]);
        assert_eq!(shape, [1, 2, 2]);
    }

    #[test]
    fn the_inference_header_must_be_a_number() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(inference_header(&headers).unwrap(), None);
        headers.insert(INFERENCE_HEADER, "123".parse().unwrap());
        assert_eq!(inference_header(&headers).unwrap(), Some(123));
        headers.insert(INFERENCE_HEADER, "lots".parse().unwrap());
        assert_eq!(
            inference_header(&headers).unwrap_err().kind,
            ErrorKind::Protocol
        );
    }
}
