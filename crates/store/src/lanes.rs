//! The campaign row and the lanes table.
//!
//! A lane is one category x one seed number; the engine creates all of a campaign's lanes up
//! front, then moves each from `open` to `done` or `failed`. How far a lane got is not stored
//! on the lane: it is derived from its committed rounds (`last_round`), so it can never
//! disagree with them.

use crate::{CampaignRecord, LaneRecord, LaneStatus, NewLane, Store, StoreError};
use art_core::ModelIdentity;
use rusqlite::{Connection, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::path::Path;

/// Inserts the one campaign row (inside the caller's transaction).
pub(crate) fn insert_campaign(
    conn: &Connection,
    db_path: &Path,
    campaign: &CampaignRecord,
) -> Result<(), StoreError> {
    let identities =
        serde_json::to_string(&campaign.identities).map_err(|e| StoreError::Corrupt {
            path: db_path.to_path_buf(),
            detail: format!("cannot encode model identities: {e}"),
        })?;
    conn.execute(
        "INSERT INTO campaign (name, created_at, tool_version, config_toml, identities_json)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            campaign.name,
            campaign.created_at,
            campaign.tool_version,
            campaign.config_toml,
            identities
        ],
    )
    .map_err(|source| StoreError::Sqlite {
        path: db_path.to_path_buf(),
        source,
    })?;
    Ok(())
}

impl Store {
    /// The campaign row.
    pub fn campaign(&self) -> Result<CampaignRecord, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, created_at, tool_version, config_toml, identities_json
                 FROM campaign LIMIT 1",
            )
            .map_err(|e| self.sqlite_err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sqlite_err(e))?;
        let Some(row) = rows.next().map_err(|e| self.sqlite_err(e))? else {
            return Err(self.corrupt("the campaign row is missing".to_string()));
        };
        let get = |e| self.sqlite_err(e);
        let identities: String = row.get(4).map_err(get)?;
        let identities: BTreeMap<String, ModelIdentity> = serde_json::from_str(&identities)
            .map_err(|e| self.corrupt(format!("campaign identities_json: {e}")))?;
        Ok(CampaignRecord {
            name: row.get(0).map_err(get)?,
            created_at: row.get(1).map_err(get)?,
            tool_version: row.get(2).map_err(get)?,
            config_toml: row.get(3).map_err(get)?,
            identities,
        })
    }

    /// Inserts `lanes` in one transaction (all or none), each `open` with no error. Returns the
    /// records, with their new ids, in input order.
    pub fn insert_lanes(&mut self, lanes: &[NewLane]) -> Result<Vec<LaneRecord>, StoreError> {
        self.ensure_writable()?;
        let db_path = self.db_path.clone();
        let sqlite = |source| StoreError::Sqlite {
            path: db_path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let mut out = Vec::with_capacity(lanes.len());
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO lanes (category, seed_index, lane_seed, seed_prompt, status, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                )
                .map_err(sqlite)?;
            for lane in lanes {
                let id = stmt
                    .insert(params![
                        lane.category,
                        lane.seed_index as i64,
                        lane.lane_seed as i64,
                        lane.seed_prompt,
                        LaneStatus::Open.as_str()
                    ])
                    .map_err(sqlite)?;
                out.push(LaneRecord {
                    id,
                    category: lane.category.clone(),
                    seed_index: lane.seed_index,
                    lane_seed: lane.lane_seed,
                    seed_prompt: lane.seed_prompt.clone(),
                    status: LaneStatus::Open,
                    error: None,
                    last_round: None,
                });
            }
        }
        tx.commit().map_err(sqlite)?;
        Ok(out)
    }

    /// All lanes ordered by id; `last_round` is the highest committed round of each.
    pub fn lanes(&self) -> Result<Vec<LaneRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, category, seed_index, lane_seed, seed_prompt, status, error,
                        (SELECT MAX(round) FROM rounds WHERE rounds.lane_id = lanes.id)
                 FROM lanes ORDER BY id",
            )
            .map_err(|e| self.sqlite_err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sqlite_err(e))?;
        let mut out = Vec::new();
        let get = |e| self.sqlite_err(e);
        while let Some(row) = rows.next().map_err(get)? {
            let id: i64 = row.get(0).map_err(get)?;
            let status: String = row.get(5).map_err(get)?;
            let status = LaneStatus::parse(&status)
                .ok_or_else(|| self.corrupt(format!("lane {id}: unknown status {status:?}")))?;
            let last_round = row
                .get::<_, Option<i64>>(7)
                .map_err(get)?
                .map(|r| {
                    u32::try_from(r)
                        .map_err(|_| self.corrupt(format!("lane {id}: round {r} out of range")))
                })
                .transpose()?;
            out.push(LaneRecord {
                id,
                category: row.get(1).map_err(get)?,
                seed_index: row.get::<_, i64>(2).map_err(get)? as u64,
                lane_seed: row.get::<_, i64>(3).map_err(get)? as u64,
                seed_prompt: row.get(4).map_err(get)?,
                status,
                error: row.get(6).map_err(get)?,
                last_round,
            });
        }
        Ok(out)
    }

    /// Sets a lane's status and error text. An unknown lane id is an error
    /// (`QueryReturnedNoRows`).
    pub fn set_lane_status(
        &mut self,
        lane_id: i64,
        status: LaneStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.ensure_writable()?;
        let changed = self
            .conn
            .prepare_cached("UPDATE lanes SET status = ?2, error = ?3 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![lane_id, status.as_str(), error]))
            .map_err(|e| self.sqlite_err(e))?;
        if changed == 0 {
            return Err(self.sqlite_err(rusqlite::Error::QueryReturnedNoRows));
        }
        Ok(())
    }
}
