//! The embedded fonts and the text engine: font choice per character, shaping (rustybuzz, the
//! shaper krilla itself uses), bidirectional reordering (`unicode-bidi`) and line breaking
//! (`unicode-linebreak`, measured with the shaped advances).
//!
//! Noto Sans covers Latin (Turkish included), Greek and Cyrillic; Noto Sans Arabic covers Arabic,
//! Persian and Urdu letters with their contextual forms and ligatures. Both are compiled in
//! (SIL OFL 1.1, `guide/fonts/OFL.txt`): the library runs on phones without system fonts, and a
//! guide must look the same wherever it is made. Scripts neither font covers (CJK, Devanagari,
//! Hebrew, …) print as empty boxes; `docs/standards.md` says so.

use std::ops::Range;

use krilla::text::{Font as PdfFont, GlyphId, KrillaGlyph};
use rustybuzz::{Direction, Face, UnicodeBuffer};
use unicode_bidi::{bidi_class, BidiClass, BidiInfo, Level};
use unicode_linebreak::{linebreaks, BreakOpportunity};

static NOTO_SANS_REGULAR: &[u8] = include_bytes!("../fonts/NotoSans-Regular.ttf");
static NOTO_SANS_BOLD: &[u8] = include_bytes!("../fonts/NotoSans-Bold.ttf");
static NOTO_ARABIC_REGULAR: &[u8] = include_bytes!("../fonts/NotoSansArabic-Regular.ttf");
static NOTO_ARABIC_BOLD: &[u8] = include_bytes!("../fonts/NotoSansArabic-Bold.ttf");

/// Which of the four faces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaceId {
    Latin,
    LatinBold,
    Arabic,
    ArabicBold,
}

struct LoadedFace {
    shaper: Face<'static>,
    pdf: PdfFont,
    units_per_em: f32,
}

impl LoadedFace {
    fn load(data: &'static [u8], what: &str) -> Self {
        // The fonts are our own files, compiled in and tested: failing to read them is a build
        // mistake, not an input problem.
        let shaper = Face::from_slice(data, 0).unwrap_or_else(|| panic!("embedded font {what} parses"));
        let pdf = PdfFont::new(krilla::Data::from(data), 0)
            .unwrap_or_else(|| panic!("embedded font {what} loads in krilla"));
        let units_per_em = shaper.units_per_em() as f32;
        Self {
            shaper,
            pdf,
            units_per_em,
        }
    }

    fn has(&self, c: char) -> bool {
        self.shaper.glyph_index(c).is_some()
    }
}

/// The four faces, loaded once per rendering.
pub(crate) struct Fonts {
    latin: LoadedFace,
    latin_bold: LoadedFace,
    arabic: LoadedFace,
    arabic_bold: LoadedFace,
}

/// A shaped run of one face and one direction, its glyphs in visual order.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub face: FaceId,
    /// The run's text in logical order; glyph ranges point into it.
    pub text: String,
    pub glyphs: Vec<KrillaGlyph>,
    /// Width at size 1 (in ems).
    pub width_em: f32,
}

/// One laid-out line: runs in visual order, left to right.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    pub runs: Vec<Run>,
    pub width: f32,
    pub size: f32,
}

fn is_arabic(c: char) -> bool {
    matches!(c as u32,
        0x0600..=0x06FF | 0x0750..=0x077F | 0x0870..=0x08FF | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF)
}

/// Characters that belong to no script of their own: they stay with the run around them, so an
/// Arabic phrase with spaces and commas is shaped as one run.
fn is_neutral(c: char) -> bool {
    c.is_whitespace()
        || (c.is_ascii_punctuation() && c != '/')
        || matches!(c, '«' | '»' | '–' | '…' | '،' | '؛' | '؟')
}

impl Fonts {
    pub fn load() -> Self {
        Self {
            latin: LoadedFace::load(NOTO_SANS_REGULAR, "NotoSans-Regular"),
            latin_bold: LoadedFace::load(NOTO_SANS_BOLD, "NotoSans-Bold"),
            arabic: LoadedFace::load(NOTO_ARABIC_REGULAR, "NotoSansArabic-Regular"),
            arabic_bold: LoadedFace::load(NOTO_ARABIC_BOLD, "NotoSansArabic-Bold"),
        }
    }

    fn face(&self, id: FaceId) -> &LoadedFace {
        match id {
            FaceId::Latin => &self.latin,
            FaceId::LatinBold => &self.latin_bold,
            FaceId::Arabic => &self.arabic,
            FaceId::ArabicBold => &self.arabic_bold,
        }
    }

