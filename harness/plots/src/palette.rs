//! Colours and display names shared by every plot, so that one series, one stage and one
//! stage boundary look the same wherever they appear in a report.

use latlab_report::model::PlotData;
use plotters::style::RGBColor;

/// Series colours (Tableau 10: distinguishable, and mostly colour-blind safe), by the order
/// in which a label first appears in the report's plot data.
const SERIES: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0xba, 0xb0, 0xac),
];

/// Colours for boundaries this module does not know, handed out in order of appearance.
const EXTRA: [RGBColor; 6] = [
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xd3, 0x72, 0x95),
    RGBColor(0xa0, 0xcb, 0xe8),
];

/// Stage hues; a stage's boundaries are shades of its hue so the waterfall reads by stage.
const ENDPOINT: RGBColor = RGBColor(0xb0, 0x7a, 0xa1);
const STT: RGBColor = RGBColor(0x4e, 0x79, 0xa7);
const LLM: RGBColor = RGBColor(0xf2, 0x8e, 0x2b);
const TTS: RGBColor = RGBColor(0x59, 0xa1, 0x4f);
const TOOL: RGBColor = RGBColor(0x76, 0xb7, 0xb2);
const TURN: RGBColor = RGBColor(0x79, 0x70, 0x6e);

/// Colours of runs in the machine plot, in run order: not the profiles' colours, since the
/// machine is shared by every profile of a run.
const MACHINE: [RGBColor; 4] = [
    RGBColor(0x34, 0x49, 0x5e),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x9c, 0x75, 0x5f),
];

/// Colour of the `index`-th run in the machine plot.
pub(crate) fn machine_colour(index: usize) -> RGBColor {
    MACHINE[index % MACHINE.len()]
}

/// `colour` two thirds of the way to white: a line that is one of many.
pub(crate) fn faint(colour: RGBColor) -> RGBColor {
    let towards_white = |c: u8| c + ((255 - c) as f64 * 0.65).round() as u8;
    RGBColor(
        towards_white(colour.0),
        towards_white(colour.1),
        towards_white(colour.2),
    )
}

/// Colour of a series, keyed by label so every plot of one report agrees.
pub(crate) struct SeriesColours {
    labels: Vec<String>,
}

impl SeriesColours {
    /// Numbers the labels in order of first appearance: CDF, waterfall, over time,
    /// histograms, pareto, frame CDF, FPS over time.
    pub(crate) fn from_plot_data(plots: &PlotData) -> Self {
        let mut labels: Vec<String> = Vec::new();
        let all = plots
            .cdf
            .iter()
            .map(|s| &s.label)
            .chain(plots.waterfall.iter().map(|b| &b.label))
            .chain(plots.over_time.iter().map(|t| &t.label))
            .chain(
                plots
                    .histograms
                    .iter()
                    .flat_map(|h| h.series.iter().map(|(label, _)| label)),
            )
            .chain(plots.pareto.iter().map(|p| &p.label))
            .chain(plots.frame_cdf.iter().map(|s| &s.label))
            .chain(plots.fps_over_time.iter().map(|s| &s.label));
        for label in all {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
        Self { labels }
    }

    /// The series' colour; a label never seen gets the colour after the known ones.
    pub(crate) fn colour(&self, label: &str) -> RGBColor {
        let index = self
            .labels
            .iter()
            .position(|l| l == label)
            .unwrap_or(self.labels.len());
        SERIES[index % SERIES.len()]
    }
}

/// Colour of a stage (`endpoint`, `stt`, `llm`, `tool`, `tts`, `turn`).
pub(crate) fn stage_colour(stage: &str) -> RGBColor {
    match stage {
        "endpoint" => ENDPOINT,
        "stt" => STT,
        "llm" => LLM,
        "tool" => TOOL,
        "tts" => TTS,
        _ => TURN,
    }
}

/// Colour of a known stage boundary: a shade of the stage it belongs to.
fn known_boundary_colour(name: &str) -> Option<RGBColor> {
    Some(match name {
        "speech_end_detected" => ENDPOINT,
        "final_transcript" => STT,
        "llm_request_sent" => RGBColor(0xff, 0xbe, 0x7d),
        "llm_first_token" => LLM,
        "first_sentence" => RGBColor(0xb6, 0x65, 0x1a),
        "tts_request_sent" => RGBColor(0x8c, 0xd1, 0x7d),
        "tts_first_byte" => TTS,
        "tts_first_audible" => RGBColor(0x2f, 0x6b, 0x2a),
        "tts_done" => RGBColor(0xba, 0xb0, 0xac),
        _ => return None,
    })
}

/// Colours of boundaries in one report: known names have fixed colours, others are
/// numbered in order of first appearance.
pub(crate) struct BoundaryColours {
    unknown: Vec<String>,
}

impl BoundaryColours {
    /// Collects the unknown boundary names in order of first appearance.
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut unknown: Vec<String> = Vec::new();
        for name in names {
            if known_boundary_colour(name).is_none() && !unknown.iter().any(|u| u == name) {
                unknown.push(name.to_owned());
            }
        }
        Self { unknown }
    }

