//! Loopback tests: start the emulator on ephemeral ports and drive it with plain WebSocket and
//! HTTP clients, checking each vendor's wire shape, timing rules and every fault kind.

mod common;
mod faults;
mod llm;
mod stt;
mod tts;
