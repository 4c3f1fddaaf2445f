//! The folding and the query syntax against a real FTS5 table, as the store uses them.

use rusqlite::Connection;

use super::fold::{fold_tokens, is_token_char};
use super::{fold, fold_for_index, SearchQuery};

const SCHEMA: &str = r#"CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize="unicode61 remove_diacritics 0");
CREATE VIRTUAL TABLE t_instances USING fts5vocab(t, instance);"#;

const ROWS: &[(i64, &str, &str)] = &[
    (1, "Die Straße am See", "Nachbarschaftsfest in München mit Grill"),
    (
        2,
        "Gartenarbeit",
        "Wir suchen Hilfe im Nachbargarten, Muenchen-Schwabing",
    ),
    (3, "İstanbul gezisi", "Çay ve simit, ıhlamur"),
    (4, "المَدْرَسَة الجَدِيدَة", "زيارة إلى مدرسة أحمد"),
    (5, "Поїздка до Києва", "Київ навесні, свіже м’ясо"),
    (6, "Quelle", "Die Quelle im Wald, neue Bauer"),
    (7, "Offener Garten", "Garten offen am Sonntag, Grillen verboten"),
    (8, "Café Noël", "Crème brûlée und Kaffee"),
];

fn table() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    for (id, title, body) in ROWS {
        conn.execute(
            "INSERT INTO t (rowid, title, body) VALUES (?1, ?2, ?3)",
            rusqlite::params![id, fold(title), fold(body)],
        )
        .unwrap();
    }
    conn
}

/// A table filled as the store fills it ([`fold_for_index`]).
fn indexed(rows: &[(i64, &str)]) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    for (id, body) in rows {
        conn.execute(
            "INSERT INTO t (rowid, title, body) VALUES (?1, '', ?2)",
            rusqlite::params![id, fold_for_index(body)],
        )
        .unwrap();
    }
    conn
}

const ARABIC_ROWS: &[(i64, &str)] = &[
    (1, "لقاء بالجيران يوم السبت"),
    (2, "نزهة مع سارة وآمنة"),
    (3, "مساعدة فالمدرسة قريبة"),
    (4, "دافئ كالبيت"),
    (5, "ألعاب للأطفال"),
    (6, "بل هذا ولد صغير"),
    (7, "Die Straße am See"),
    (8, "Kuchen 🎂 heute"),
    (9, "Fest 👍🏽 und 👩‍🍳 im Hof ❤️"),
];

#[test]
fn arabic_words_are_found_without_their_proclitics() {
    let conn = indexed(ARABIC_ROWS);
    for (query, id) in [
        ("الجيران", 1),
        ("جيران", 1),
        ("بالجيران", 1),
        ("آمنة", 2),
        ("امنه", 2),
        ("وآمنة", 2),
        ("المدرسة", 3),
        ("مدرسة", 3),
        ("فالمدرسة", 3),
        ("البيت", 4),
        ("بيت", 4),
        ("كالبيت", 4),
        ("الأطفال", 5),
        ("أطفال", 5),
        ("للأطفال", 5),
        ("بل", 6),
        ("ولد", 6),
        (r#""جيران""#, 1),
        (r#""بالجيران يوم""#, 1),
    ] {
        assert_eq!(search(&conn, query), [id], "{query}");
    }
    // Queries are not stemmed: the prefixed form finds only itself.
    assert!(search(&conn, "بالمدرسة").is_empty());
    assert!(search(&conn, "لد").is_empty(), "ولد is not indexed as لد");
}

#[test]
fn text_without_arabic_proclitics_indexes_as_folded() {
    for text in [
        "Die Straße in München, Muenchen",
        "İstanbul'da çay",
        "Київ, м'ясо",
        "Community garden opening",
        "مدرسة كتاب بل ولد",
        "Kuchen 🎂 heute",
    ] {
        assert_eq!(fold_for_index(text), fold(text), "{text}");
    }
    assert_eq!(fold_for_index("بالجيران هنا"), fold("بالجيران هنا الجيران جيران"));
}

#[test]
fn emoji_are_searchable() {
    let conn = indexed(ARABIC_ROWS);
    assert_eq!(search(&conn, "🎂"), [8]);
    assert_eq!(search(&conn, "🎂 kuchen"), [8]);
    assert_eq!(search(&conn, "👍"), [9], "skin tone dropped");
    assert_eq!(search(&conn, "👍🏿"), [9], "skin tone dropped");
    assert_eq!(search(&conn, "🍳"), [9], "a part of a ZWJ sequence");
    assert_eq!(search(&conn, "👩‍🍳"), [9]);
    assert_eq!(search(&conn, "❤"), [9], "variation selector dropped");
    assert_eq!(search(&conn, "❤️"), [9]);
    assert!(
        search(&conn, "🎉").is_empty(),
        "an emoji no row has finds nothing"
    );
    assert!(search(&conn, "🥧").is_empty());
}

/// Row ids matching `input`, best first.
fn search(conn: &Connection, input: &str) -> Vec<i64> {
    let query = SearchQuery::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    run(conn, &query.fts5_match()).unwrap_or_else(|e| panic!("{input:?} → {}: {e}", query.fts5_match()))
}

fn run(conn: &Connection, expr: &str) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT rowid FROM t WHERE t MATCH ?1 ORDER BY bm25(t, 8.0, 1.0)")?;
    let rows = stmt.query_map([expr], |r| r.get(0))?;
    rows.collect()
}

fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids
}

