//! Content lines (RFC 5545 §3.1, the same syntax in vCard 4.0, RFC 6350 §3.3): unfolding, the
//! `NAME;PARAM=value:VALUE` grammar, TEXT escaping, parameter quoting (with RFC 6868's `^`
//! encoding), folding at 75 octets with CRLF, and the tree of `BEGIN`/`END` components.
//!
//! One implementation serves both iCalendar and vCard, so each thing is done one way. It is
//! written here rather than taken from a crate (see `docs/standards.md`, "Why the content
//! lines are our own"): the tree is built with an explicit stack and a depth limit, so nested
//! `BEGIN` blocks cannot overflow the stack; a malformed line is reported with its line number
//! and the rest of the file is still read; and writing is deterministic (nothing is filled in
//! from the clock or a random source).

use std::borrow::Cow;

use crate::import::{ImportError, Skipped};

/// The longest line a writer emits, in octets, without the CRLF (RFC 5545 §3.1).
const FOLD_OCTETS: usize = 75;

/// One unfolded content line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContentLine {
    /// The property name, upper-cased (names are case-insensitive).
    pub name: String,
    /// Parameters in order: upper-cased name, values (unquoted, RFC 6868 decoded).
    pub params: Vec<(String, Vec<String>)>,
    /// The value as written (still escaped: unescaping depends on the value type).
    pub value: String,
    /// The 1-based line of the file where the content line starts.
    pub line: usize,
}

impl ContentLine {
    /// The first value of parameter `name` (upper case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, values)| values.first())
            .map(String::as_str)
    }

    /// Every value of parameter `name`, split on commas: `TYPE=work,voice` and `TYPE=work;TYPE=voice`
    /// read the same.
    pub fn param_values(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, values)| values.iter().map(String::as_str))
            .collect()
    }
}

/// A component: `BEGIN:NAME` … `END:NAME` with its properties and nested components.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Component {
    /// Upper-cased name, e.g. `VEVENT`.
    pub name: String,
    pub properties: Vec<ContentLine>,
    pub children: Vec<Component>,
    /// Line of its `BEGIN`.
    pub line: usize,
}

impl Component {
    /// The first property called `name`.
    pub fn property(&self, name: &str) -> Option<&ContentLine> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Every property called `name`.
    pub fn properties_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ContentLine> + 'a {
        self.properties.iter().filter(move |p| p.name == name)
    }
}

/// Limits of one parse, so that a hostile file costs bounded memory and no recursion.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Deepest nesting of components (`VCALENDAR` > `VEVENT` > `VALARM` is 3).
    pub max_depth: usize,
    /// Most components kept below the top level; further ones are counted, not kept.
    pub max_components: usize,
    /// Most line problems listed one by one; the rest are summed up in one entry.
    pub max_reports: usize,
    /// Most properties kept in one component: a record with more is skipped (reported); a
    /// top-level component (`VCALENDAR`, the vCard file) keeps its first ones and reports the
    /// rest, so that its records are still read.
    pub max_properties: usize,
    /// Most content lines (after unfolding) a parse keeps: the properties and `BEGIN`s of the
    /// components it keeps. A file that would need more is refused.
    pub max_lines: usize,
}

/// What a parse found: the top-level components, line problems, and how many components were
/// dropped because of [`Limits::max_components`].
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub components: Vec<Component>,
    pub problems: Vec<Skipped>,
    pub dropped_components: usize,
}

/// Why a whole file is refused by the tree builder.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TreeError {
    TooDeep { line: usize, max: usize },
    TooManyLines { max: usize },
}

impl TreeError {
    /// The file-level error of an import of `format`; `line_offset` is subtracted from line
    /// numbers (the vCard import wraps the file in one more component, and so one more line).
    pub fn into_import_error(self, format: &'static str, line_offset: usize) -> ImportError {
        let reason = match self {
            TreeError::TooDeep { line, max } => format!(
                "components are nested more than {} deep (line {})",
                max.saturating_sub(line_offset),
                line.saturating_sub(line_offset)
            ),
            TreeError::TooManyLines { max } => {
                format!("the file has more than {max} content lines; an import reads at most that many")
            }
        };
        ImportError::Malformed { format, reason }
    }
}

