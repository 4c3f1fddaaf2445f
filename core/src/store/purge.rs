//! Purging a space from the device: what a revoked member or a lost device's next sync does.
//! Every document of the space, its changes, outbox entries, projections, history, cursor and
//! membership go, in the caller's transaction.

use rusqlite::Connection;

use super::{documents, projection, Touched};
use crate::error::Result;

pub(crate) fn purge_space(tx: &Connection, space: &str, touched: &mut Touched) -> Result<()> {
    let mut docs = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT doc_id FROM documents WHERE space_id = ?1")?;
        for doc in stmt.query_map([space], |r| r.get::<_, String>(0))? {
            docs.push(doc?);
        }
        let mut stmt = tx.prepare("SELECT item_id FROM items WHERE space_id = ?1")?;
        for doc in stmt.query_map([space], |r| r.get::<_, String>(0))? {
            docs.push(doc?);
        }
    }
    docs.sort();
    docs.dedup();
    for doc in &docs {
        documents::erase(tx, doc)?;
        projection::remove_item(tx, doc)?;
        touched.items.insert(doc.clone());
    }
    for sql in [
        "DELETE FROM outbox WHERE space_id = ?1",
        "DELETE FROM spaces WHERE space_id = ?1",
        "DELETE FROM memberships WHERE space_id = ?1",
        "DELETE FROM sync_spaces WHERE space_id = ?1",
        "DELETE FROM space_registrations WHERE space_id = ?1",
    ] {
        tx.execute(sql, [space])?;
    }
    touched.spaces.insert(space.to_owned());
    tracing::info!(
        space,
        documents = docs.len(),
        "purged a space this device may no longer see"
    );
    Ok(())
}