#[test]
fn german_spellings_find_each_other() {
    let conn = table();
    assert_eq!(search(&conn, "Strasse"), [1]);
    assert_eq!(search(&conn, "STRASSE"), [1]);
    assert_eq!(search(&conn, "Straße"), [1]);
    assert_eq!(search(&conn, "straß"), [1]);
    for query in ["Muenchen", "Munchen", "München", "münch", "Mün", "Mue", "MUENCH"] {
        assert_eq!(sorted(search(&conn, query)), [1, 2], "{query}");
    }
    assert_eq!(search(&conn, "nach"), search(&conn, "Nachbar"));
    assert_eq!(sorted(search(&conn, "nach")), [1, 2]);
    assert_eq!(search(&conn, "Quelle"), [6]);
    assert_eq!(search(&conn, "neue Bauer"), [6]);
}

#[test]
fn turkish_spellings_find_each_other() {
    let conn = table();
    for query in ["İstanbul", "istanbul", "ISTANBUL", "Istanbul", "ıstanbul", "ist"] {
        assert_eq!(search(&conn, query), [3], "{query}");
    }
    assert_eq!(search(&conn, "cay"), [3]);
    assert_eq!(search(&conn, "ÇAY"), [3]);
    assert_eq!(search(&conn, "ihlamur"), [3]);
}

#[test]
fn other_accents_are_ignored() {
    let conn = table();
    assert_eq!(search(&conn, "cafe noel"), [8]);
    assert_eq!(search(&conn, "creme brulee"), [8]);
    assert_eq!(search(&conn, "Crème"), [8]);
}

#[test]
fn arabic_with_and_without_harakat_and_alef_variants() {
    let conn = table();
    assert_eq!(search(&conn, "المدرسة"), [4]);
    assert_eq!(search(&conn, "المَدْرَسَة"), [4]);
    assert_eq!(search(&conn, "المدرسه"), [4]);
    assert_eq!(search(&conn, "مدرسة"), [4]);
    assert_eq!(search(&conn, "احمد"), [4]);
    assert_eq!(search(&conn, "أحمد"), [4]);
    assert_eq!(search(&conn, "إحمد"), [4]);
    assert_eq!(search(&conn, "الى"), [4]);
    assert_eq!(search(&conn, "إلي"), [4]);
}

#[test]
fn ukrainian_words() {
    let conn = table();
    assert_eq!(search(&conn, "київ"), [5]);
    assert_eq!(search(&conn, "КИЇВ"), [5]);
    assert_eq!(search(&conn, "Києв"), [5]);
    assert_eq!(search(&conn, "поїздка"), [5]);
    assert_eq!(search(&conn, "м'ясо"), [5]);
    assert_eq!(search(&conn, "мясо"), [5]);
    assert!(search(&conn, "киів").is_empty(), "ї and і stay distinct");
}