    pub fn pdf_font(&self, id: FaceId) -> PdfFont {
        self.face(id).pdf.clone()
    }

    /// The face for each character of `text` (by byte ranges): Arabic letters in the Arabic
    /// face, neutral characters with their neighbour, everything else in the Latin face where it
    /// has a glyph (else the Arabic face if that has one, else a box from the Latin face).
    fn face_runs(&self, text: &str, bold: bool) -> Vec<(Range<usize>, FaceId)> {
        let (latin, arabic) = if bold {
            (FaceId::LatinBold, FaceId::ArabicBold)
        } else {
            (FaceId::Latin, FaceId::Arabic)
        };
        let mut runs: Vec<(Range<usize>, FaceId)> = Vec::new();
        for (i, c) in text.char_indices() {
            let previous = runs.last().map(|(_, face)| *face);
            let face = if is_arabic(c) {
                arabic
            } else if is_neutral(c) {
                match previous {
                    Some(face) if self.face(face).has(c) => face,
                    _ => latin,
                }
            } else if self.face(latin).has(c) || !self.face(arabic).has(c) {
                latin
            } else {
                arabic
            };
            let end = i + c.len_utf8();
            match runs.last_mut() {
                Some((range, last)) if *last == face => range.end = end,
                _ => runs.push((i..end, face)),
            }
        }
        runs
    }

    /// Shapes `text` in one face and direction.
    fn shape(&self, text: &str, face: FaceId, rtl: bool) -> Run {
        let loaded = self.face(face);
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        buffer.set_direction(if rtl {
            Direction::RightToLeft
        } else {
            Direction::LeftToRight
        });
        let output = rustybuzz::shape(&loaded.shaper, &[], buffer);
        let upem = loaded.units_per_em;
        // A cluster covers the text from its own start to the next larger cluster start.
        let mut starts: Vec<usize> = output.glyph_infos().iter().map(|g| g.cluster as usize).collect();
        starts.sort_unstable();
        starts.dedup();
        let cluster_end = |start: usize| starts.iter().find(|s| **s > start).copied().unwrap_or(text.len());
        let mut width = 0.0;
        let glyphs = output
            .glyph_infos()
            .iter()
            .zip(output.glyph_positions())
            // Bidi controls (the isolates around phone numbers) have done their work in the
            // reordering; drawn, they would only clutter the extracted text.
            .filter(|(info, _)| {
                !text
                    .get(info.cluster as usize..)
                    .is_some_and(|rest| rest.starts_with(|c: char| ('\u{2066}'..='\u{2069}').contains(&c)))
            })
            .map(|(info, pos)| {
                let start = info.cluster as usize;
                width += pos.x_advance as f32 / upem;
                KrillaGlyph::new(
                    GlyphId::new(info.glyph_id),
                    pos.x_advance as f32 / upem,
                    pos.x_offset as f32 / upem,
                    pos.y_offset as f32 / upem,
                    pos.y_advance as f32 / upem,
                    start..cluster_end(start),
                    None,
                )
            })
            .collect();
        Run {
            face,
            text: if rtl {
                extraction_text(text, &starts)
            } else {
                text.to_owned()
            },
            glyphs,
            width_em: width,
        }
    }

    /// Width of `text` at size 1, shaped as it would be drawn (direction guessed per face).
    fn measure(&self, text: &str, bold: bool) -> f32 {
        self.face_runs(text, bold)
            .into_iter()
            .map(|(range, face)| {
                let rtl = matches!(face, FaceId::Arabic | FaceId::ArabicBold);
                self.shape(&text[range], face, rtl).width_em
            })
            .sum()
    }

