//! Parsers never panic on input: property tests over everything latlab-core reads from a file
//! or a socket. Any input gives a value or a typed error.
//!
//! Each test starts from arbitrary bytes and from valid inputs mutated as trees and as bytes
//! (`support/mutate.rs`); `PROPTEST_CASES=100000 cargo test -p latlab-core --test parse_props`
//! runs more cases (docs/testing.md).

#[path = "../support/mutate.rs"]
mod mutate;

mod audio_stream;
mod dataset;
mod deepgram;
mod openai_sse;
mod video;
mod wav;
mod wav_file;
