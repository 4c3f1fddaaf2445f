//! What the moderation and help parts of a sync share. For each of these the server keeps a log
//! per space that a device follows with a cursor, and the device sends its own steps from a
//! small outbox of its own (their columns differ, so the tables stay two). This module is the
//! one way to keep those cursors, to take a log entry once, and to settle or dismiss an outbox
//! entry. It touches only the tables named by [`ServerLog`] and `memberships`.

use quartier_protocol::moderation::{ModerationCursor, ModerationOutcome};
use rusqlite::{params, Connection};

use crate::error::{parse_stored_uuid, Error, Result};

/// A log the server keeps per space, with this device's cursors and outbox for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerLog {
    Moderation,
    Help,
}

impl ServerLog {
    fn cursors_table(self) -> &'static str {
        match self {
            ServerLog::Moderation => "moderation_cursors",
            ServerLog::Help => "help_cursors",
        }
    }

    fn outbox_table(self) -> &'static str {
        match self {
            ServerLog::Moderation => "moderation_outbox",
            ServerLog::Help => "help_outbox",
        }
    }

    /// Where this device stands in each of its spaces' logs: a cursor per membership, 0 where
    /// nothing was received yet (at most as many as a request may carry).
    pub(crate) fn cursors(self, conn: &Connection) -> Result<Vec<ModerationCursor>> {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT m.space_id, coalesce(c.after, 0) FROM memberships m
             LEFT JOIN {} c ON c.space_id = m.space_id ORDER BY m.space_id LIMIT ?1",
            self.cursors_table()
        ))?;
        let rows = stmt.query_map([quartier_protocol::MAX_CURSORS_PER_REQUEST as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (space, after) = row?;
            out.push(ModerationCursor {
                space: parse_stored_uuid(&space)?,
                after,
            });
        }
        Ok(out)
    }

    /// Runs `take` for the entry `seq` of `space`'s log unless the cursor is already past it (a
    /// response delivered late or twice), then moves the cursor: each entry is taken once, in
    /// log order. Whether it was taken.
    pub(crate) fn take_once(
        self,
        tx: &Connection,
        space: &str,
        seq: i64,
        take: impl FnOnce() -> Result<()>,
    ) -> Result<bool> {
        let at: i64 = tx
            .prepare_cached(&format!(
                "SELECT coalesce((SELECT after FROM {} WHERE space_id = ?1), 0)",
                self.cursors_table()
            ))?
            .query_row([space], |r| r.get(0))?;
        if seq <= at {
            return Ok(false);
        }
        take()?;
        self.advance(tx, space, seq)?;
        Ok(true)
    }

    /// Moves the cursor of `space` to `seq`, never back.
    pub(crate) fn advance(self, tx: &Connection, space: &str, seq: i64) -> Result<()> {
        tx.prepare_cached(&format!(
            "INSERT INTO {} (space_id, after) VALUES (?1, ?2)
             ON CONFLICT (space_id) DO UPDATE SET after = max(after, excluded.after)",
            self.cursors_table()
        ))?
        .execute(params![space, seq])?;
        Ok(())
    }

    /// Settles an outbox entry by the server's outcome: taken, it leaves the outbox; refused, it
    /// stays, marked with the code and message, until the app dismisses it.
    pub(crate) fn settle(self, tx: &Connection, outcome: &ModerationOutcome) -> Result<()> {
        let id = outcome.id.to_string();
        match &outcome.refused {
            None => tx
                .prepare_cached(&format!("DELETE FROM {} WHERE id = ?1", self.outbox_table()))?
                .execute([&id])?,
            Some(refusal) => tx
                .prepare_cached(&format!(
                    "UPDATE {} SET refused = ?2 WHERE id = ?1",
                    self.outbox_table()
                ))?
                .execute(params![id, format!("{}: {}", refusal.code, refusal.message)])?,
        };
        Ok(())
    }

    /// Forgets a refused outbox entry; one still waiting (or none) is `Invalid`, described as
    /// `what` ("report or decision", "help step").
    pub(crate) fn dismiss_refused(self, tx: &Connection, id: uuid::Uuid, what: &str) -> Result<()> {
        let removed = tx
            .prepare_cached(&format!(
                "DELETE FROM {} WHERE id = ?1 AND refused IS NOT NULL",
                self.outbox_table()
            ))?
            .execute([id.to_string()])?;
        if removed == 0 {
            return Err(Error::Invalid {
                field: "id",
                reason: format!("no refused {what} with this id"),
            });
        }
        Ok(())
    }
}
