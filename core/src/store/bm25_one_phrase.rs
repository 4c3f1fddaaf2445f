//! The FTS5 auxiliary function `bm25_one_phrase(items_fts, weights…)`, registered on every
//! store connection: FTS5's BM25 without the phrases' inverse document frequency.
//!
//! FTS5's own `bm25` weighs each phrase by how many rows hold it, and counts those rows by
//! walking the phrase's whole doclist once per search: for a prefix, merging the lists of every
//! word it begins, which the match itself has just done. That count was a fifth of a search's
//! time over 100 000 items. A search for one word or phrase has one such weight, the same for
//! every row, so the order needs no count: `query::search` ranks those searches with this
//! function, which gives the same order as `bm25`, and the others with `bm25`.
//!
//! This is the store's only `unsafe` code: rusqlite has no binding for FTS5's C extension API,
//! so the function is registered and reads its row through the raw API. It only reads: the
//! phrase instances and token counts of the current row, and the table's totals.

use std::ffi::{c_int, c_void, CStr};
use std::ptr;

use rusqlite::{ffi, Connection};

use crate::error::{Error, Result};

/// The SQL name of the function.
pub(crate) const NAME: &str = "bm25_one_phrase";
const NAME_C: &CStr = c"bm25_one_phrase";

/// Column weights read at most (the index has three columns); later columns weigh 1.
const MAX_COLUMNS: usize = 8;

/// FTS5's `bm25` constants (`fts5_aux.c`), so that the order is the same.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Registers the function on `conn`. Fails if this SQLite has no FTS5 API of version 2 or
/// later (never with the bundled SQLite).
pub(crate) fn register(conn: &Connection) -> Result<()> {
    // SAFETY: `conn.handle()` is a live connection for the whole block. The `fts5_api` pointer
    // is obtained as SQLite documents (`SELECT fts5(?1)` with the address of a pointer bound as
    // a "fts5_api_ptr" pointer value); it stays valid as long as the connection. The statement
    // is finalised on every path.
    unsafe {
        let db = conn.handle();
        let mut api: *mut ffi::fts5_api = ptr::null_mut();
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let rc = ffi::sqlite3_prepare_v2(db, c"SELECT fts5(?1)".as_ptr(), -1, &mut stmt, ptr::null_mut());
        if rc != ffi::SQLITE_OK {
            ffi::sqlite3_finalize(stmt);
            return Err(unavailable(rc));
        }
        ffi::sqlite3_bind_pointer(
            stmt,
            1,
            (&mut api as *mut *mut ffi::fts5_api).cast::<c_void>(),
            c"fts5_api_ptr".as_ptr(),
            None,
        );
        ffi::sqlite3_step(stmt);
        ffi::sqlite3_finalize(stmt);
        if api.is_null() || (*api).iVersion < 2 {
            return Err(unavailable(ffi::SQLITE_ERROR));
        }
        let create = (*api)
            .xCreateFunction
            .ok_or_else(|| unavailable(ffi::SQLITE_ERROR))?;
        let rc = create(api, NAME_C.as_ptr(), ptr::null_mut(), Some(bm25_one_phrase), None);
        if rc != ffi::SQLITE_OK {
            return Err(unavailable(rc));
        }
    }
    Ok(())
}

/// The callback FTS5 calls once per matching row.
///
/// # Safety
/// Called by FTS5 only, with its extension API, the current row's context, the SQL function
/// context and `n_values` argument values (the weights), all valid for the call.
unsafe extern "C" fn bm25_one_phrase(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    ctx: *mut ffi::sqlite3_context,
    n_values: c_int,
    values: *mut *mut ffi::sqlite3_value,
) {
    // Called for each of up to 500 rows per search: the weights and counts live on the stack.
    let mut weights = [1.0_f64; MAX_COLUMNS];
    for (i, weight) in weights.iter_mut().enumerate().take(n_values.max(0) as usize) {
        *weight = ffi::sqlite3_value_double(*values.add(i));
    }
    // Columns without a weight given weigh 1, as in `bm25`.
    match score(&*api, fts, &weights) {
        Ok(score) => ffi::sqlite3_result_double(ctx, score),
        Err(rc) => ffi::sqlite3_result_error_code(ctx, rc),
    }
}