/// The size and UTF-8 checks of every import, tolerating one thing RFC 5545 §3.1 warns about:
/// a simple writer may fold a line inside a multi-octet character, which leaves the file
/// invalid UTF-8 until it is unfolded. Such a file is unfolded as bytes and checked again
/// (its line numbers then count unfolded lines).
pub(crate) fn checked_text(bytes: &[u8]) -> Result<Cow<'_, str>, ImportError> {
    match ImportError::check_text(bytes) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(error @ ImportError::NotUtf8 { .. }) => {
            let mut unfolded = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                let fold = match &bytes[i..] {
                    [b'\r', b'\n', b' ' | b'\t', ..] => 3,
                    [b'\n', b' ' | b'\t', ..] => 2,
                    _ => 0,
                };
                if fold > 0 {
                    i += fold;
                } else {
                    unfolded.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(unfolded).map(Cow::Owned).map_err(|_| error)
        }
        Err(other) => Err(other),
    }
}

/// Splits `text` into unfolded logical lines with the number of the physical line each starts
/// on. Accepts CRLF and bare LF (many producers write LF); a line starting with a space or a
/// tab continues the previous one (the one whitespace character is removed). Empty lines are
/// left out.
///
/// Lines are produced one at a time (an iterator), so a parse holds only the lines it keeps,
/// never the whole unfolded file beside it.
pub(crate) fn unfold(text: &str) -> Unfold<'_> {
    Unfold {
        physical: text.split('\n').enumerate().peekable(),
    }
}

/// The iterator of [`unfold`].
pub(crate) struct Unfold<'a> {
    physical: std::iter::Peekable<std::iter::Enumerate<std::str::Split<'a, char>>>,
}

impl<'a> Iterator for Unfold<'a> {
    type Item = (usize, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (index, raw) = self.physical.next()?;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            // A continuation at the very start of the file (nothing to continue) stands alone.
            let mut line = Cow::Borrowed(raw.strip_prefix([' ', '\t']).unwrap_or(raw));
            while let Some((_, next)) = self.physical.peek() {
                let next = next.strip_suffix('\r').unwrap_or(next);
                let Some(rest) = next.strip_prefix([' ', '\t']) else {
                    break;
                };
                line.to_mut().push_str(rest);
                self.physical.next();
            }
            if !line.is_empty() {
                return Some((index + 1, line));
            }
        }
    }
}

/// Parses one unfolded line: `name *(";" param) ":" value` (RFC 5545 §3.1).
pub(crate) fn parse_line(line_no: usize, text: &str) -> Result<ContentLine, String> {
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() {
        return Err("the line does not start with a property name".to_owned());
    }
    // vCard allows a group prefix (`item1.TEL`); it carries no meaning for us.
    let (name, mut rest) = match text[name_end..].strip_prefix('.') {
        Some(after_group) => {
            let end = after_group
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(after_group.len());
            if end == 0 {
                return Err("a group name is not followed by a property name".to_owned());
            }
            (&after_group[..end], &after_group[end..])
        }
        None => (name, &text[name_end..]),
    };
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    while let Some(after) = rest.strip_prefix(';') {
        let key_end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(after.len());
        let key = &after[..key_end];
        if key.is_empty() {
            return Err(format!("a parameter of {name} has no name"));
        }
        let Some(mut values_text) = after[key_end..].strip_prefix('=') else {
            return Err(format!("the parameter {key} of {name} has no `=`"));
        };
        let mut values = Vec::new();
        loop {
            let (value, next) = if let Some(quoted) = values_text.strip_prefix('"') {
                let Some(close) = quoted.find('"') else {
                    return Err(format!("the parameter {key} of {name} has an unclosed quote"));
                };
                (&quoted[..close], &quoted[close + 1..])
            } else {
                let end = values_text.find([',', ';', ':']).unwrap_or(values_text.len());
                (&values_text[..end], &values_text[end..])
            };
            values.push(decode_param(value));
            match next.strip_prefix(',') {
                Some(more) => values_text = more,
                None => {
                    values_text = next;
                    break;
                }
            }
        }
        params.push((key.to_ascii_uppercase(), values));
        rest = values_text;
    }
    let Some(value) = rest.strip_prefix(':') else {
        return Err(format!("the property {name} has no `:` before its value"));
    };
    Ok(ContentLine {
        name: name.to_ascii_uppercase(),
        params,
        value: value.to_owned(),
        line: line_no,
    })
}

