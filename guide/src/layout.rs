//! Page layout for the PDF: the guide's content flowed into columns and pages as a list of
//! positioned lines, rectangles and QR codes per page, which `pdf.rs` then draws. Kept apart from
//! drawing so the layout decisions (sizes, columns, where a page breaks) read in one place.
//!
//! Every entry is a block kept whole in one column (a reader should not turn the page in the
//! middle of an address); a section heading stays with its first entry; a block taller than a
//! whole column (only possible with extreme texts in large print) is cut with "…". Right to
//! left mirrors everything: columns fill from the right, text is right-aligned, the QR code sits
//! on the left.

use crate::content::{isolate, Entry, GuideContent, Style};
use crate::fonts::{Fonts, Line};
use crate::qr::QrMatrix;
use crate::PaperFormat;

/// An RGB colour.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rgb(pub u8, pub u8, pub u8);

pub(crate) const INK: Rgb = Rgb(0x1b, 0x1b, 0x1b);
pub(crate) const ACCENT: Rgb = Rgb(0x1f, 0x4e, 0x79);
pub(crate) const MUTED: Rgb = Rgb(0x45, 0x45, 0x45);
const RULE: Rgb = Rgb(0xb8, 0xb8, 0xb8);

/// One thing to draw, positioned from the page's top-left corner (points).
#[derive(Clone, Debug)]
pub(crate) enum Draw {
    Text {
        x: f32,
        baseline: f32,
        line: Line,
        color: Rgb,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: Rgb,
    },
    Qr {
        x: f32,
        y: f32,
        size: f32,
        qr: QrMatrix,
        link: String,
        alt: String,
    },
}

impl Draw {
    fn moved(mut self, dx: f32, dy: f32) -> Self {
        match &mut self {
            Draw::Text { x, baseline, .. } => {
                *x += dx;
                *baseline += dy;
            }
            Draw::Rect { x, y, .. } | Draw::Qr { x, y, .. } => {
                *x += dx;
                *y += dy;
            }
        }
        self
    }
}

/// Sizes of one variant, in points.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub width: f32,
    pub height: f32,
    pub margin: f32,
    pub columns: usize,
    pub gap: f32,
    pub body: f32,
    pub meta: f32,
    pub entry_title: f32,
    pub heading: f32,
    pub title: f32,
    pub qr: f32,
    pub leading: f32,
    pub footer: f32,
}

impl Geometry {
    /// A4 text at 9.5 pt in two columns is what printed city guides use; large print follows the
    /// usual advice for low vision (16 pt and more, one column, generous leading); the A3 poster
    /// is read a step away, so everything is a third larger again, in three columns.
    pub fn for_variant(paper: PaperFormat, large_print: bool) -> Self {
        let (width, height, margin, gap) = match paper {
            PaperFormat::A4Booklet => (595.28, 841.89, 36.0, 18.0),
            PaperFormat::A3Poster => (841.89, 1190.55, 48.0, 24.0),
        };
        let (columns, body, qr) = match (paper, large_print) {
            (PaperFormat::A4Booklet, false) => (2, 9.5, 62.0),
            (PaperFormat::A4Booklet, true) => (1, 16.0, 90.0),
            (PaperFormat::A3Poster, false) => (3, 12.5, 84.0),
            (PaperFormat::A3Poster, true) => (2, 20.0, 110.0),
        };
        Self {
            width,
            height,
            margin,
            columns,
            gap,
            body,
            meta: body * 0.95,
            entry_title: body * 1.22,
            heading: body * 1.6,
            title: body * 2.4,
            qr,
            leading: if large_print { 1.4 } else { 1.3 },
            footer: (body * 0.8).max(8.0),
        }
    }

    pub fn column_width(&self) -> f32 {
        let columns = self.columns as f32;
        (self.width - 2.0 * self.margin - (columns - 1.0) * self.gap) / columns
    }

    fn bottom(&self) -> f32 {
        self.height - self.margin - self.footer * 2.2
    }
}

/// A block: draws relative to its top-left corner, and its height.
struct Block {
    draws: Vec<Draw>,
    height: f32,
}

/// The flow of blocks through columns and pages.
struct Flow<'a> {
    fonts: &'a Fonts,
    geo: Geometry,
    rtl: bool,
    pages: Vec<Vec<Draw>>,
    column: usize,
    top: f32,
    y: f32,
}

