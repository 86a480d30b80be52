//! Writing a report: `report.html` (inline SVG), PNG plots, `summary.md` and `summary.json`
//! side by side, all rendered from one report model.

use std::path::{Path, PathBuf};

use anyhow::Context;
use latlab_report::html::{self, Figure};
use latlab_report::model::Report;
use latlab_report::{json, markdown};

/// The files a report wrote.
pub struct Written {
    /// The HTML report.
    pub html: PathBuf,
    /// Everything else (PNGs, summary.md, summary.json).
    pub beside: Vec<PathBuf>,
}

/// Writes `html_path` and, in its folder, the PNGs, `summary.md` and `summary.json`.
pub fn write(report: &Report, html_path: &Path) -> anyhow::Result<Written> {
    let dir = html_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let plots = latlab_plots::render_svgs(&report.plots).context("rendering plots")?;
    let figures: Vec<Figure<'_>> = plots
        .iter()
        .map(|p| Figure {
            title: &p.title,
            svg: &p.svg,
        })
        .collect();
    std::fs::write(html_path, html::render(report, &figures))
        .with_context(|| format!("writing {}", html_path.display()))?;
    let mut beside = latlab_plots::write_pngs(&report.plots, &dir).context("writing PNG plots")?;
    for (name, text) in [
        (latlab_results::files::SUMMARY_MD, markdown::render(report)),
        (latlab_results::files::SUMMARY_JSON, json(report)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        beside.push(path);
    }
    Ok(Written {
        html: html_path.to_path_buf(),
        beside,
    })
}