/// Builds the component tree of `text`, without recursion. Lines outside any component,
/// unparsable lines, stray `END`s and unterminated components are reported in
/// [`Parsed::problems`]; only nesting deeper than [`Limits::max_depth`] refuses the file.
pub(crate) fn parse_components(text: &str, limits: Limits) -> Result<Parsed, TreeError> {
    let mut parsed = Parsed::default();
    let mut dropped_reports = 0_usize;
    let mut report = |parsed: &mut Parsed, record: String, reason: String| {
        if parsed.problems.len() < limits.max_reports {
            parsed.problems.push(Skipped { record, reason });
        } else {
            dropped_reports += 1;
        }
    };
    // The open components by name; a `None` is one being skipped (over the limit): its
    // contents are read for structure only.
    let mut stack: Vec<(String, usize, Option<Component>)> = Vec::new();
    let mut kept = 0_usize;
    // Properties of a top-level component beyond `max_properties`, not kept.
    let mut top_overflow = 0_usize;
    // Content lines kept in the tree (properties and BEGINs of kept components): what a parse
    // holds in memory. Lines of components over the limit are read and dropped, not counted.
    let mut stored = 0_usize;
    let store = |stored: &mut usize| {
        *stored += 1;
        if *stored > limits.max_lines {
            Err(TreeError::TooManyLines {
                max: limits.max_lines,
            })
        } else {
            Ok(())
        }
    };
    for (line_no, text) in unfold(text) {
        let line = match parse_line(line_no, &text) {
            Ok(line) => line,
            Err(reason) => {
                report(&mut parsed, format!("line {line_no}"), reason);
                continue;
            }
        };
        match line.name.as_str() {
            "BEGIN" => {
                if stack.len() >= limits.max_depth {
                    return Err(TreeError::TooDeep {
                        line: line_no,
                        max: limits.max_depth,
                    });
                }
                let name = line.value.trim().to_ascii_uppercase();
                let parent_dropped = stack.last().is_some_and(|(_, _, c)| c.is_none());
                // Only the records (children of the top-level component) count.
                let record = stack.len() == 1;
                let component = if parent_dropped || (record && kept >= limits.max_components) {
                    if record {
                        parsed.dropped_components += 1;
                    }
                    None
                } else {
                    if record {
                        kept += 1;
                    }
                    store(&mut stored)?;
                    Some(Component {
                        name: name.clone(),
                        line: line_no,
                        ..Component::default()
                    })
                };
                stack.push((name, line_no, component));
            }
            "END" => {
                let name = line.value.trim().to_ascii_uppercase();
                let Some(position) = stack.iter().rposition(|(open, _, _)| *open == name) else {
                    report(
                        &mut parsed,
                        format!("line {line_no}"),
                        format!("END:{name} closes no open component"),
                    );
                    continue;
                };
                while stack.len() > position + 1 {
                    if let Some((unclosed, begin_line, Some(_))) = stack.pop() {
                        report(
                            &mut parsed,
                            format!("line {begin_line}"),
                            format!(
                                "{unclosed} has no END before END:{name} at line {line_no}; it was not read"
                            ),
                        );
                    }
                }
                if let Some((_, _, Some(done))) = stack.pop() {
                    match stack.last_mut() {
                        Some((_, _, Some(parent))) => parent.children.push(done),
                        Some((_, _, None)) => {}
                        None => parsed.components.push(done),
                    }
                }
            }
            _ => match (stack.len(), stack.last_mut()) {
                (_, Some((_, _, Some(component)))) if component.properties.len() < limits.max_properties => {
                    store(&mut stored)?;
                    component.properties.push(line);
                }
                (1, Some((_, _, Some(_)))) => top_overflow += 1,
                (_, Some((name, begin_line, slot @ Some(_)))) => {
                    // A record (or a part of one) with too many properties is not read: what
                    // it holds beyond the limit is not data Quartier keeps, and keeping it
                    // would let one component take the memory of a whole file.
                    *slot = None;
                    let (name, begin_line) = (name.clone(), *begin_line);
                    report(
                        &mut parsed,
                        format!("line {begin_line}"),
                        format!(
                            "{name} has more than {} properties; it was not read",
                            limits.max_properties
                        ),
                    );
                }
                (_, Some((_, _, None))) => {}
                (_, None) => report(
                    &mut parsed,
                    format!("line {line_no}"),
                    format!("{} stands outside any BEGIN/END block", line.name),
                ),
            },
        }
    }
    for (name, begin_line, component) in stack {
        if component.is_some() {
            report(
                &mut parsed,
                format!("line {begin_line}"),
                format!("{name} has no END; it was not read"),
            );
        }
    }
    if top_overflow > 0 {
        parsed.problems.push(Skipped {
            record: "file".to_owned(),
            reason: format!(
                "{top_overflow} properties outside the records were not read: at most {} are",
                limits.max_properties
            ),
        });
    }
    if dropped_reports > 0 {
        parsed.problems.push(Skipped {
            record: "file".to_owned(),
            reason: format!("{dropped_reports} more problems of the same kinds were not listed"),
        });
    }
    Ok(parsed)
}