impl<'a> Flow<'a> {
    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.column = 0;
        self.top = self.geo.margin;
        self.y = self.top;
    }

    fn next_column(&mut self) {
        if self.column + 1 < self.geo.columns {
            self.column += 1;
            self.y = self.top;
        } else {
            self.new_page();
        }
    }

    fn column_x(&self) -> f32 {
        let index = if self.rtl {
            self.geo.columns - 1 - self.column
        } else {
            self.column
        };
        self.geo.margin + index as f32 * (self.geo.column_width() + self.geo.gap)
    }

    fn room(&self) -> f32 {
        self.geo.bottom() - self.y
    }

    /// Places a block in the current column, or the next one when it does not fit (together
    /// with `keep` more points, for a heading and its first entry).
    fn place(&mut self, block: Block, keep: f32) {
        if block.height + keep > self.room() && self.y > self.top {
            self.next_column();
        }
        let (dx, dy) = (self.column_x(), self.y);
        if let Some(page) = self.pages.last_mut() {
            page.extend(block.draws.into_iter().map(|d| d.moved(dx, dy)));
        }
        self.y += block.height;
    }

    /// Lays out paragraphs aligned to the reading start (left, or right for right to left):
    /// paragraphs starting above `narrow_until` (a QR code beside them) within `narrow`
    /// (x, width), the rest within `full`. Returns the draws and the height used; stops before
    /// `max_height`, ending with "…".
    fn text_lines(
        &self,
        paragraphs: &[(String, f32, bool, Rgb, f32)],
        narrow: (f32, f32),
        narrow_until: f32,
        full: (f32, f32),
        max_height: f32,
    ) -> (Vec<Draw>, f32) {
        let mut draws = Vec::new();
        let mut y = 0.0;
        'paragraphs: for (text, size, bold, color, space_before) in paragraphs {
            if !draws.is_empty() {
                y += space_before;
            }
            let (x, width) = if y < narrow_until { narrow } else { full };
            for line in self.fonts.layout(text, *size, *bold, width, self.rtl) {
                let height = size * self.geo.leading;
                if y + height > max_height {
                    let ellipsis = self.fonts.layout("…", *size, false, width, self.rtl);
                    draws.extend(
                        ellipsis
                            .into_iter()
                            .map(|line| self.aligned(line, x, width, y, INK)),
                    );
                    y += height;
                    break 'paragraphs;
                }
                draws.push(self.aligned(line, x, width, y, *color));
                y += height;
            }
        }
        (draws, y)
    }

    fn aligned(&self, line: Line, x: f32, width: f32, y: f32, color: Rgb) -> Draw {
        let baseline = y + line.size * 1.02;
        let x = if self.rtl { x + width - line.width } else { x };
        Draw::Text {
            x,
            baseline,
            line,
            color,
        }
    }

    fn column_height(&self) -> f32 {
        self.geo.bottom() - self.geo.margin
    }

    fn heading(&self, text: &str) -> Block {
        let geo = self.geo;
        let width = geo.column_width();
        let (mut draws, height) = self.text_lines(
            &[(text.to_owned(), geo.heading, true, ACCENT, 0.0)],
            (0.0, width),
            0.0,
            (0.0, width),
            self.column_height(),
        );
        draws.push(Draw::Rect {
            x: 0.0,
            y: height + 1.0,
            w: width,
            h: 1.6,
            color: ACCENT,
        });
        Block {
            draws,
            height: height + geo.body * 1.1,
        }
    }

    /// An entry: its title across the column, then the QR code at the column's end side with
    /// the first paragraphs beside it and the rest below it at full width. A long title never
    /// has to squeeze beside the code (German compounds would be cut mid-word in a poster's
    /// narrow columns).
    fn entry(&self, entry: &Entry) -> Block {
        let geo = self.geo;
        let width = geo.column_width();
        let qr_gap = geo.body * 0.8;
        let padding = geo.body * 0.6;
        let max = self.column_height() - 2.0 * padding;
        let (title, title_height) = self.text_lines(
            &[(entry.title.clone(), geo.entry_title, true, ACCENT, 0.0)],
            (0.0, width),
            0.0,
            (0.0, width),
            max,
        );
        let qr_top = title_height + geo.body * 0.2;
        let mut paragraphs = Vec::new();
        for p in &entry.paragraphs {
            let (size, bold, color, before) = match p.style {
                Style::Meta => (geo.meta, false, MUTED, 0.0),
                Style::Label => (geo.meta, true, INK, geo.body * 0.25),
                Style::Times => (geo.body, false, INK, 0.0),
                Style::Body => (geo.body, false, INK, geo.body * 0.25),
                Style::Contact => (geo.meta, false, INK, 0.0),
            };
            paragraphs.push((p.text.clone(), size, bold, color, before));
        }
        let narrow_x = if self.rtl { geo.qr + qr_gap } else { 0.0 };
        let (rest, rest_height) = self.text_lines(
            &paragraphs,
            (narrow_x, width - geo.qr - qr_gap),
            geo.qr,
            (0.0, width),
            (max - qr_top).max(0.0),
        );
        let content_height = qr_top + rest_height.max(geo.qr);
        let mut draws = title;
        draws.extend(rest.into_iter().map(|d| d.moved(0.0, qr_top)));
        draws.push(Draw::Qr {
            x: if self.rtl { 0.0 } else { width - geo.qr },
            y: qr_top,
            size: geo.qr,
            qr: entry.qr.clone(),
            link: entry.link.clone(),
            alt: entry.qr_alt.clone(),
        });
        let mut draws: Vec<Draw> = draws.into_iter().map(|d| d.moved(0.0, padding)).collect();
        draws.push(Draw::Rect {
            x: 0.0,
            y: content_height + 2.0 * padding,
            w: width,
            h: 0.5,
            color: RULE,
        });
        Block {
            draws,
            height: content_height + 2.0 * padding + 0.5,
        }
    }

    fn simple(&self, text: &str, size: f32, bold: bool, color: Rgb, after: f32) -> Block {
        let (draws, height) = self.text_lines(
            &[(text.to_owned(), size, bold, color, 0.0)],
            (0.0, self.geo.column_width()),
            0.0,
            (0.0, self.geo.column_width()),
            self.column_height(),
        );
        Block {
            draws,
            height: height + after,
        }
    }

    fn section(&mut self, title: &str, blocks: Vec<Block>) {
        let mut blocks = blocks.into_iter();
        let Some(first) = blocks.next() else {
            return;
        };
        if self.y > self.top {
            self.y += self.geo.body;
        }
        let heading = self.heading(title);
        self.place(heading, first.height);
        self.place(first, 0.0);
        for block in blocks {
            self.place(block, 0.0);
        }
    }
}

