//! Drawing the laid-out pages with krilla: text as shaped glyphs of the embedded (subsetted)
//! fonts with their Unicode mapping, so the PDF's text can be searched, copied and read aloud;
//! QR codes as filled rectangles, with a link annotation over each so a reader of the PDF on
//! screen can tap it.

use krilla::action::{Action, LinkAction};
use krilla::annotation::{Annotation, LinkAnnotation, Target};
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::{Metadata, TextDirection};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule};
use krilla::surface::Surface;
use krilla::Document;

use crate::content::GuideContent;
use crate::fonts::{Fonts, Line};
use crate::layout::{layout, Draw, Geometry, Rgb, MUTED};
use crate::qr::{QrMatrix, QUIET_ZONE};
use crate::GuideError;

/// The PDF's bytes and its page count.
pub(crate) fn render(content: &GuideContent) -> Result<(Vec<u8>, usize), GuideError> {
    let fonts = Fonts::load();
    let (geo, pages) = layout(content, &fonts);
    let total = pages.len();
    let mut document = Document::new();
    let title = format!("{} – {}", content.labels.guide_title, content.space_name);
    let mut metadata = Metadata::new()
        .title(title.clone())
        .language(content.language.clone())
        .creator("Quartier".to_owned());
    if content.rtl {
        metadata = metadata.text_direction(TextDirection::RightToLeft);
    }
    document.set_metadata(metadata);

    for (index, draws) in pages.into_iter().enumerate() {
        let settings = PageSettings::from_wh(geo.width, geo.height)
            .ok_or_else(|| GuideError::Pdf("the page size is not positive".to_owned()))?;
        let mut page = document.start_page_with(settings);
        let mut links = Vec::new();
        {
            let mut surface = page.surface();
            for draw in &draws {
                match draw {
                    Draw::Text {
                        x,
                        baseline,
                        line,
                        color,
                    } => draw_line(&mut surface, &fonts, line, *x, *baseline, *color),
                    Draw::Rect { x, y, w, h, color } => fill_rect(&mut surface, *x, *y, *w, *h, *color),
                    Draw::Qr {
                        x,
                        y,
                        size,
                        qr,
                        link,
                        alt,
                    } => {
                        draw_qr(&mut surface, qr, *x, *y, *size);
                        links.push((*x, *y, *size, link.clone(), alt.clone()));
                    }
                }
            }
            footer(&mut surface, &fonts, &geo, content, &title, index + 1, total);
            surface.finish();
        }
        for (x, y, size, link, alt) in links {
            if let Some(rect) = Rect::from_xywh(x, y, size, size) {
                let target = Target::Action(Action::Link(LinkAction::new(link)));
                page.add_annotation(Annotation::new_link(LinkAnnotation::new(rect, target), Some(alt)));
            }
        }
        page.finish();
    }
    let bytes = document.finish().map_err(|e| GuideError::Pdf(format!("{e:?}")))?;
    Ok((bytes, total))
}

fn fill_of(color: Rgb) -> Fill {
    Fill {
        paint: rgb::Color::new(color.0, color.1, color.2).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

fn draw_line(surface: &mut Surface<'_>, fonts: &Fonts, line: &Line, x: f32, baseline: f32, color: Rgb) {
    surface.set_fill(Some(fill_of(color)));
    let mut cursor = x;
    for run in &line.runs {
        surface.draw_glyphs(
            Point::from_xy(cursor, baseline),
            &run.glyphs,
            fonts.pdf_font(run.face),
            &run.text,
            line.size,
            false,
        );
        cursor += run.width_em * line.size;
    }
}

fn fill_rect(surface: &mut Surface<'_>, x: f32, y: f32, w: f32, h: f32, color: Rgb) {
    let mut builder = PathBuilder::new();
    if let Some(rect) = Rect::from_xywh(x, y, w, h) {
        builder.push_rect(rect);
    }
    if let Some(path) = builder.finish() {
        surface.set_fill(Some(fill_of(color)));
        surface.draw_path(&path);
    }
}

/// The code's dark modules as one path of rectangles (a run of modules per rectangle), black on
/// the white page, the quiet zone left blank inside `size`.
fn draw_qr(surface: &mut Surface<'_>, qr: &QrMatrix, x: f32, y: f32, size: f32) {
    let module = size / qr.width_with_quiet_zone() as f32;
    let origin = QUIET_ZONE as f32 * module;
    let mut builder = PathBuilder::new();
    for (row, col, len) in qr.dark_runs() {
        // A hair wider than the module, so antialiasing leaves no seams between rows.
        if let Some(rect) = Rect::from_xywh(
            x + origin + col as f32 * module,
            y + origin + row as f32 * module,
            len as f32 * module,
            module + 0.01,
        ) {
            builder.push_rect(rect);
        }
    }
    if let Some(path) = builder.finish() {
        surface.set_fill(Some(fill_of(Rgb(0, 0, 0))));
        surface.draw_path(&path);
    }
}

/// "Seite 2 / 5 · Nachbarschaftsführer – Nordstadt", centred at the bottom of every page.
fn footer(
    surface: &mut Surface<'_>,
    fonts: &Fonts,
    geo: &Geometry,
    content: &GuideContent,
    title: &str,
    page: usize,
    total: usize,
) {
    let text = format!("{} {page} / {total} · {title}", content.labels.page);
    let width = geo.width - 2.0 * geo.margin;
    let lines = fonts.layout(&text, geo.footer, false, width, content.rtl);
    if let Some(line) = lines.into_iter().next() {
        let x = (geo.width - line.width) / 2.0;
        let baseline = geo.height - geo.margin;
        draw_line(surface, fonts, &line, x, baseline, MUTED);
    }
}