/// BM25 of the current row as FTS5 computes it, every phrase's inverse document frequency
/// taken as 1: minus the sum over phrases of `f·(k1+1) / (f + k1·(1 − b + b·D/avgdl))`, where
/// `f` is the phrase's weighted instance count in the row and `D` the row's token count.
///
/// # Safety
/// `api` and `fts` as FTS5 passes them to an auxiliary function.
unsafe fn score(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    weights: &[f64],
) -> std::result::Result<f64, c_int> {
    let missing = ffi::SQLITE_MISUSE;
    let phrases = api.xPhraseCount.ok_or(missing)?(fts).max(0) as usize;
    let mut on_stack = [0.0_f64; 32];
    let mut on_heap = Vec::new();
    let frequency: &mut [f64] = match on_stack.get_mut(..phrases) {
        Some(counts) => counts,
        None => {
            on_heap.resize(phrases, 0.0);
            &mut on_heap
        }
    };
    let mut instances: c_int = 0;
    check(api.xInstCount.ok_or(missing)?(fts, &mut instances))?;
    let inst = api.xInst.ok_or(missing)?;
    for i in 0..instances {
        let (mut phrase, mut column, mut offset) = (0, 0, 0);
        check(inst(fts, i, &mut phrase, &mut column, &mut offset))?;
        let weight = usize::try_from(column)
            .ok()
            .and_then(|c| weights.get(c))
            .copied()
            .unwrap_or(1.0);
        if let Some(f) = usize::try_from(phrase).ok().and_then(|p| frequency.get_mut(p)) {
            *f += weight;
        }
    }
    let mut rows: i64 = 0;
    check(api.xRowCount.ok_or(missing)?(fts, &mut rows))?;
    let mut total_tokens: i64 = 0;
    check(api.xColumnTotalSize.ok_or(missing)?(fts, -1, &mut total_tokens))?;
    let mut row_tokens: c_int = 0;
    check(api.xColumnSize.ok_or(missing)?(fts, -1, &mut row_tokens))?;
    // As `bm25`; a matching row has tokens, so the average is never 0 where this is called.
    let average = total_tokens as f64 / rows.max(1) as f64;
    let average = if average > 0.0 { average } else { 1.0 };
    let length = K1 * (1.0 - B + B * f64::from(row_tokens) / average);
    let sum: f64 = frequency.iter().map(|&f| f * (K1 + 1.0) / (f + length)).sum();
    Ok(-sum)
}

fn unavailable(rc: c_int) -> Error {
    Error::Storage(rusqlite::Error::SqliteFailure(
        ffi::Error::new(rc),
        Some(format!(
            "cannot register {NAME}: this SQLite has no usable FTS5 extension API"
        )),
    ))
}

fn check(rc: c_int) -> std::result::Result<(), c_int> {
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store connection with a three-column FTS5 table of rows whose lengths and word counts
    /// differ, as the store's index does.
    fn table() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = super::super::connection::open_writer(&dir.path().join("s.db"), None).expect("open");
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(title, body, extra, content = '', contentless_delete = 1);",
        )
        .expect("table");
        let rows = [
            ("garten", "der garten am haus", ""),
            (
                "fest",
                "gartenfest im garten und noch ein garten mit viel mehr text drum herum",
                "garten",
            ),
            ("gartenzaun", "", ""),
            ("markt", "kein treffer hier", "nachbar"),
            ("garten garten", "kurz", ""),
            ("nachbarschaft", "der garten der nachbarn", "gartenarbeit"),
        ];
        for (i, (title, body, extra)) in rows.iter().enumerate() {
            conn.execute(
                "INSERT INTO t (rowid, title, body, extra) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![i as i64 + 1, title, body, extra],
            )
            .expect("row");
        }
        (dir, conn)
    }

    fn scores(conn: &Connection, rank: &str, query: &str) -> Vec<(i64, f64)> {
        let sql = format!("SELECT rowid, {rank}(t, 8.0, 1.0, 3.0) FROM t WHERE t MATCH ?1 ORDER BY rowid");
        let mut stmt = conn.prepare(&sql).expect("prepare");
        let rows = stmt
            .query_map([query], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("rows");
        rows
    }

    #[test]
    fn one_phrase_scores_are_bm25_without_its_constant_weight() {
        let (_dir, conn) = table();
        for query in [
            r#""garten""#,
            r#""garten"*"#,
            r#""der garten""#,
            r#""garten"* NOT "markt""#,
            r#""nachbar"*"#,
        ] {
            let bm25 = scores(&conn, "bm25", query);
            let ours = scores(&conn, NAME, query);
            assert!(bm25.len() >= 2, "{query}: too few rows to compare: {bm25:?}");
            assert_eq!(
                bm25.iter().map(|r| r.0).collect::<Vec<_>>(),
                ours.iter().map(|r| r.0).collect::<Vec<_>>()
            );
            // bm25 = IDF × ours for every row: one ratio, and the same order.
            let ratio = bm25[0].1 / ours[0].1;
            assert!(ratio > 0.0, "{query}: {bm25:?} {ours:?}");
            for (b, o) in bm25.iter().zip(&ours) {
                assert!(o.1 < 0.0, "{query}: a match scores below zero: {ours:?}");
                assert!(
                    ((b.1 / o.1) - ratio).abs() < 1e-9 * ratio,
                    "{query}: {bm25:?} against {ours:?}"
                );
            }
        }
    }

    #[test]
    fn column_weights_count() {
        let (_dir, conn) = table();
        let title_heavy = scores(&conn, NAME, r#""garten""#);
        let mut stmt = conn
            .prepare(&format!(
                "SELECT rowid, {NAME}(t, 1.0, 8.0, 1.0) FROM t WHERE t MATCH '\"garten\"' ORDER BY rowid"
            ))
            .expect("prepare");
        let body_heavy: Vec<(i64, f64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        // Row 5 holds the word twice in its title only, row 2 twice in its body: the weights
        // decide which scores better.
        let score = |rows: &[(i64, f64)], id: i64| rows.iter().find(|r| r.0 == id).map(|r| r.1);
        assert!(score(&title_heavy, 5) < score(&title_heavy, 2));
        assert!(score(&body_heavy, 2) < score(&body_heavy, 5));
    }
}
