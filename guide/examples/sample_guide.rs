//! Writes the sample neighbourhood guide: `cargo run -p quartier-guide --example sample_guide --
//! OUT_DIR`. Produces the A4 booklet in German (`guide-de-a4.pdf`, also as `.html`), the A3
//! poster, the large-print and easy-language variants, and the guide in Turkish, Ukrainian and
//! Arabic. `docs/guide-sample.pdf` is `guide-de-a4.pdf`; `docs/guide-sample.png` its first page
//! (`pdftoppm -png -r 60 -f 1 -l 1`).

#[path = "../tests/common/sample.rs"]
mod sample;

use std::path::PathBuf;
use std::process::ExitCode;

use quartier_guide::{render_html, render_pdf, GuideOptions, PaperFormat};

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: sample_guide OUT_DIR");
        return ExitCode::from(2);
    };
    match run(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sample_guide: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let a4 = GuideOptions::default();
    let variants = [
        ("de-a4", "de", a4),
        (
            "de-a3-poster",
            "de",
            GuideOptions {
                paper: PaperFormat::A3Poster,
                ..a4
            },
        ),
        (
            "de-a4-large-print",
            "de",
            GuideOptions {
                large_print: true,
                ..a4
            },
        ),
        (
            "de-a4-easy",
            "de",
            GuideOptions {
                easy_language: true,
                ..a4
            },
        ),
        ("tr-a4", "tr", a4),
        ("uk-a4", "uk", a4),
        ("ar-a4", "ar", a4),
    ];
    for (name, language, options) in variants {
        let request = sample::request(language, options);
        let pdf = render_pdf(&request)?;
        let html = render_html(&request)?;
        let pdf_path = out.join(format!("guide-{name}.pdf"));
        std::fs::write(&pdf_path, &pdf.bytes)?;
        std::fs::write(out.join(format!("guide-{name}.html")), html.html)?;
        println!(
            "{}: {} pages, {} bytes, {} offers, {} events, {} numbers",
            pdf_path.display(),
            pdf.pages,
            pdf.bytes.len(),
            pdf.summary.offers_printed,
            pdf.summary.events_printed,
            pdf.summary.numbers_printed
        );
    }
    Ok(())
}
