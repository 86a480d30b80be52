//! latlab-core's KServe v2 / Triton client (`KServeDetector`) against the emulated detector
//! on loopback: metadata, binary and JSON round trips that decode the emulator's seeded boxes
//! into frame pixels, seeded delays, every fault as its typed error, and the server's 400s.

use std::sync::Arc;
use std::time::Instant;

use latlab_core::backends::Timeouts;
use latlab_core::timing::{ErrorKind, StageError};
use latlab_core::vision::kserve::{INFERENCE_HEADER, KServeDetector};
use latlab_core::vision::yolo::{self, YoloSpec};
use latlab_core::vision::{Detection, Detector, Frame};
use latlab_emulator::detector::{PLANNED_HEADER, plan_inference, request_key};
use latlab_emulator::{Emulator, EmulatorConfig, Faults, SESSION_HEADER, Timing};
use serde_json::json;

const SEED: u64 = 11;
const MODEL: &str = "yolov8n";

fn config() -> EmulatorConfig {
    let mut c = EmulatorConfig {
        seed: SEED,
        ..EmulatorConfig::default()
    };
    c.detector.infer = Timing::Constant { ms: 5.0 };
    c.detector.max_boxes = 4;
    c
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect_ms: 2_000,
        response_ms: 3_000,
        stall_ms: 400,
    }
}

/// The emulator's 80 classes, named `c0`…`c79`; IoU 1 so no random box suppresses another.
fn spec(input_w: u32, input_h: u32) -> YoloSpec {
    YoloSpec {
        input_w,
        input_h,
        classes: (0..80).map(|c| format!("c{c}")).collect(),
        conf: 0.25,
        iou: 1.0,
        max_det: 300,
    }
}

/// A gradient frame that differs from frame to frame.
fn frame(index: u32, width: u32, height: u32) -> Frame {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            for c in 0..3 {
                rgb.push(((x * 7 + y * 3 + c * 50 + index * 11) % 256) as u8);
            }
        }
    }
    Frame {
        index,
        width,
        height,
        rgb: Arc::from(rgb),
    }
}

async fn detector(emu: &Emulator, spec: YoloSpec, binary: bool) -> KServeDetector {
    KServeDetector::connect(&emu.detector_url(), MODEL, spec, binary, &timeouts())
        .await
        .unwrap()
}

/// What the emulator planned for `frame` from `session`, as the client should decode it:
/// class, score and box in frame pixels, best first.
fn planned(
    config: &EmulatorConfig,
    session: &str,
    spec: &YoloSpec,
    frame: &Frame,
) -> Vec<(String, f32, [f32; 4])> {
    let mut data = Vec::new();
    let lb = yolo::preprocess(frame, spec.input_w, spec.input_h, &mut data);
    let (h, w) = (spec.input_h as usize, spec.input_w as usize);
    let id = frame.index.to_string();
    let key = request_key(session, MODEL, Some(&id), &[1, 3, h, w], &data);
    let plan = plan_inference(config.seed, &config.detector, &key, h, w);
    let mut boxes: Vec<_> = plan
        .boxes
        .iter()
        .map(|b| {
            let x = |v: f32| (v - lb.pad_x) / lb.scale;
            let y = |v: f32| (v - lb.pad_y) / lb.scale;
            (
                format!("c{}", b.class),
                b.score,
                [
                    x(b.cx - b.w / 2.0),
                    y(b.cy - b.h / 2.0),
                    x(b.cx + b.w / 2.0),
                    y(b.cy + b.h / 2.0),
                ],
            )
        })
        .collect();
    boxes.sort_by(|a, b| b.1.total_cmp(&a.1));
    boxes
}

fn assert_same(got: &[Detection], want: &[(String, f32, [f32; 4])], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (d, (class, score, b)) in got.iter().zip(want) {
        assert_eq!(&d.class, class, "{what}");
        assert!((d.score - score).abs() < 1e-6, "{what}: {d:?}");
        for (g, w) in [d.x1, d.y1, d.x2, d.y2].iter().zip(b) {
            assert!((g - w).abs() < 1e-3, "{what}: {d:?} vs {b:?}");
        }
    }
}