    /// The boundary's colour.
    pub(crate) fn colour(&self, name: &str) -> RGBColor {
        known_boundary_colour(name).unwrap_or_else(|| {
            let index = self
                .unknown
                .iter()
                .position(|u| u == name)
                .unwrap_or(self.unknown.len());
            EXTRA[index % EXTRA.len()]
        })
    }
}

/// A boundary name for people: `llm_first_token` → `LLM first token`.
pub(crate) fn boundary_display_name(name: &str) -> String {
    match name {
        "speech_end_detected" => "end of speech detected".to_owned(),
        "tts_first_audible" => "TTS first audible (voice-to-voice)".to_owned(),
        _ => name
            .split('_')
            .filter(|w| !w.is_empty())
            .map(|w| match w {
                "llm" | "tts" | "stt" | "vad" | "asr" => w.to_uppercase(),
                _ => w.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// A stage name for titles: `llm` → `LLM`, `turn` → `Voice-to-voice`.
pub(crate) fn stage_display_name(stage: &str) -> String {
    match stage {
        "endpoint" => "Endpointing".to_owned(),
        "stt" | "llm" | "tts" | "vad" => stage.to_uppercase(),
        "turn" => "Voice-to-voice".to_owned(),
        _ => {
            let readable = stage.replace('_', " ");
            let mut chars = readable.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => "Stage".to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_names_read_as_words() {
        assert_eq!(boundary_display_name("llm_first_token"), "LLM first token");
        assert_eq!(
            boundary_display_name("speech_end_detected"),
            "end of speech detected"
        );
        assert_eq!(boundary_display_name("my__odd_name"), "my odd name");
    }

    #[test]
    fn stage_names_read_as_words() {
        assert_eq!(stage_display_name("llm"), "LLM");
        assert_eq!(stage_display_name("turn"), "Voice-to-voice");
        assert_eq!(stage_display_name("barge_in"), "Barge in");
        assert_eq!(stage_display_name(""), "Stage");
    }

    #[test]
    fn unknown_boundaries_get_distinct_colours_in_order() {
        let colours = BoundaryColours::new(["final_transcript", "a", "b", "a"]);
        assert_eq!(colours.colour("final_transcript"), STT);
        assert_eq!(colours.colour("a"), EXTRA[0]);
        assert_eq!(colours.colour("b"), EXTRA[1]);
    }

    #[test]
    fn series_colours_follow_first_appearance() {
        let mut plots = PlotData::default();
        plots.pareto.push(latlab_report::model::ParetoPoint {
            label: "b".into(),
            p90: 1.0,
            p95: 2.0,
            p90_ci: None,
            p95_ci: None,
            count: 0,
            wer: 0.1,
        });
        plots.cdf.push(latlab_report::model::CdfSeries {
            label: "a".into(),
            points: vec![],
            p90: 1.0,
            p95: 1.0,
            p90_ci: None,
            p95_ci: None,
            count: 0,
        });
        let colours = SeriesColours::from_plot_data(&plots);
        assert_eq!(colours.colour("a"), SERIES[0]);
        assert_eq!(colours.colour("b"), SERIES[1]);
        assert_eq!(colours.colour("never seen"), SERIES[2]);
    }
}
