//! latlab's exit codes, and the errors that choose them. Documented in `docs/scenarios.md`
//! ("Exit codes") and the README.
//!
//! A code says what a script needs to know without reading the output: the command did its
//! job (0), judged the results a failure (1), could not do its job (2), ran but measured no
//! successful turn (3), or was interrupted (130, as shells report Ctrl-C).

/// The command did what it was asked.
pub const SUCCESS: u8 = 0;
/// `latlab gate`: a target failed or a stage regressed.
pub const GATE_FAILED: u8 = 1;
/// A usage or data error: a bad scenario, a missing file, a backend that could not be built.
pub const ERROR: u8 = 2;
/// `latlab run`: a scenario ran to its end but no turn succeeded (every turn failed, or none
/// was recorded), or its camera streams ran without one frame processed; its results folder
/// and the error breakdown say why.
pub const NO_TURN_SUCCEEDED: u8 = 3;
/// `latlab run`: interrupted by Ctrl-C or SIGTERM; the results so far are written, and no
/// further scenario of a suite started.
pub const INTERRUPTED: u8 = 130;

/// `latlab run` was interrupted (exit code [`INTERRUPTED`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "interrupted (Ctrl-C or SIGTERM) after {ran} of {of} scenario(s); the results so far are written"
)]
pub struct Interrupted {
    /// Scenarios that ran (the last one partly).
    pub ran: usize,
    /// Scenarios in the suite.
    pub of: usize,
}

/// Scenarios that ran to their end without one successful turn (exit code
/// [`NO_TURN_SUCCEEDED`]).
#[derive(Debug, thiserror::Error)]
#[error("no turn succeeded in {} (or, with camera streams, no frame): see the errors by stage above", .0.join(", "))]
pub struct NoTurnSucceeded(
    /// Each such scenario, with its results folder.
    pub Vec<String>,
);

/// The exit code an error chooses.
pub fn code_of(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<crate::gate::Failed>().is_some() {
        GATE_FAILED
    } else if e.downcast_ref::<Interrupted>().is_some() {
        INTERRUPTED
    } else if e.downcast_ref::<NoTurnSucceeded>().is_some() {
        NO_TURN_SUCCEEDED
    } else {
        ERROR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ending_has_its_own_code() {
        let codes = [
            code_of(&crate::gate::Failed.into()),
            code_of(&anyhow::anyhow!("bad scenario")),
            code_of(&NoTurnSucceeded(vec!["t".into()]).into()),
            code_of(&Interrupted { ran: 1, of: 2 }.into()),
        ];
        assert_eq!(codes, [GATE_FAILED, ERROR, NO_TURN_SUCCEEDED, INTERRUPTED]);
        assert!(!codes.contains(&SUCCESS));
    }
}
