//! The guide as one self-contained, accessible HTML page: `lang` and `dir` on the document (and
//! `lang` on entries whose text is in another language), one `h1`, an `h2` per section and an
//! `h3` per entry, opening hours as a list, phone numbers as `tel:` links, each QR code as inline
//! SVG with `role="img"` and an alt text (`aria-label` and `<title>`) naming the entry, and the
//! link written out beside it for those who cannot scan. Print CSS sets the paper size and keeps
//! entries whole; the large-print variant is a class on `<body>` with its own sizes.

use crate::content::{Entry, GuideContent, Style};
use crate::qr::QrMatrix;
use crate::{GuideError, PaperFormat};

pub(crate) fn render(content: &GuideContent) -> Result<String, GuideError> {
    let labels = content.labels;
    let dir = if content.rtl { "rtl" } else { "ltr" };
    let mut classes = vec![match content.options.paper {
        PaperFormat::A4Booklet => "a4",
        PaperFormat::A3Poster => "a3",
    }];
    if content.options.large_print {
        classes.push("large-print");
    }
    if content.options.easy_language {
        classes.push("easy-language");
    }
    let page_size = match content.options.paper {
        PaperFormat::A4Booklet => "A4",
        PaperFormat::A3Poster => "A3",
    };
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"{}\" dir=\"{dir}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} – {}</title>\n<style>\n{}@page {{ size: {page_size} portrait; margin: 14mm; }}\n</style>\n</head>\n",
        esc(&content.language),
        esc(labels.guide_title),
        esc(&content.space_name),
        CSS,
    ));
    out.push_str(&format!("<body class=\"{}\">\n<header>\n", classes.join(" ")));
    out.push_str(&format!(
        "<p class=\"kicker\">{}</p>\n<h1>{}</h1>\n<p class=\"dates\">{}</p>\n<p class=\"hint\">{}</p>\n</header>\n<main>\n",
        esc(labels.guide_title),
        esc(&content.space_name),
        esc(&content.dates),
        esc(labels.scan_hint)
    ));

    if !content.numbers.is_empty() {
        out.push_str(&format!(
            "<section class=\"numbers\" aria-labelledby=\"numbers\">\n<h2 id=\"numbers\">{}</h2>\n<ul>\n",
            esc(labels.numbers)
        ));
        for number in &content.numbers {
            out.push_str(&format!(
                "<li>{}{}<a href=\"tel:{}\">{}</a></li>\n",
                esc(&number.label),
                if number.label.is_empty() { "" } else { ": " },
                esc(&dial(&number.number)),
                esc(&number.number)
            ));
        }
        out.push_str("</ul>\n</section>\n");
    }
    section(&mut out, "offers", labels.offers, &content.offers, content);
    section(&mut out, "events", labels.events, &content.events, content);
    if let Some(note) = &content.left_out {
        out.push_str(&format!("<p class=\"left-out\">{}</p>\n", esc(note)));
    }
    out.push_str("</main>\n</body>\n</html>\n");
    Ok(out)
}

fn section(out: &mut String, id: &str, title: &str, entries: &[Entry], content: &GuideContent) {
    if entries.is_empty() {
        return;
    }
    out.push_str(&format!(
        "<section class=\"{id}\" aria-labelledby=\"{id}\">\n<h2 id=\"{id}\">{}</h2>\n",
        esc(title)
    ));
    for entry in entries {
        entry_html(out, entry, content);
    }
    out.push_str("</section>\n");
}