/// The guide laid out: the draws of each page (footers are added when drawing, once the page
/// count is known).
pub(crate) fn layout(content: &GuideContent, fonts: &Fonts) -> (Geometry, Vec<Vec<Draw>>) {
    let geo = Geometry::for_variant(content.options.paper, content.options.large_print);
    let mut flow = Flow {
        fonts,
        geo,
        rtl: content.rtl,
        pages: Vec::new(),
        column: 0,
        top: geo.margin,
        y: geo.margin,
    };
    flow.new_page();

    // The title across the whole width of the first page.
    let full = geo.width - 2.0 * geo.margin;
    let labels = content.labels;
    let (title_draws, height) = flow.text_lines(
        &[
            (labels.guide_title.to_owned(), geo.heading, true, MUTED, 0.0),
            (content.space_name.clone(), geo.title, true, ACCENT, 0.0),
            (content.dates.clone(), geo.entry_title, false, INK, geo.body * 0.3),
            (
                labels.scan_hint.to_owned(),
                geo.body,
                false,
                MUTED,
                geo.body * 0.3,
            ),
        ],
        (0.0, full),
        0.0,
        (0.0, full),
        geo.height / 2.0,
    );
    let mut page_one: Vec<Draw> = title_draws
        .into_iter()
        .map(|d| d.moved(geo.margin, geo.margin))
        .collect();
    let rule_y = geo.margin + height + geo.body * 0.6;
    page_one.push(Draw::Rect {
        x: geo.margin,
        y: rule_y,
        w: full,
        h: 2.5,
        color: ACCENT,
    });
    if let Some(page) = flow.pages.last_mut() {
        page.extend(page_one);
    }
    flow.top = rule_y + geo.body * 1.6;
    flow.y = flow.top;

    // Phone numbers first: short, and the one thing that must never be on page seven.
    let numbers: Vec<Block> = content
        .numbers
        .iter()
        .map(|n| {
            let text = if n.label.is_empty() {
                isolate(&n.number)
            } else {
                format!("{}: {}", n.label, isolate(&n.number))
            };
            flow.simple(&text, geo.body, false, INK, geo.body * 0.35)
        })
        .collect();
    flow.section(labels.numbers, numbers);
    let offers: Vec<Block> = content.offers.iter().map(|e| flow.entry(e)).collect();
    flow.section(labels.offers, offers);
    let events: Vec<Block> = content.events.iter().map(|e| flow.entry(e)).collect();
    flow.section(labels.events, events);
    if let Some(note) = &content.left_out {
        flow.y += geo.body;
        let block = flow.simple(note, geo.body, true, MUTED, 0.0);
        flow.place(block, 0.0);
    }
    (geo, flow.pages)
}
