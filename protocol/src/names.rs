//! The rule for display names, shared by the server (which enforces it on registration and on
//! every change) and devices (which check before sending, so a person learns at once, offline
//! too, why a name is refused).

/// Longest display name, in characters (Unicode scalar values).
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// Why a display name is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DisplayNameError {
    /// A control character (NUL, line breaks) or a text-direction override, embedding, isolate
    /// or mark, which would make a name read as something else.
    #[error(
        "display_name may not contain control characters (NUL, line breaks) or text-direction overrides"
    )]
    ForbiddenCharacter,
    #[error("display_name may have at most {MAX_DISPLAY_NAME_CHARS} characters")]
    TooLong,
}

/// Characters a display name may not hold: controls (NUL included) and the bidirectional
/// overrides, embeddings, isolates and marks that make a name read as something else.
fn forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// The display name as stored: trimmed, at most [`MAX_DISPLAY_NAME_CHARS`] characters, without
/// control or bidi-override characters; an empty (or blank) one is no name. Pseudonyms are
/// welcome: nothing checks that a name is a real one, or unique.
pub fn check_display_name(name: Option<&str>) -> Result<Option<String>, DisplayNameError> {
    let Some(name) = name.map(str::trim) else {
        return Ok(None);
    };
    if name.chars().any(forbidden_in_name) {
        return Err(DisplayNameError::ForbiddenCharacter);
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(DisplayNameError::TooLong);
    }
    Ok((!name.is_empty()).then(|| name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_refuse_controls_and_direction_overrides() {
        for bad in [
            "a\0b",
            "line\nbreak",
            "evil\u{202E}gnp.exe",
            "x\u{2066}y",
            "\u{200F}",
        ] {
            assert_eq!(
                check_display_name(Some(bad)),
                Err(DisplayNameError::ForbiddenCharacter),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_display_name(Some(&"é".repeat(65))),
            Err(DisplayNameError::TooLong)
        );
        assert_eq!(
            check_display_name(Some(&"é".repeat(64))).expect("64 characters are fine"),
            Some("é".repeat(64))
        );
        assert_eq!(
            check_display_name(Some("  Ayşe Yılmaz ")).expect("fine"),
            Some("Ayşe Yılmaz".into())
        );
        assert_eq!(
            check_display_name(Some("مريم")).expect("RTL text itself is fine"),
            Some("مريم".into())
        );
        assert_eq!(check_display_name(Some("  ")).expect("empty"), None);
        assert_eq!(check_display_name(None).expect("none"), None);
    }
}