fn entry_html(out: &mut String, entry: &Entry, content: &GuideContent) {
    let same = entry.lang.split('-').next() == content.language.split('-').next();
    let lang = if same {
        String::new()
    } else {
        format!(" lang=\"{}\"", esc(&entry.lang))
    };
    out.push_str(&format!("<article{lang}>\n"));
    out.push_str(&qr_svg(&entry.qr, &entry.qr_alt));
    out.push_str(&format!("<h3>{}</h3>\n", esc(&entry.title)));
    let mut in_list = false;
    for paragraph in &entry.paragraphs {
        let is_time = paragraph.style == Style::Times;
        if is_time && !in_list {
            out.push_str("<ul class=\"times\">\n");
            in_list = true;
        }
        if !is_time && in_list {
            out.push_str("</ul>\n");
            in_list = false;
        }
        let class = match paragraph.style {
            Style::Meta => "meta",
            Style::Label => "label",
            Style::Times => "",
            Style::Body => "body",
            Style::Contact => "contact",
        };
        if is_time {
            out.push_str(&format!("<li>{}</li>\n", esc(&paragraph.text)));
        } else {
            out.push_str(&format!("<p class=\"{class}\">{}</p>\n", esc(&paragraph.text)));
        }
    }
    if in_list {
        out.push_str("</ul>\n");
    }
    out.push_str(&format!(
        "<p class=\"link\"><a href=\"{0}\" dir=\"ltr\">{0}</a></p>\n</article>\n",
        esc(&entry.link)
    ));
}

/// The QR code as inline SVG: crisp at any zoom and printer, no image file to ship.
fn qr_svg(qr: &QrMatrix, alt: &str) -> String {
    let size = qr.width_with_quiet_zone();
    format!(
        "<svg class=\"qr\" role=\"img\" aria-label=\"{0}\" viewBox=\"0 0 {size} {size}\" \
         xmlns=\"http://www.w3.org/2000/svg\" shape-rendering=\"crispEdges\">\
         <title>{0}</title><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path d=\"{1}\" fill=\"#000\"/></svg>\n",
        esc(alt),
        qr.svg_path()
    )
}

/// The number as dialled: digits and a leading plus.
fn dial(number: &str) -> String {
    number
        .chars()
        .enumerate()
        .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
        .map(|(_, c)| c)
        .collect()
}

/// Text escaped for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Screen and print styles. Logical properties (`margin-inline-start`, `float: inline-end`)
/// mirror the layout for right to left without a second stylesheet.
const CSS: &str = r#"body { font-family: "Noto Sans", "Noto Sans Arabic", "DejaVu Sans", sans-serif; font-size: 11pt; line-height: 1.4; color: #1b1b1b; margin: 0 auto; max-width: 60rem; padding: 1rem; }
h1 { font-size: 2em; color: #1f4e79; margin: 0.1em 0; }
h2 { font-size: 1.45em; color: #1f4e79; border-bottom: 2px solid #1f4e79; margin-top: 1.2em; }
h3 { font-size: 1.15em; color: #1f4e79; margin: 0 0 0.2em; }
.kicker, .hint, .meta { color: #454545; }
.kicker { margin: 0; font-weight: bold; }
.dates { font-size: 1.15em; margin: 0.2em 0; }
article { border-bottom: 1px solid #b8b8b8; padding: 0.6em 0; overflow: hidden; break-inside: avoid; page-break-inside: avoid; }
article p, article ul { margin: 0.15em 0; }
ul.times { list-style: none; padding: 0; }
.label { font-weight: bold; }
svg.qr { float: inline-end; width: 22mm; height: 22mm; margin-inline-start: 0.8em; }
.link a { color: #1f4e79; word-break: break-all; font-size: 0.85em; }
.numbers ul { padding-inline-start: 1.2em; }
.left-out { font-weight: bold; color: #454545; }
body.large-print { font-size: 16pt; line-height: 1.5; }
body.large-print svg.qr { width: 32mm; height: 32mm; }
body.a3 { font-size: 13pt; }
body.a3.large-print { font-size: 20pt; }
@media print {
  body { max-width: none; padding: 0; }
  body.a4:not(.large-print) main { columns: 2; column-gap: 6mm; }
  body.a3:not(.large-print) main { columns: 3; column-gap: 8mm; }
  body.a3.large-print main { columns: 2; column-gap: 8mm; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .link a { color: inherit; text-decoration: none; }
}
"#;