/// Unescapes a TEXT value (RFC 5545 §3.3.11, RFC 6350 §3.4): `\\`, `\;`, `\,`, `\n`/`\N`.
/// Unknown escapes keep their character (lenient, as calendar programs are).
pub(crate) fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Splits a value on `separator` where it is not escaped (lists and structured values), each
/// part still escaped.
pub(crate) fn split_unescaped(value: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(&value[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&value[start..]);
    parts
}

/// Escapes text for a TEXT value: backslash, semicolon, comma and line breaks; other control
/// characters (which neither RFC allows) are dropped, a CRLF becomes one line break.
pub(crate) fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 6868: `^n` is a line break, `^'` a double quote, `^^` a caret.
fn decode_param(value: &str) -> String {
    if !value.contains('^') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '^' {
            match chars.peek() {
                Some('n') => {
                    out.push('\n');
                    chars.next();
                }
                Some('\'') => {
                    out.push('"');
                    chars.next();
                }
                Some('^') => {
                    out.push('^');
                    chars.next();
                }
                _ => out.push('^'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A parameter value as written: RFC 6868 encoding, quoted when it holds `:`, `;` or `,`.
fn encode_param(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '^' => encoded.push_str("^^"),
            '"' => encoded.push_str("^'"),
            '\n' => encoded.push_str("^n"),
            c if c.is_control() => {}
            c => encoded.push(c),
        }
    }
    if encoded.contains([':', ';', ',']) {
        format!("\"{encoded}\"")
    } else {
        encoded
    }
}

/// `text` without CR, LF and the other control characters (TAB is kept: RFC 5545 allows it in
/// values).
fn without_controls(text: &str) -> Cow<'_, str> {
    if text.chars().any(|c| c.is_control() && c != '\t') {
        Cow::Owned(text.chars().filter(|c| !c.is_control() || *c == '\t').collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// `value` (trimmed) when it is an absolute `http`/`https` URL of printable ASCII without
/// whitespace: the only URLs an export writes and an import takes, so a URL can neither break
/// a content line or CSV cell nor be a `javascript:` or `data:` link.
pub(crate) fn http_url(value: &str) -> Option<&str> {
    let value = value.trim();
    let rest = if value.len() > 8 && value[..8].eq_ignore_ascii_case("https://") {
        &value[8..]
    } else if value.len() > 7 && value[..7].eq_ignore_ascii_case("http://") {
        &value[7..]
    } else {
        return None;
    };
    let printable = value.bytes().all(|b| b.is_ascii_graphic());
    (printable && !rest.starts_with(['/', '?', '#'])).then_some(value)
}

/// Writes content lines: CRLF line ends, folded at 75 octets on character boundaries.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn begin(&mut self, name: &str) {
        self.raw_line(&format!("BEGIN:{name}"));
    }

    pub fn end(&mut self, name: &str) {
        self.raw_line(&format!("END:{name}"));
    }

    /// A property whose `value` is already in its written form (escaped where needed), each
    /// parameter with one value.
    pub fn property(&mut self, name: &str, params: &[(&str, &str)], value: &str) {
        let lists: Vec<(&str, [&str; 1])> = params.iter().map(|(key, v)| (*key, [*v])).collect();
        let lists: Vec<(&str, &[&str])> = lists.iter().map(|(key, v)| (*key, &v[..])).collect();
        self.property_lists(name, &lists, value);
    }

    /// A property whose parameters may have several values (`TYPE=work,voice`): each value is
    /// encoded (and quoted when it must be) on its own, and they are joined with commas.
    pub fn property_lists(&mut self, name: &str, params: &[(&str, &[&str])], value: &str) {
        let mut line = String::with_capacity(name.len() + value.len() + 16);
        line.push_str(name);
        for (key, values) in params {
            line.push(';');
            line.push_str(key);
            line.push('=');
            let encoded: Vec<String> = values.iter().map(|v| encode_param(v)).collect();
            line.push_str(&encoded.join(","));
        }
        line.push(':');
        line.push_str(value);
        self.raw_line(&line);
    }

    /// A property with a TEXT value, escaped here.
    pub fn text(&mut self, name: &str, params: &[(&str, &str)], value: &str) {
        self.property(name, params, &escape_text(value));
    }

    /// Writes one content line, folded. This is the one place every line goes through, so it
    /// is where the file's structure is guarded: CR, LF and every other control character but
    /// TAB are dropped here, whatever the caller passed, so no value or parameter can end its
    /// line and start a property or component of its own (TEXT values and parameters have
    /// already turned line breaks into `\n` and `^n`).
    fn raw_line(&mut self, line: &str) {
        let cleaned = without_controls(line);
        let mut rest: &str = &cleaned;
        let mut limit = FOLD_OCTETS;
        loop {
            if rest.len() <= limit {
                self.out.push_str(rest);
                self.out.push_str("\r\n");
                return;
            }
            let mut cut = limit;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            self.out.push_str(&rest[..cut]);
            self.out.push_str("\r\n ");
            rest = &rest[cut..];
            // A continuation line starts with the space, which counts towards its 75 octets.
            limit = FOLD_OCTETS - 1;
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ical_content_lines_fold_at_75_octets_and_unfold_back() {
        let mut writer = Writer::new();
        let long = "Nachbarschaftscafé, mit Kuchen; und Kaffee\nfür alle 😀 ".repeat(6);
        writer.text("DESCRIPTION", &[("LANGUAGE", "de")], &long);
        let written = writer.finish();
        for physical in written.split("\r\n") {
            assert!(physical.len() <= 75, "{physical:?} has {} octets", physical.len());
        }
        let lines: Vec<_> = unfold(&written).collect();
        assert_eq!(lines.len(), 1);
        let line = parse_line(1, &lines[0].1).unwrap();
        assert_eq!(line.param("LANGUAGE"), Some("de"));
        assert_eq!(unescape_text(&line.value), long);
    }

    #[test]
    fn ical_parameters_quote_and_rfc6868() {
        let mut writer = Writer::new();
        writer.property("X-A", &[("X-P", "a:b;c, \"d\"^\ne")], "v");
        let written = writer.finish();
        let lines: Vec<_> = unfold(&written).collect();
        let line = parse_line(1, &lines[0].1).unwrap();
        assert_eq!(line.param("X-P"), Some("a:b;c, \"d\"^\ne"));
        let typed = parse_line(1, "item1.tel;type=work,voice;TYPE=pref:+49 30 1").unwrap();
        assert_eq!(typed.name, "TEL");
        assert_eq!(typed.param_values("TYPE"), vec!["work", "voice", "pref"]);
        assert!(parse_line(1, "DTSTART;TZID=\"Europe/Berlin:20260101").is_err());
        assert!(parse_line(1, ":value").is_err());
        assert!(parse_line(1, "SUMMARY").is_err());
    }

    #[test]
    fn ical_tree_reports_problems_and_refuses_deep_nesting() {
        let limits = Limits {
            max_depth: 4,
            max_components: 2,
            max_reports: 10,
            max_properties: 100,
            max_lines: 1_000_000,
        };
        let text = "stray\r\nBEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\n\
                    UID:2\r\nBEGIN:VALARM\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nEND:VEVENT\r\nEND:VTODO\r\n\
                    END:VCALENDAR\r\n";
        let parsed = parse_components(text, limits).unwrap();
        assert_eq!(parsed.components.len(), 1);
        assert_eq!(parsed.components[0].children.len(), 2);
        assert_eq!(parsed.dropped_components, 1);
        let reasons: Vec<_> = parsed.problems.iter().map(|p| p.reason.as_str()).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[1].contains("VALARM has no END"));
        assert!(reasons[2].contains("END:VTODO closes no open component"));
        let deep = "BEGIN:A\n".repeat(100_000);
        assert_eq!(
            parse_components(&deep, limits).unwrap_err(),
            TreeError::TooDeep { line: 5, max: 4 }
        );
    }

    #[test]
    fn ical_writer_never_lets_a_value_or_parameter_break_its_line() {
        let mut writer = Writer::new();
        writer.property(
            "URL",
            &[("X-P", "a\r\nEND:VCALENDAR")],
            "https://x.example/\r\nEND:VEVENT\r\nBEGIN:VEVENT\rUID:victim\nX:\u{0}\u{1b}y",
        );
        writer.property_lists("LANG", &[("PREF", &["1\r\nTEL:+1"])], "de\r\nTEL:+1 900 FRAUD");
        writer.raw_line("X-RAW:a\r\nBEGIN:VEVENT\u{85}b");
        let written = writer.finish();
        let physical: Vec<&str> = written.split("\r\n").collect();
        for line in &physical {
            assert!(
                !line.contains(['\r', '\n', '\u{0}', '\u{1b}', '\u{85}']),
                "{line:?}"
            );
        }
        let logical: Vec<_> = unfold(&written).collect();
        assert_eq!(logical.len(), 3, "{written:?}");
        let names: Vec<String> = logical
            .iter()
            .map(|(n, l)| parse_line(*n, l).map(|c| c.name).unwrap_or_default())
            .collect();
        assert_eq!(names, ["URL", "LANG", "X-RAW"]);
    }

    #[test]
    fn ical_http_urls_are_checked() {
        assert_eq!(
            http_url(" https://x.example/a?b=c "),
            Some("https://x.example/a?b=c")
        );
        assert_eq!(http_url("HTTP://x.example"), Some("HTTP://x.example"));
        for bad in [
            "https://x.example/\r\nEND:VEVENT",
            "https://x.example/a b",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://",
            "https:///path",
            "ftp://x.example",
            "https://bücher.example",
        ] {
            assert_eq!(http_url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ical_tree_caps_properties_per_component_and_lines_per_file() {
        let limits = Limits {
            max_depth: 4,
            max_components: 100,
            max_reports: 10,
            max_properties: 3,
            max_lines: 20,
        };
        let text = "BEGIN:VCALENDAR\nA:1\nB:2\nC:3\nD:4\nBEGIN:VEVENT\nUID:1\nX:1\nX:2\nX:3\n\
                    BEGIN:VALARM\nEND:VALARM\nEND:VEVENT\nBEGIN:VEVENT\nUID:2\nEND:VEVENT\nEND:VCALENDAR\n";
        let parsed = parse_components(text, limits).unwrap();
        let calendar = &parsed.components[0];
        assert_eq!(calendar.properties.len(), 3);
        assert_eq!(calendar.children.len(), 1);
        assert_eq!(
            calendar.children[0].property("UID").map(|u| u.value.as_str()),
            Some("2")
        );
        let reasons: Vec<_> = parsed.problems.iter().map(|p| p.reason.as_str()).collect();
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("VEVENT has more than 3 properties")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("1 properties outside")),
            "{reasons:?}"
        );
        let long = "BEGIN:VCALENDAR\n".to_owned() + &"BEGIN:VEVENT\nX:1\nEND:VEVENT\n".repeat(10);
        assert_eq!(
            parse_components(&long, limits).unwrap_err(),
            TreeError::TooManyLines { max: 20 }
        );
    }

    #[test]
    fn ical_text_escapes_round_trip() {
        let text = "a,b;c\\d\r\ne\u{7}f";
        assert_eq!(escape_text(text), "a\\,b\\;c\\\\d\\nef");
        assert_eq!(unescape_text(&escape_text(text)), "a,b;c\\d\nef");
        assert_eq!(split_unescaped("a\\,b,c,,d", ','), vec!["a\\,b", "c", "", "d"]);
    }
}
