//! Committing and reading rounds and their judgments.
//!
//! A round is the unit of commit: its row and all its judgments land in one transaction, and a
//! batch of rounds shares that transaction (one commit per batch keeps the store far above the
//! engine's rate). Image files are written before the transaction, so a committed round never
//! points at a missing file. Reading merges one ordered query over rounds with one ordered
//! query over judgments, inside one read transaction so a concurrent writer cannot make them
//! disagree.

use crate::{
    GuideRecord, JudgmentRecord, NewRound, RenderRecord, RoundRecord, Store, StoreError, Subject,
    WriterRecord,
};
use art_core::{JudgeOutcome, JudgeScore, Label, Verdict};
use rusqlite::{Row, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

const INSERT_ROUND: &str = "INSERT INTO rounds (
        lane_id, round, prompt,
        render_seed, image_sha256, refusal, truncated_prompt,
        guide_seed, guide_raw, guide_instructions,
        writer_seed, writer_instruction, writer_output,
        prompt_verdict, image_verdict, timings_json, committed_at, revised_prompt)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

const INSERT_JUDGMENT: &str = "INSERT INTO judgments (
        lane_id, round, seq, judge, subject, label, score, threshold, error)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const ROUND_COLUMNS: &str = "SELECT lane_id, round, prompt,
        render_seed, image_sha256, refusal, truncated_prompt,
        guide_seed, guide_raw, guide_instructions,
        writer_seed, writer_instruction, writer_output,
        prompt_verdict, image_verdict, timings_json, revised_prompt
    FROM rounds";

const JUDGMENT_COLUMNS: &str =
    "SELECT lane_id, round, judge, subject, label, score, threshold, error FROM judgments";

