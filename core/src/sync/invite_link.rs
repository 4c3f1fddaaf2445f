//! Invite links, the payload of an invite's QR code: the server's address and the invite code
//! in one string, `quartier://join?s=<server>&c=<code>` (docs/protocol.md, "Invite links").
//! Pure functions, no I/O; parsing is bounded and never panics, whatever was scanned.

use crate::error::Error;

/// What every invite link starts with (compared without regard to ASCII case).
pub const INVITE_LINK_PREFIX: &str = "quartier://join?";
/// Longest invite link accepted, in bytes: a QR code of version 10 (57×57 modules) holds it at
/// error correction level M.
pub const MAX_INVITE_LINK_BYTES: usize = 512;
/// Longest server address in an invite link, in bytes.
pub const MAX_INVITE_SERVER_BYTES: usize = 256;
/// Longest invite code (the server refuses longer ones).
pub const MAX_INVITE_CODE_BYTES: usize = 128;

/// An invite to a space on a server: what a coordinator shows as a QR code and a newcomer's
/// app scans (`SyncClient::new(&link.server)`, then `redeem_invite(&link.code)`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct InviteLink {
    /// The server's base URL, `https://…` (or `http://…`), as `SyncClient` takes it.
    pub server: String,
    /// The invite code (`SyncClient::create_invite`).
    pub code: String,
}

/// Why a text is not an invite link, or an invite cannot be made one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InviteLinkError {
    #[error("an invite link has at most {MAX_INVITE_LINK_BYTES} bytes")]
    TooLong,
    #[error("not a Quartier invite link (those start with {INVITE_LINK_PREFIX})")]
    NotAnInviteLink,
    #[error("the invite link names no {0}")]
    Missing(&'static str),
    #[error("the invite link names its {0} twice")]
    Repeated(&'static str),
    #[error("the invite link has a broken escape (`%` not followed by two hex digits, or not UTF-8)")]
    BadEscape,
    #[error(
        "the server address must be an http:// or https:// URL with a host, without user name, query or \
         fragment, of at most {MAX_INVITE_SERVER_BYTES} printable ASCII characters"
    )]
    BadServer,
    #[error("the invite code must be 1 to {MAX_INVITE_CODE_BYTES} letters, digits, `-` or `_`")]
    BadCode,
}

impl From<InviteLinkError> for Error {
    fn from(e: InviteLinkError) -> Self {
        Error::invalid("invite_link", e.to_string())
    }
}

impl InviteLink {
    /// An invite link, checked: the server an http(s) URL, the code a valid invite code.
    pub fn new(server: impl Into<String>, code: impl Into<String>) -> Result<Self, InviteLinkError> {
        let link = InviteLink {
            server: canonical_server(server.into()),
            code: code.into(),
        };
        check_server(&link.server)?;
        check_code(&link.code)?;
        Ok(link)
    }

    /// The link as text for a QR code: `quartier://join?s=<server, escaped>&c=<code>`. Refuses
    /// what [`InviteLink::parse`] would refuse, so every link made parses back to itself.
    pub fn to_uri(&self) -> Result<String, InviteLinkError> {
        check_server(&self.server)?;
        check_code(&self.code)?;
        let mut out =
            String::with_capacity(INVITE_LINK_PREFIX.len() + self.server.len() + self.code.len() + 8);
        out.push_str(INVITE_LINK_PREFIX);
        out.push_str("s=");
        escape_into(&self.server, &mut out);
        out.push_str("&c=");
        out.push_str(&self.code);
        // Escaping can triple a long server address past what `parse` reads.
        if out.len() > MAX_INVITE_LINK_BYTES {
            return Err(InviteLinkError::TooLong);
        }
        Ok(out)
    }

    /// Reads a scanned text (surrounding whitespace ignored). Parameters other than `s` and `c`
    /// are skipped, so later versions may add some.
    pub fn parse(text: &str) -> Result<Self, InviteLinkError> {
        if text.len() > MAX_INVITE_LINK_BYTES {
            return Err(InviteLinkError::TooLong);
        }
        let text = text.trim();
        let query = match text.get(..INVITE_LINK_PREFIX.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(INVITE_LINK_PREFIX) => {
                &text[INVITE_LINK_PREFIX.len()..]
            }
            _ => return Err(InviteLinkError::NotAnInviteLink),
        };
        let (mut server, mut code) = (None, None);
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (slot, name) = match key {
                "s" => (&mut server, "server"),
                "c" => (&mut code, "code"),
                _ => continue,
            };
            if slot.is_some() {
                return Err(InviteLinkError::Repeated(name));
            }
            *slot = Some(unescape(value)?);
        }
        let server = server.ok_or(InviteLinkError::Missing("server"))?;
        let code = code.ok_or(InviteLinkError::Missing("code"))?;
        InviteLink::new(server, code)
    }
}