#[tokio::test]
async fn binary_and_json_round_trips_decode_the_seeded_boxes_into_frame_pixels() {
    let config = config();
    let emu = Emulator::start(config.clone(), None).await.unwrap();
    // Binary at 640x480 from 1280x960 frames (scale 1/2); JSON at 320x256 from 640x512.
    for (binary, (iw, ih), (fw, fh), describe) in [
        (true, (640, 480), (1280, 960), "kserve:yolov8n@640x480"),
        (false, (320, 256), (640, 512), "kserve:yolov8n@320x256 json"),
    ] {
        let spec = spec(iw, ih);
        let client = detector(&emu, spec.clone(), binary)
            .await
            .with_session("cam-1#0");
        assert_eq!(client.describe(), describe);
        assert_eq!(
            (client.input_name(), client.output_name()),
            ("images", "output0")
        );
        for index in 0..3 {
            let frame = frame(index, fw, fh);
            let started = Instant::now();
            let detected = client.detect(&frame).await.unwrap();
            assert!(started <= detected.preprocess_end);
            assert!(detected.preprocess_end <= detected.inference_end);
            let want = planned(&config, "cam-1#0", &spec, &frame);
            assert!(!want.is_empty());
            assert_same(&detected.detections, &want, describe);
        }
    }
    let stats = emu.stats().detector;
    assert_eq!(
        stats.requests,
        2 + 6,
        "two metadata reads and six inferences"
    );
    assert_eq!(stats.faults.http_5xx + stats.faults.stall, 0);
    emu.shutdown().await;
}

/// Posts a one-image JSON request straight to the emulator; returns status, planned delay
/// header and body.
async fn post_json(
    emu: &Emulator,
    session: &str,
    body: serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v2/models/{MODEL}/infer", emu.detector_url()))
        .header(SESSION_HEADER, session)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let planned = resp
        .headers()
        .get(PLANNED_HEADER)
        .map(|v| v.to_str().unwrap().to_string());
    (status, planned, resp.json().await.unwrap())
}

fn small_request(values: usize) -> serde_json::Value {
    json!({
        "id": "0",
        "inputs": [{"name": "images", "shape": [1, 3, 32, 32], "datatype": "FP32",
                    "data": vec![0.5f32; values]}],
    })
}

#[tokio::test]
async fn the_same_seed_and_session_draw_the_same_delays_and_boxes() {
    let mut config = config();
    config.detector.infer = Timing::lognormal(20.0, 0.5);
    let a = Emulator::start(config.clone(), None).await.unwrap();
    let b = Emulator::start(config.clone(), None).await.unwrap();
    let (_, delay_a, body_a) = post_json(&a, "cam-1#0", small_request(3072)).await;
    let (_, delay_b, body_b) = post_json(&b, "cam-1#0", small_request(3072)).await;
    let (_, delay_c, _) = post_json(&a, "cam-2#0", small_request(3072)).await;
    assert!(delay_a.is_some());
    assert_eq!(delay_a, delay_b, "same seed and session, same delay");
    assert_eq!(body_a, body_b, "same seed and session, same output");
    assert_ne!(delay_a, delay_c, "another session draws another delay");

    // Through the real client: the same detections from both, others for another session,
    // and never an answer before its planned delay.
    let spec = spec(320, 256);
    let frame = frame(4, 320, 256);
    let from = |emu: &Emulator, session: &str| {
        let (emu_url, session, spec) = (emu.detector_url(), session.to_string(), spec.clone());
        async move {
            KServeDetector::connect(&emu_url, MODEL, spec, true, &timeouts())
                .await
                .unwrap()
                .with_session(session)
        }
    };
    let started = Instant::now();
    let one = from(&a, "cam-1#0").await.detect(&frame).await.unwrap();
    let elapsed = started.elapsed();
    let two = from(&b, "cam-1#0").await.detect(&frame).await.unwrap();
    let other = from(&a, "cam-2#0").await.detect(&frame).await.unwrap();
    assert_eq!(one.detections, two.detections);
    assert_ne!(one.detections, other.detections);
    let mut data = Vec::new();
    yolo::preprocess(&frame, 320, 256, &mut data);
    let key = request_key("cam-1#0", MODEL, Some("4"), &[1, 3, 256, 320], &data);
    let plan = plan_inference(SEED, &config.detector, &key, 256, 320);
    assert!(
        elapsed >= plan.delay,
        "{elapsed:?} < planned {:?}",
        plan.delay
    );
    a.shutdown().await;
    b.shutdown().await;
}

async fn detect_error(emu: &Emulator, binary: bool) -> StageError {
    let client = detector(emu, spec(320, 256), binary).await;
    client.detect(&frame(0, 320, 256)).await.unwrap_err()
}

