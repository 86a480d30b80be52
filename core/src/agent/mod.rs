//! Calling a running voice agent as its caller, over a telephony-style media stream.
//!
//! latlab dials the agent (a WebSocket server), streams the recorded caller's audio on the
//! recording's schedule, keeps listening between turns, and records everything the agent
//! sends with its arrival time. What the caller hears is reconstructed from those arrivals
//! (see `ear`) and every per-turn metric is measured there, at the caller's ear.

pub mod codec;
pub mod ear;
pub mod protocol;