impl std::str::FromStr for InviteLink {
    type Err = InviteLinkError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        InviteLink::parse(text)
    }
}

fn check_code(code: &str) -> Result<(), InviteLinkError> {
    let ok = !code.is_empty()
        && code.len() <= MAX_INVITE_CODE_BYTES
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(()).ok_or(InviteLinkError::BadCode)
}

fn check_server(server: &str) -> Result<(), InviteLinkError> {
    let bad = || InviteLinkError::BadServer;
    if server.len() > MAX_INVITE_SERVER_BYTES {
        return Err(bad());
    }
    // Printable ASCII only (an international domain name travels as punycode), none of the
    // characters a URL may not hold unescaped, no query, fragment or user name, and no escapes
    // (`%2E` in a host would show one name and reach another).
    if !server
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}?#@%".contains(&b))
    {
        return Err(bad());
    }
    let (https, rest) = if let Some(rest) = strip_prefix_ignore_case(server, "https://") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(server, "http://") {
        (false, rest)
    } else {
        return Err(bad());
    };
    let authority = rest.split('/').next().unwrap_or_default();
    // `host`, `host:8080`, `[::1]` or `[::1]:8080`; a port is digits only.
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (inside, after) = bracketed.split_once(']').ok_or_else(bad)?;
            (
                &authority[..inside.len() + 2],
                after
                    .strip_prefix(':')
                    .or((after.is_empty()).then_some(""))
                    .ok_or_else(bad)?,
            )
        }
        None => authority.split_once(':').unwrap_or((authority, "")),
    };
    let host_ok = if host.starts_with('[') {
        host.len() > 2
            && host[1..host.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty() && !host.contains([':', '[', ']'])
    };
    let port_ok = port.bytes().all(|b| b.is_ascii_digit()) && (port.is_empty() || port.len() <= 5);
    if !host_ok || !port_ok || authority.ends_with(':') {
        return Err(bad());
    }
    // Plain HTTP only to this machine (a developer's server), as `SyncClient` allows it: a
    // link to anything else over http would hand the code to whoever is on the path.
    let loopback = host.eq_ignore_ascii_case("localhost") || host == "[::1]" || host.starts_with("127.");
    if !https && !loopback {
        return Err(bad());
    }
    Ok(())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &text[prefix.len()..])
}

/// The server address as links carry it: the scheme in lower case (what `SyncClient` and the
/// bindings compare), the rest as given.
fn canonical_server(server: String) -> String {
    match server.find("://") {
        Some(at) if !server[..at].bytes().all(|b| b.is_ascii_lowercase()) => {
            format!("{}{}", server[..at].to_ascii_lowercase(), &server[at..])
        }
        _ => server,
    }
}

/// Characters left as they are in the server address: unreserved ones and the `:` and `/`
/// every URL has (RFC 3986 allows them in a query), so the link stays short.
fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/".contains(&b)
}

fn escape_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