#[test]
fn phrases_match_as_phrases() {
    let conn = table();
    assert_eq!(search(&conn, r#""Strasse am See""#), [1]);
    assert!(search(&conn, r#""See am Strasse""#).is_empty());
    assert_eq!(search(&conn, r#""garten offen""#), [7]);
    assert!(search(&conn, r#""garten""#).contains(&7));
    assert!(
        !search(&conn, r#""garten""#).contains(&2),
        "a quoted word is not a prefix"
    );
    assert_eq!(search(&conn, "muenchen-schwabing"), [2]);
    assert!(
        search(&conn, "nachbar-garten").is_empty(),
        "punctuated words are phrases"
    );
}

#[test]
fn exclusions_exclude() {
    let conn = table();
    assert_eq!(sorted(search(&conn, "garten")), [2, 7]);
    assert_eq!(search(&conn, "garten -grill"), [2]);
    assert_eq!(search(&conn, "garten -grill -hilfe"), Vec::<i64>::new());
    assert_eq!(search(&conn, r#"garten -"garten offen""#), [2]);
    assert_eq!(sorted(search(&conn, "münchen -strasse")), [2]);
}

#[test]
fn bm25_ranks_the_better_match_first() {
    let conn = table();
    // Row 7 has "Garten" in the title and twice in the body; row 2 once, as a prefix, in the body.
    assert_eq!(search(&conn, "garten"), [7, 2]);
    assert_eq!(search(&conn, "grill"), [7, 1]);
}

/// Every token character of this module is one for SQLite's `unicode61`: folded text has no
/// other characters (the fold tests check that), so SQLite's tokens of folded text and of the
/// quoted query words are exactly this module's tokens.
#[test]
fn token_chars_are_sqlite_token_chars() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    let mut expected = Vec::new();
    let planes = (0x80u32..0x3_2000).chain(0xE_0000..0xE_1000); // up to CJK ext. G and tags
    let token_chars: Vec<char> = planes
        .filter_map(char::from_u32)
        .filter(|&c| is_token_char(c))
        .collect();
    assert!(token_chars.len() > 100_000, "{}", token_chars.len());
    for (id, chunk) in token_chars.chunks(1000).enumerate() {
        let text: String = chunk.iter().flat_map(|&c| [c, ' ']).collect();
        let id = i64::try_from(id).unwrap();
        tx.execute(
            "INSERT INTO t (rowid, body) VALUES (?1, ?2)",
            rusqlite::params![id, text],
        )
        .unwrap();
        expected.push(chunk);
    }
    tx.commit().unwrap();
    let mut stmt = conn
        .prepare("SELECT doc, count(*) FROM t_instances GROUP BY doc ORDER BY doc")
        .unwrap();
    let counts: Vec<(i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(counts.len(), expected.len());
    for (doc, count) in counts {
        let doc = usize::try_from(doc).unwrap();
        if usize::try_from(count).unwrap() != expected[doc].len() {
            let _tx = conn.unchecked_transaction().unwrap();
            let missing: Vec<String> = expected[doc]
                .iter()
                .filter(|&&c| sqlite_token_count(&conn, c) != 1)
                .map(|c| format!("U+{:04X}", u32::from(*c)))
                .collect();
            panic!("SQLite does not treat these as token characters: {missing:?}");
        }
    }
}

fn sqlite_token_count(conn: &Connection, c: char) -> i64 {
    conn.execute("DELETE FROM t WHERE rowid = -1", []).unwrap();
    conn.execute("INSERT INTO t (rowid, body) VALUES (-1, ?1)", [format!("x{c}x")])
        .unwrap();
    conn.query_row("SELECT count(*) FROM t_instances WHERE doc = -1", [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Strings a person (or a fuzzer) might type.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "\"",
    "\"\"",
    "\"\"\"",
    "'",
    "''",
    "*",
    "**",
    "a*",
    "*a",
    "-",
    "--",
    "---a",
    "-\"",
    "-\"a b\"",
    "a -",
    "NEAR(a b)",
    "NEAR(a b, 3)",
    "NEAR",
    "(((",
    ")",
    "())",
    "(a OR b) AND NOT c",
    "AND OR NOT",
    "AND",
    "OR",
    "NOT a",
    "a NOT",
    "title:x",
    "body:",
    ":",
    "{title body}: x",
    "- title : x",
    "^x",
    "^",
    "a\"b",
    "a\"b\"c\"",
    "\"unbalanced quote",
    "a + b",
    "a\0b",
    "\0",
    "\0\0\0 x",
    "😀",
    "😀 Garten 🎉",
    "👨‍👩‍👧‍👦",
    "🙂Danke",
    "\u{200F}مدرسة\u{200E}",
    "\u{202E}txet desrever",
    "\u{FEFF}BOM",
    "\u{301}\u{301}\u{301}",
    "e\u{301}\u{302}\u{303}\u{304}",
    "\u{FFFD}\u{FFFF}\u{10FFFF}",
    "\u{E000}\u{F8FF}",
    "\u{378}\u{379}",
    "ﷺ ﷲ",
    "Ⓐ 🅰 🄰",
    "Ꙃ ꙮ ᚠ 𐍈 𓀀",
    "\t\n\r\u{B}\u{C}",
    "\u{3000}全角\u{3000}",
    "% _ \\ ; --",
    "'; DROP TABLE t; --",
    "a OR",
    "a AND",
    "\"a\" \"b\" \"c\" -\"d\"",
    "„Garten“ «сад» “yard”",
    "x:y:z",
    "@#$%^&*()",
    "x — y – z",
    "a*b*c",
    "10 000 chars follow",
];

fn check_safe(conn: &Connection, input: &str) {
    match SearchQuery::parse(input) {
        Ok(query) => {
            let expr = query.fts5_match();
            if let Err(e) = run(conn, &expr) {
                panic!("{input:?} → {expr:?}: {e}");
            }
            assert!(!query.highlight_terms().is_empty(), "{input:?}");
        }
        // Typed: every variant is fine, the error's message must not be empty.
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

#[test]
fn hostile_inputs_never_make_fts5_fail() {
    assert!(HOSTILE.len() >= 40);
    let conn = table();
    for input in HOSTILE {
        check_safe(&conn, input);
    }
    for long in [
        "a".repeat(10_000),
        "a ".repeat(5_000),
        "\"".repeat(10_000),
        "ü".repeat(10_000),
    ] {
        assert!(SearchQuery::parse(&long).is_err());
        check_safe(&conn, &long);
    }
    let many = "-a ".repeat(100) + "b";
    check_safe(&conn, &many);
}

/// A tiny seeded xorshift, to stay free of extra crates.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn char(&mut self) -> char {
        const PICKS: &[char] = &[
            '"', '"', '"', '\'', '*', '-', '-', '(', ')', ':', '^', '+', '{', '}', ',', '.', ' ', ' ', ' ',
            '\t', '\n', '\0', 'a', 'b', 'e', 'u', 'q', 'N', 'E', 'A', 'R', 'O', 'T', 'D', 'ä', 'ü', 'ß', 'İ',
            'ı', 'ç', 'й', 'ї', '’', 'ʼ', 'أ', 'ة', 'ـ', '\u{64E}', '\u{301}', '\u{308}', '\u{200F}',
            '\u{AD}', '😀', '🙂', '™', '½', 'Ⓐ', '«', '„', '“', '−', '\u{E000}', '\u{378}',
        ];
        match self.below(8) {
            0 => char::from_u32(self.below(0x11_0000) as u32).unwrap_or('x'),
            1 => char::from_u32(0x80 + self.below(0x3000) as u32).unwrap_or('x'),
            _ => PICKS[self.below(PICKS.len())],
        }
    }

    fn string(&mut self, max_len: usize) -> String {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.char()).collect()
    }
}

#[test]
fn random_inputs_never_make_fts5_fail() {
    let conn = table();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for _ in 0..5_000 {
        let input = rng.string(24);
        if SearchQuery::parse(&input).is_ok() {
            accepted += 1;
        }
        check_safe(&conn, &input);
    }
    assert!(
        accepted > 2_000,
        "the generator should mostly make searchable strings: {accepted}"
    );
}

/// SQLite splits folded random text into exactly the tokens this module finds, and every
/// indexed token is found by its own prefixes.
#[test]
fn random_text_tokenises_alike_in_sqlite() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for id in 0..1_000i64 {
        let text = rng.string(40);
        let folded = fold(&text);
        conn.execute(
            "INSERT INTO t (rowid, body) VALUES (?1, ?2)",
            rusqlite::params![id, folded],
        )
        .unwrap();
        let ours = fold_tokens(&text).len();
        let theirs: i64 = conn
            .query_row("SELECT count(*) FROM t_instances WHERE doc = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        let theirs = usize::try_from(theirs).unwrap();
        assert_eq!(ours, theirs, "{text:?} folded to {folded:?}");
        if let Some(token) = fold_tokens(&text).first() {
            let prefix: String = token.text.chars().take(2).collect();
            let expr = format!("\"{prefix}\"*");
            let found = run(&conn, &expr).unwrap();
            assert!(found.contains(&id), "{text:?}: {expr}");
        }
    }
}