    /// `text` broken into lines of at most `max_width` at `size`, each shaped and reordered for
    /// display. `rtl` is the paragraph direction (the guide's): it decides the order of runs
    /// of different directions on a line.
    pub fn layout(&self, text: &str, size: f32, bold: bool, max_width: f32, rtl: bool) -> Vec<Line> {
        let text = text.trim();
        if text.is_empty() {
            return Vec::new();
        }
        let limit = max_width / size;
        // Segments between break opportunities: (range, width, width without trailing
        // spaces, whether a line must end after it), each measured once.
        let mut segments: Vec<(Range<usize>, f32, f32, bool)> = Vec::new();
        let mut previous = 0;
        for (at, kind) in linebreaks(text) {
            if at > previous {
                let segment = &text[previous..at];
                let visible = self.measure(segment.trim_end(), bold);
                if visible > limit {
                    // Too wide for any line (a long link or word): cut between characters.
                    for piece in self.split_wide(text, previous..at, bold, limit) {
                        let w = self.measure(&text[piece.clone()], bold);
                        segments.push((piece, w, w, false));
                    }
                } else {
                    let width = self.measure(segment, bold);
                    segments.push((previous..at, width, visible, kind == BreakOpportunity::Mandatory));
                }
            }
            previous = at;
        }
        let mut ranges: Vec<Range<usize>> = Vec::new();
        let mut line: Option<(usize, usize, f32)> = None;
        for (range, width, visible, mandatory) in segments {
            line = match line {
                Some((start, end, used)) if used + visible > limit => {
                    ranges.push(start..end);
                    Some((range.start, range.end, width))
                }
                Some((start, _, used)) => Some((start, range.end, used + width)),
                None => Some((range.start, range.end, width)),
            };
            if mandatory {
                if let Some((start, end, _)) = line.take() {
                    ranges.push(start..end);
                }
            }
        }
        if let Some((start, end, _)) = line {
            ranges.push(start..end);
        }

        // Each paragraph takes its direction from its first letter (as HTML's `dir="auto"`): a
        // Ukrainian description in the Arabic guide reads left to right, its full stop at its
        // end. Only text without letters (a bare number) takes the guide's direction.
        let has_strong = text
            .chars()
            .any(|c| matches!(bidi_class(c), BidiClass::L | BidiClass::R | BidiClass::AL));
        let base = if rtl { Level::rtl() } else { Level::ltr() };
        let bidi = BidiInfo::new(text, (!has_strong).then_some(base));
        let Some(paragraph) = bidi.paragraphs.first() else {
            return Vec::new();
        };
        ranges
            .into_iter()
            .filter_map(|range| {
                let trimmed = trim_range(text, range);
                if trimmed.is_empty() {
                    return None;
                }
                let (levels, runs) = bidi.visual_runs(paragraph, trimmed);
                let mut shaped = Vec::new();
                for run in runs {
                    let run_rtl = levels[run.start].is_rtl();
                    let mut pieces: Vec<Run> = self
                        .face_runs(&text[run.clone()], bold)
                        .into_iter()
                        .map(|(r, face)| {
                            self.shape(&text[run.start + r.start..run.start + r.end], face, run_rtl)
                        })
                        .collect();
                    if run_rtl {
                        pieces.reverse();
                    }
                    shaped.extend(pieces);
                }
                let width = shaped.iter().map(|r| r.width_em).sum::<f32>() * size;
                Some(Line {
                    runs: shaped,
                    width,
                    size,
                })
            })
            .collect()
    }

    /// A segment wider than a line, cut into pieces that fit (a long link or word).
    fn split_wide(&self, text: &str, range: Range<usize>, bold: bool, limit: f32) -> Vec<Range<usize>> {
        let mut pieces = Vec::new();
        let mut start = range.start;
        let mut width = 0.0;
        for (i, c) in text[range.clone()].char_indices() {
            let at = range.start + i;
            let w = self.measure(c.encode_utf8(&mut [0; 4]), bold);
            if width + w > limit && at > start {
                pieces.push(start..at);
                start = at;
                width = 0.0;
            }
            width += w;
        }
        if start < range.end {
            pieces.push(start..range.end);
        }
        pieces
    }
}

/// The text krilla maps a right-to-left run's glyphs to, for copying and searching: each
/// cluster of several characters (a lam-alef ligature, a letter with its vowel marks) with its
/// characters reversed in place. Text extractors (poppler's `pdftotext`, pdf.js) read the glyphs
/// left to right and reverse right-to-left words character by character; a ligature mapped to its
/// characters in logical order would come out swapped ("اإلدخال" for "الإدخال"). Reversed here,
/// it comes out in logical order. Byte ranges stay the same, so the glyphs' ranges still fit.
fn extraction_text(text: &str, cluster_starts: &[usize]) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, start) in cluster_starts.iter().enumerate() {
        let end = cluster_starts.get(i + 1).copied().unwrap_or(text.len());
        match text.get(*start..end) {
            Some(cluster) => out.extend(cluster.chars().rev()),
            None => return text.to_owned(),
        }
    }
    if out.len() == text.len() {
        out
    } else {
        text.to_owned()
    }
}

fn trim_range(text: &str, range: Range<usize>) -> Range<usize> {
    let slice = &text[range.clone()];
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.start + slice.trim_end().len();
    if end <= start {
        start..start
    } else {
        start..end
    }
}