fn unescape(text: &str) -> Result<String, InviteLinkError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(InviteLinkError::BadEscape)?;
            let digit = |b: u8| (b as char).to_digit(16).ok_or(InviteLinkError::BadEscape);
            out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| InviteLinkError::BadEscape)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_link_reads_as_expected() {
        let link =
            InviteLink::new("https://quartier.example.org", "0123456789abcdef0123456789abcdef").unwrap();
        let text = link.to_uri().unwrap();
        assert_eq!(
            text,
            "quartier://join?s=https://quartier.example.org&c=0123456789abcdef0123456789abcdef"
        );
        assert_eq!(InviteLink::parse(&text).unwrap(), link);
        // A port, a path, characters that are escaped; case and surrounding whitespace of
        // the prefix do not matter; unknown parameters are skipped.
        let link = InviteLink::new("http://127.0.0.1:8080/quartier+test", "a-b_C").unwrap();
        let text = link.to_uri().unwrap();
        assert_eq!(
            text,
            "quartier://join?s=http://127.0.0.1:8080/quartier%2Btest&c=a-b_C"
        );
        assert_eq!(InviteLink::parse(&format!("  {text}\n")).unwrap(), link);
        assert_eq!(
            InviteLink::parse("QUARTIER://JOIN?v=2&c=a-b_C&s=http://127.0.0.1:8080/quartier%2Btest").unwrap(),
            link
        );
        // The scheme is kept in lower case, as clients compare it.
        assert_eq!(
            InviteLink::new("HTTPS://Quartier.example.org", "x")
                .unwrap()
                .server,
            "https://Quartier.example.org"
        );
        for server in ["https://[::1]:443", "https://[::1]"] {
            let ipv6 = InviteLink::new(server, "x").unwrap();
            assert_eq!(InviteLink::parse(&ipv6.to_uri().unwrap()).unwrap(), ipv6);
        }
    }

    #[test]
    fn malformed_links_are_typed_errors() {
        use InviteLinkError::*;
        let long = format!("quartier://join?s=https://a.org&c={}", "a".repeat(600));
        for (text, error) in [
            ("", NotAnInviteLink),
            ("https://quartier.example.org/join?c=abc", NotAnInviteLink),
            ("quartier://join", NotAnInviteLink),
            ("quartier://join?c=abc", Missing("server")),
            ("quartier://join?s=https://a.org", Missing("code")),
            ("quartier://join?s=https://a.org&c=a&c=b", Repeated("code")),
            ("quartier://join?s=https://a.org&c=a%2", BadEscape),
            ("quartier://join?s=https://a.org&c=a%zz", BadEscape),
            ("quartier://join?s=%FF%FE&c=a", BadEscape),
            ("quartier://join?s=ftp://a.org&c=abc", BadServer),
            ("quartier://join?s=https://&c=abc", BadServer),
            ("quartier://join?s=https://:80&c=abc", BadServer),
            ("quartier://join?s=https://me%40a.org&c=abc", BadServer),
            ("quartier://join?s=https://a.org/%3Fq&c=abc", BadServer),
            ("quartier://join?s=https://a.org/x%20y&c=abc", BadServer),
            ("quartier://join?s=https://a.org:8o&c=abc", BadServer),
            // Plain HTTP to anything but this machine, ports and hosts that do not parse,
            // escaped hosts that show one name and reach another.
            ("quartier://join?s=http://quartier.example.org&c=abc", BadServer),
            ("quartier://join?s=https://a.org:1:2&c=abc", BadServer),
            ("quartier://join?s=https://[::1&c=abc", BadServer),
            ("quartier://join?s=https://a.org:&c=abc", BadServer),
            ("quartier://join?s=https://caritas%252Ede&c=abc", BadServer),
            ("quartier://join?s=https://a.org&c=", BadCode),
            ("quartier://join?s=https://a.org&c=a%2Fb", BadCode),
            ("quartier://join?s=https://a.org&c=cod%C3%A9", BadCode),
            (long.as_str(), TooLong),
        ] {
            assert_eq!(InviteLink::parse(text), Err(error), "{text:?}");
        }
        assert_eq!(
            InviteLink {
                server: "https://a.org".into(),
                code: "no spaces".into()
            }
            .to_uri(),
            Err(BadCode)
        );
        let error: Error = BadServer.into();
        assert!(matches!(
            error,
            Error::Invalid {
                field: "invite_link",
                ..
            }
        ));
    }

    fn server() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                ("https://|HTTPS://", "[a-z0-9][a-z0-9.-]{0,40}"),
                ("http://", "127\\.0\\.0\\.1|localhost|\\[::1\\]"),
            ],
            prop::option::of(1u16..),
            "(/[A-Za-z0-9._~+!$&'()*,;=:-]{0,20}){0,3}",
        )
            .prop_map(|((scheme, host), port, path)| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{scheme}{host}{port}{path}")
            })
    }

    proptest! {
        /// Every link that can be made reads back as itself.
        #[test]
        fn parse_of_format_is_the_link(server in server(), code in "[A-Za-z0-9_-]{1,128}") {
            let link = InviteLink::new(server, code).unwrap();
            let text = link.to_uri().unwrap();
            prop_assert!(text.len() <= MAX_INVITE_LINK_BYTES);
            prop_assert_eq!(InviteLink::parse(&text).unwrap(), link);
        }

        /// Whatever is scanned: a typed error or a link, never a panic; a link read from any
        /// text makes a text that reads back as the same link.
        #[test]
        fn any_text_is_a_link_or_a_typed_error(text in "(quartier://join\\?)?[ -~]{0,80}|\\PC{0,600}") {
            if let Ok(link) = InviteLink::parse(&text) {
                prop_assert_eq!(InviteLink::parse(&link.to_uri().unwrap()).unwrap(), link);
            }
        }

        /// Links with one part damaged are refused with a typed error, not misread.
        #[test]
        fn damaged_links_are_refused(server in server(), code in "[A-Za-z0-9_-]{1,64}", cut in 0usize..200) {
            let text = InviteLink::new(server, code).unwrap().to_uri().unwrap();
            let cut = cut.min(text.len());
            // Cut anywhere before the code starts: the code (or more) is gone.
            if let Some(at) = text.find("&c=") {
                if cut <= at {
                    prop_assert!(InviteLink::parse(&text[..cut]).is_err());
                }
            }
        }
    }
}
