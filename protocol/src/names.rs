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
    /// Only invisible or punctuation characters: the name would look blank, or like nothing.
    #[error("display_name needs at least one letter, digit or symbol")]
    NothingVisible,
}

/// Characters a display name may not hold: controls (NUL included), line and paragraph
/// separators, the bidirectional overrides, embeddings, isolates and marks that make a name read
/// as something else, and invisible characters (zero-width spaces, word joiners, soft hyphens,
/// byte-order marks, tags, fillers that render blank) that would let `Ada\u{200B}` pass for the
/// coordinator `Ada`. Zero-width joiners and non-joiners are checked in context
/// ([`check_display_name`]): scripts such as Persian and emoji sequences need them.
fn forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Zero-width (non-)joiners, allowed only between two visible characters.
fn joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// Whether a character shows as something: a letter or digit of any script, or a symbol or
/// emoji (everything from Letterlike Symbols up that is not a space).
fn visible(c: char) -> bool {
    c.is_alphanumeric()
        || (u32::from(c) >= 0x2100 && !c.is_whitespace() && !forbidden_in_name(c) && !joiner(c))
}

/// The display name as stored: trimmed, at most [`MAX_DISPLAY_NAME_CHARS`] characters, without
/// control or bidi-override characters; an empty (or blank) one is no name. Pseudonyms are
/// welcome: nothing checks that a name is a real one, or unique.
///
/// Stored in Unicode NFC, so `Zoë` typed precomposed or with a combining diaeresis is one name.
pub fn check_display_name(name: Option<&str>) -> Result<Option<String>, DisplayNameError> {
    use unicode_normalization::UnicodeNormalization;
    let Some(name) = name.map(str::trim) else {
        return Ok(None);
    };
    // Bounded before normalising: NFC never shortens a name by more than a few times.
    if name.chars().count() > 4 * MAX_DISPLAY_NAME_CHARS {
        return Err(DisplayNameError::TooLong);
    }
    let name: String = name.nfc().collect();
    let chars: Vec<char> = name.chars().collect();
    let misplaced_joiner = chars.iter().enumerate().any(|(i, &c)| {
        joiner(c)
            && !(i > 0
                && i + 1 < chars.len()
                && !chars[i - 1].is_whitespace()
                && !chars[i + 1].is_whitespace()
                && !joiner(chars[i - 1])
                && !joiner(chars[i + 1]))
    });
    if misplaced_joiner || chars.iter().copied().any(forbidden_in_name) {
        return Err(DisplayNameError::ForbiddenCharacter);
    }
    if chars.len() > MAX_DISPLAY_NAME_CHARS {
        return Err(DisplayNameError::TooLong);
    }
    if name.is_empty() {
        return Ok(None);
    }
    if !chars.iter().copied().any(visible) {
        return Err(DisplayNameError::NothingVisible);
    }
    Ok(Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_refuse_invisible_characters_and_are_stored_in_nfc() {
        for bad in [
            "Ada\u{200B}",
            "Ben\u{2028}Koordinatorin",
            "Ben\u{2029}Leitung",
            "\u{FEFF}Ada",
            "Ad\u{00AD}a",
            "A\u{2060}da",
            "Ada\u{E0041}",
            "\u{200D}Ada",
            "Ada\u{200C}",
            "A\u{200D}\u{200D}da",
        ] {
            assert_eq!(
                check_display_name(Some(bad)),
                Err(DisplayNameError::ForbiddenCharacter),
                "{bad:?}"
            );
        }
        for blank_looking in ["\u{3164}", "\u{2800}\u{2800}"] {
            assert_eq!(
                check_display_name(Some(blank_looking)),
                Err(DisplayNameError::ForbiddenCharacter),
                "{blank_looking:?}"
            );
        }
        for nothing in [".", "-_-", "..."] {
            assert_eq!(
                check_display_name(Some(nothing)),
                Err(DisplayNameError::NothingVisible),
                "{nothing:?}"
            );
        }
        // One name however it was typed.
        assert_eq!(
            check_display_name(Some("Zoe\u{0308}")).expect("fine"),
            check_display_name(Some("Zo\u{00EB}")).expect("fine")
        );
        // Joiners inside a word (Persian, emoji sequences) and emoji-only names are fine.
        assert!(check_display_name(Some("می\u{200C}خواهم"))
            .expect("fine")
            .is_some());
        assert!(check_display_name(Some("👩\u{200D}👧")).expect("fine").is_some());
        assert!(check_display_name(Some("🌻")).expect("fine").is_some());
        assert_eq!(
            check_display_name(Some(&"x".repeat(4 * MAX_DISPLAY_NAME_CHARS + 1))),
            Err(DisplayNameError::TooLong)
        );
    }

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