impl Store {
    /// Commits a batch of rounds. Image files are written first (content-addressed, atomic
    /// rename, skipped when already present); then every round and its judgments are inserted
    /// in one transaction, so the batch lands entirely or not at all. A `(lane_id, round)` that
    /// is already stored fails the whole batch. Returns each round's image hash (`None` where it
    /// has no image), in order; the hash is also what is stored in `render.image_sha256`.
    pub fn commit_rounds(
        &mut self,
        rounds: &[NewRound<'_>],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.ensure_writable()?;
        if let Some(bad) = rounds
            .iter()
            .find(|r| r.image.is_some() && r.round.render.is_none())
        {
            return Err(StoreError::Image {
                path: self.dir.join(crate::images::IMAGES_DIR),
                detail: format!(
                    "round {} of lane {} carries an image but no render record",
                    bad.round.round, bad.round.lane_id
                ),
            });
        }
        let images: Vec<Option<&art_core::Image>> = rounds.iter().map(|r| r.image).collect();
        let shas = self.images.store_all(&self.dir, &images)?;
        let committed_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let db_path = self.db_path.clone();
        let sqlite = |source| StoreError::Sqlite {
            path: db_path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        {
            let mut insert_round = tx.prepare_cached(INSERT_ROUND).map_err(sqlite)?;
            let mut insert_judgment = tx.prepare_cached(INSERT_JUDGMENT).map_err(sqlite)?;
            for (new, sha) in rounds.iter().zip(&shas) {
                let r = &new.round;
                let render = r.render.as_ref();
                let guide = r.guide.as_ref();
                let writer = r.writer.as_ref();
                let timings =
                    serde_json::to_string(&r.timings_ms).map_err(|e| StoreError::Corrupt {
                        path: db_path.clone(),
                        detail: format!("cannot encode timings: {e}"),
                    })?;
                insert_round
                    .execute(params![
                        r.lane_id,
                        i64::from(r.round),
                        r.prompt,
                        render.map(|x| x.seed as i64),
                        sha,
                        render.and_then(|x| x.refusal.as_deref()),
                        render.and_then(|x| x.truncated_prompt.as_deref()),
                        guide.map(|x| x.seed as i64),
                        guide.map(|x| x.raw.as_str()),
                        guide.map(|x| x.instructions.as_str()),
                        writer.map(|x| x.seed as i64),
                        writer.map(|x| x.instruction.as_str()),
                        writer.map(|x| x.output.as_str()),
                        r.prompt_verdict.as_str(),
                        r.image_verdict.as_str(),
                        timings,
                        committed_at,
                        render.and_then(|x| x.revised_prompt.as_deref()),
                    ])
                    .map_err(sqlite)?;
                for (seq, j) in r.judgments.iter().enumerate() {
                    let (label, score, threshold, error) = match &j.outcome {
                        JudgeOutcome::Scored(s) => {
                            (Some(s.label.as_str()), Some(s.score), s.threshold, None)
                        }
                        JudgeOutcome::Error(e) => (None, None, None, Some(e.as_str())),
                    };
                    insert_judgment
                        .execute(params![
                            r.lane_id,
                            i64::from(r.round),
                            seq as i64,
                            j.judge,
                            j.subject.as_str(),
                            label,
                            score,
                            threshold,
                            error,
                        ])
                        .map_err(sqlite)?;
                }
            }
        }
        tx.commit().map_err(sqlite)?;
        Ok(shas)
    }

    /// The committed rounds of one lane, ordered by round, judgments in commit order.
    pub fn rounds(&self, lane_id: i64) -> Result<Vec<RoundRecord>, StoreError> {
        self.read_rounds(Some(lane_id))
    }

    /// Every committed round of the campaign, ordered by `(lane_id, round)`.
    pub fn all_rounds(&self) -> Result<Vec<RoundRecord>, StoreError> {
        self.read_rounds(None)
    }

    fn read_rounds(&self, lane: Option<i64>) -> Result<Vec<RoundRecord>, StoreError> {
        let get = |e| self.sqlite_err(e);
        let (round_sql, judgment_sql) = match lane {
            Some(_) => (
                format!("{ROUND_COLUMNS} WHERE lane_id = ?1 ORDER BY round"),
                format!("{JUDGMENT_COLUMNS} WHERE lane_id = ?1 ORDER BY round, seq"),
            ),
            None => (
                format!("{ROUND_COLUMNS} ORDER BY lane_id, round"),
                format!("{JUDGMENT_COLUMNS} ORDER BY lane_id, round, seq"),
            ),
        };
        let bind = |stmt: &mut rusqlite::CachedStatement<'_>| match lane {
            Some(id) => stmt.raw_bind_parameter(1, id),
            None => Ok(()),
        };
        // Both queries see the same snapshot even while another process commits.
        let tx = self.conn.unchecked_transaction().map_err(get)?;
        let mut out = Vec::new();
        {
            let mut stmt = tx.prepare_cached(&round_sql).map_err(get)?;
            bind(&mut stmt).map_err(get)?;
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(get)? {
                out.push(self.parse_round(row)?);
            }
        }
        {
            let mut stmt = tx.prepare_cached(&judgment_sql).map_err(get)?;
            bind(&mut stmt).map_err(get)?;
            let mut rows = stmt.raw_query();
            let mut at = 0;
            while let Some(row) = rows.next().map_err(get)? {
                let key: (i64, i64) = (row.get(0).map_err(get)?, row.get(1).map_err(get)?);
                // Both streams are sorted by (lane_id, round): advance to the judgment's round.
                while at < out.len() && (out[at].lane_id, i64::from(out[at].round)) < key {
                    at += 1;
                }
                match out.get_mut(at) {
                    Some(r) if (r.lane_id, i64::from(r.round)) == key => {
                        let j = self.parse_judgment(row, key)?;
                        r.judgments.push(j);
                    }
                    _ => {
                        return Err(self.corrupt(format!(
                            "judgment for lane {} round {} has no round",
                            key.0, key.1
                        )));
                    }
                }
            }
        }
        tx.commit().map_err(get)?;
        Ok(out)
    }

    fn parse_round(&self, row: &Row<'_>) -> Result<RoundRecord, StoreError> {
        let get = |e| self.sqlite_err(e);
        let lane_id: i64 = row.get(0).map_err(get)?;
        let round: i64 = row.get(1).map_err(get)?;
        let at = |what: &str| format!("lane {lane_id} round {round}: {what}");
        let round = u32::try_from(round).map_err(|_| self.corrupt(at("round out of range")))?;
        let seed = |i: usize| row.get::<_, Option<i64>>(i).map(|s| s.map(|s| s as u64));
        let text = |i: usize, what: &str| -> Result<String, StoreError> {
            row.get::<_, Option<String>>(i)
                .map_err(get)?
                .ok_or_else(|| self.corrupt(at(&format!("{what} is missing"))))
        };
        let render = match seed(3).map_err(get)? {
            None => None,
            Some(seed) => Some(RenderRecord {
                seed,
                image_sha256: row.get(4).map_err(get)?,
                refusal: row.get(5).map_err(get)?,
                truncated_prompt: row.get(6).map_err(get)?,
                revised_prompt: row.get(16).map_err(get)?,
            }),
        };
        let guide = match seed(7).map_err(get)? {
            None => None,
            Some(seed) => Some(GuideRecord {
                seed,
                raw: text(8, "guide_raw")?,
                instructions: text(9, "guide_instructions")?,
            }),
        };
        let writer = match seed(10).map_err(get)? {
            None => None,
            Some(seed) => Some(WriterRecord {
                seed,
                instruction: text(11, "writer_instruction")?,
                output: text(12, "writer_output")?,
            }),
        };
        let verdict = |i: usize| -> Result<Verdict, StoreError> {
            let s: String = row.get(i).map_err(get)?;
            Verdict::parse(&s).ok_or_else(|| self.corrupt(at(&format!("unknown verdict {s:?}"))))
        };
        let timings: String = row.get(15).map_err(get)?;
        // serde_json writes a non-finite number as null; read it back as NaN.
        let timings: BTreeMap<String, Option<f64>> = serde_json::from_str(&timings)
            .map_err(|e| self.corrupt(at(&format!("timings_json: {e}"))))?;
        Ok(RoundRecord {
            lane_id,
            round,
            prompt: row.get(2).map_err(get)?,
            render,
            guide,
            writer,
            prompt_verdict: verdict(13)?,
            image_verdict: verdict(14)?,
            judgments: Vec::new(),
            timings_ms: timings
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
                .collect(),
        })
    }

    pub(crate) fn parse_judgment(
        &self,
        row: &Row<'_>,
        (lane_id, round): (i64, i64),
    ) -> Result<JudgmentRecord, StoreError> {
        let get = |e| self.sqlite_err(e);
        let at = |what: String| self.corrupt(format!("lane {lane_id} round {round}: {what}"));
        let judge: String = row.get(2).map_err(get)?;
        let subject: String = row.get(3).map_err(get)?;
        let subject = Subject::parse(&subject)
            .ok_or_else(|| at(format!("judge {judge}: unknown subject {subject:?}")))?;
        let error: Option<String> = row.get(7).map_err(get)?;
        let outcome = match error {
            Some(e) => JudgeOutcome::Error(e),
            None => {
                let label: Option<String> = row.get(4).map_err(get)?;
                let label = label
                    .as_deref()
                    .and_then(Label::parse)
                    .ok_or_else(|| at(format!("judge {judge}: bad label {label:?}")))?;
                JudgeOutcome::Scored(JudgeScore {
                    label,
                    // SQLite stores NaN as NULL.
                    score: row
                        .get::<_, Option<f64>>(5)
                        .map_err(get)?
                        .unwrap_or(f64::NAN),
                    threshold: row.get(6).map_err(get)?,
                })
            }
        };
        Ok(JudgmentRecord {
            judge,
            subject,
            outcome,
        })
    }
}
