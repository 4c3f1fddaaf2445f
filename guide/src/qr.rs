//! QR codes as a matrix of modules, drawn by the PDF writer as vector rectangles and by the HTML
//! writer as an SVG path: vectors stay sharp at any printer resolution, and no image codec is
//! linked.

use qrcode::{Color, EcLevel, QrCode};

use crate::GuideError;

/// Modules of white border on each side, as the QR specification asks (scanners find the code
/// by it).
pub(crate) const QUIET_ZONE: usize = 4;

/// The modules of one QR code, row by row.
#[derive(Clone, Debug)]
pub(crate) struct QrMatrix {
    width: usize,
    dark: Vec<bool>,
}

impl QrMatrix {
    /// The code for `link`, error correction level M (15 %: a scuffed or folded notice still
    /// scans; H would make the modules a third smaller at the same printed size).
    pub fn encode(link: &str) -> Result<Self, GuideError> {
        let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M).map_err(|e| {
            GuideError::QrCode {
                link: link.chars().take(80).collect(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            width: code.width(),
            dark: code.to_colors().into_iter().map(|c| c == Color::Dark).collect(),
        })
    }

    /// Modules per side with the quiet zone on both sides.
    pub fn width_with_quiet_zone(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }

    /// Horizontal runs of dark modules: (row, first column, length), so a renderer draws one
    /// rectangle per run instead of one per module.
    pub fn dark_runs(&self) -> Vec<(usize, usize, usize)> {
        let mut runs = Vec::new();
        for row in 0..self.width {
            let cells = &self.dark[row * self.width..(row + 1) * self.width];
            let mut col = 0;
            while col < self.width {
                if cells[col] {
                    let start = col;
                    while col < self.width && cells[col] {
                        col += 1;
                    }
                    runs.push((row, start, col - start));
                } else {
                    col += 1;
                }
            }
        }
        runs
    }

    /// An SVG path (`d` attribute) of the dark modules, one unit per module, offset by the quiet
    /// zone so the view box `0 0 w w` (`w` = [`Self::width_with_quiet_zone`]) includes it.
    pub fn svg_path(&self) -> String {
        let mut d = String::new();
        for (row, col, len) in self.dark_runs() {
            d.push_str(&format!(
                "M{} {}h{}v1h-{}z",
                col + QUIET_ZONE,
                row + QUIET_ZONE,
                len,
                len
            ));
        }
        d
    }
}
