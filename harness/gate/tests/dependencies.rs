//! The readers of results build without latlab's network stack: the analysis and the gate
//! reach the results contract through `latlab-results`, never through `latlab-core`, so they
//! build neither latlab's HTTP client (reqwest 0.13 with OpenSSL) nor WebSockets.
//!
//! polars 0.55's lazy engine itself enables `polars-io/cloud` (through `polars-stream`), which
//! brings its own tokio and reqwest 0.12; that is polars' and cannot be turned off while the
//! analysis uses lazy frames.

use std::process::Command;

#[test]
fn analysis_and_gate_build_no_network_stack_and_no_pipeline_core() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "-p",
            "latlab-analysis",
            "-p",
            "latlab-gate",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("latlab-results"), "{tree}");
    for forbidden in [
        "latlab-core ",
        "latlab-emulator ",
        "tokio-tungstenite ",
        "tungstenite ",
        "reqwest v0.13",
        "native-tls ",
        "openssl ",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(forbidden)),
            "{forbidden}is in the dependency tree of latlab-analysis or latlab-gate"
        );
    }
}