#[tokio::test]
async fn each_fault_becomes_its_typed_error() {
    let cases = [
        ("http_5xx", ErrorKind::Http),
        ("stall", ErrorKind::Stall),
        ("disconnect", ErrorKind::Disconnected),
        ("malformed", ErrorKind::Protocol),
    ];
    for (fault, kind) in cases {
        let mut config = config();
        config.detector.faults = Faults::always(fault).unwrap();
        let emu = Emulator::start(config, None).await.unwrap();
        for binary in [true, false] {
            let e = detect_error(&emu, binary).await;
            assert_eq!(e.kind, kind, "{fault} (binary {binary}): {e}");
            if fault == "http_5xx" {
                assert_eq!(e.status, Some(503));
                assert!(e.message.contains("unavailable"), "{}", e.message);
            }
        }
        let stats = emu.stats().detector;
        let counted = match fault {
            "http_5xx" => stats.faults.http_5xx,
            "stall" => stats.faults.stall,
            "disconnect" => stats.faults.disconnect,
            _ => stats.faults.malformed,
        };
        assert_eq!(counted, 2, "{fault}");
        emu.shutdown().await;
    }

    // Refused connections fail the metadata read already.
    let mut config = config();
    config.detector.faults = Faults::always("refuse").unwrap();
    let emu = Emulator::start(config, None).await.unwrap();
    let e = KServeDetector::connect(
        &emu.detector_url(),
        MODEL,
        spec(320, 256),
        true,
        &timeouts(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect, "{e}");
    assert!(emu.stats().detector.connections_refused >= 1);
    emu.shutdown().await;

    // Nobody listening at all: a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = KServeDetector::connect(
        &format!("http://127.0.0.1:{port}"),
        MODEL,
        spec(320, 256),
        true,
        &timeouts(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect, "{e}");
}

#[tokio::test]
async fn an_answer_slower_than_the_response_timeout_is_a_timeout() {
    let mut config = config();
    config.detector.infer = Timing::Constant { ms: 2_000.0 };
    let emu = Emulator::start(config, None).await.unwrap();
    let short = Timeouts {
        response_ms: 200,
        ..timeouts()
    };
    let client = KServeDetector::connect(&emu.detector_url(), MODEL, spec(320, 256), true, &short)
        .await
        .unwrap();
    let e = client.detect(&frame(0, 320, 256)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_shapes_are_http_400_with_the_servers_message() {
    let emu = Emulator::start(config(), None).await.unwrap();
    let url = emu.detector_url();
    let http = reqwest::Client::new();
    for path in [
        "v2/health/ready",
        "v2/health/live",
        "v2/models/anything/ready",
    ] {
        let status = http
            .get(format!("{url}/{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{path}");
    }
    let meta: serde_json::Value = http
        .get(format!("{url}/v2/models/{MODEL}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["platform"], "onnxruntime_onnx");
    assert_eq!(meta["outputs"][0]["shape"], json!([-1, 84, -1]));

    // The real client with a 330x330 input: the server's metadata allows any size, the
    // inference does not.
    let client = detector(&emu, spec(330, 330), true).await;
    let e = client.detect(&frame(0, 330, 330)).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Http, Some(400)), "{e}");
    assert!(e.message.contains("multiples of 32"), "{}", e.message);

    // Raw requests: data that does not fill the shape, in JSON and in binary.
    let (status, _, body) = post_json(&emu, "s", small_request(10)).await;
    assert_eq!(status, 400);
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("needs 3072 values, data holds 10"),
        "{message}"
    );
    let head = serde_json::to_vec(&json!({
        "inputs": [{"name": "images", "shape": [1, 3, 32, 32], "datatype": "FP32",
                    "parameters": {"binary_data_size": 3072 * 4}}],
    }))
    .unwrap();
    let mut raw = head.clone();
    raw.extend_from_slice(&[0u8; 100]);
    let resp = http
        .post(format!("{url}/v2/models/{MODEL}/infer"))
        .header(INFERENCE_HEADER, head.len())
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("but 100 bytes follow"), "{message}");

    // A spec whose classes disagree with the model's output: refused at connect, by name.
    let mut three = spec(320, 256);
    three.classes.truncate(3);
    let e = KServeDetector::connect(&url, MODEL, three, true, &timeouts())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(
        e.message.contains("`yolov8n`") && e.message.contains("output `output0`"),
        "{}",
        e.message
    );
    emu.shutdown().await;
}
