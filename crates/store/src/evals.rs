//! The evaluation protocol's records: the evaluation row (renders per prompt, identities) and
//! every re-render of a stored prompt with its image judgments. Like rounds, a batch of renders
//! is committed in one transaction after its image files are written.

use crate::{EvalRenderRecord, EvaluationRecord, JudgmentRecord, NewEvalRender, Store, StoreError};
use art_core::{JudgeOutcome, Verdict};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use std::time::{SystemTime, UNIX_EPOCH};

const RENDER_COLUMNS: &str = "SELECT lane_id, round, k, seed, image_sha256, refusal,
        revised_prompt, image_verdict FROM eval_renders ORDER BY lane_id, round, k";
/// Laid out like the rounds' judgment query so `parse_judgment` reads both; `k` comes last.
const JUDGMENT_COLUMNS: &str = "SELECT lane_id, round, judge, 'image', label, score,
        threshold, error, k FROM eval_judgments ORDER BY lane_id, round, k, seq";

impl Store {
    /// The campaign's evaluation, if one was started.
    pub fn evaluation(&self) -> Result<Option<EvaluationRecord>, StoreError> {
        let get = |e| self.sqlite_err(e);
        let row: Option<(i64, i64, String)> = self
            .conn
            .query_row(
                "SELECT renders, started_at, identities_json FROM evaluation",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(get)?;
        row.map(|(renders, started_at, ids)| {
            Ok(EvaluationRecord {
                renders: u32::try_from(renders)
                    .map_err(|_| self.corrupt(format!("evaluation renders {renders}")))?,
                started_at,
                identities: serde_json::from_str(&ids)
                    .map_err(|e| self.corrupt(format!("evaluation identities: {e}")))?,
            })
        })
        .transpose()
    }

    /// Records the evaluation (replacing an earlier row: a later `art eval` may ask for more
    /// renders per prompt, with the same models).
    pub fn set_evaluation(&mut self, e: &EvaluationRecord) -> Result<(), StoreError> {
        self.ensure_writable()?;
        let get = |err| self.sqlite_err(err);
        let ids = serde_json::to_string(&e.identities)
            .map_err(|err| self.corrupt(format!("cannot encode identities: {err}")))?;
        let tx = self.conn.unchecked_transaction().map_err(get)?;
        tx.execute("DELETE FROM evaluation", []).map_err(get)?;
        tx.execute(
            "INSERT INTO evaluation (renders, started_at, identities_json) VALUES (?1, ?2, ?3)",
            params![i64::from(e.renders), e.started_at, ids],
        )
        .map_err(get)?;
        tx.commit().map_err(get)
    }

    /// Commits evaluation renders: image files first, then one transaction for all rows.
    pub fn commit_eval_renders(&mut self, renders: &[NewEvalRender<'_>]) -> Result<(), StoreError> {
        self.ensure_writable()?;
        let images: Vec<Option<&art_core::Image>> = renders.iter().map(|r| r.image).collect();
        let shas = self.images.store_all(&self.dir, &images)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let db_path = self.db_path.clone();
        let get = |source| StoreError::Sqlite {
            path: db_path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(get)?;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO eval_renders (lane_id, round, k, seed, image_sha256, refusal,
                     revised_prompt, image_verdict, committed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(get)?;
            let mut ins_j = tx
                .prepare_cached(
                    "INSERT INTO eval_judgments (lane_id, round, k, seq, judge, label, score,
                     threshold, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(get)?;
            for (new, sha) in renders.iter().zip(&shas) {
                let r = &new.render;
                ins.execute(params![
                    r.lane_id,
                    i64::from(r.round),
                    i64::from(r.k),
                    r.seed as i64,
                    sha,
                    r.refusal,
                    r.revised_prompt,
                    r.image_verdict.as_str(),
                    now,
                ])
                .map_err(get)?;
                for (seq, j) in r.judgments.iter().enumerate() {
                    let (label, score, threshold, error) = match &j.outcome {
                        JudgeOutcome::Scored(s) => {
                            (Some(s.label.as_str()), Some(s.score), s.threshold, None)
                        }
                        JudgeOutcome::Error(e) => (None, None, None, Some(e.as_str())),
                    };
                    ins_j
                        .execute(params![
                            r.lane_id,
                            i64::from(r.round),
                            i64::from(r.k),
                            seq as i64,
                            j.judge,
                            label,
                            score,
                            threshold,
                            error,
                        ])
                        .map_err(get)?;
                }
            }
        }
        tx.commit().map_err(get)
    }

    /// Every evaluation render, ordered by (lane, round, k), with its judgments.
    pub fn eval_renders(&self) -> Result<Vec<EvalRenderRecord>, StoreError> {
        let get = |e| self.sqlite_err(e);
        let tx = self.conn.unchecked_transaction().map_err(get)?;
        let mut out: Vec<EvalRenderRecord> = Vec::new();
        {
            let mut stmt = tx.prepare_cached(RENDER_COLUMNS).map_err(get)?;
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(get)? {
                let verdict: String = row.get(7).map_err(get)?;
                let lane_id: i64 = row.get(0).map_err(get)?;
                let round: i64 = row.get(1).map_err(get)?;
                let k: i64 = row.get(2).map_err(get)?;
                let bad =
                    |what: &str| self.corrupt(format!("eval render {lane_id}/{round}/{k}: {what}"));
                out.push(EvalRenderRecord {
                    lane_id,
                    round: u32::try_from(round).map_err(|_| bad("round out of range"))?,
                    k: u32::try_from(k).map_err(|_| bad("k out of range"))?,
                    seed: row.get::<_, i64>(3).map_err(get)? as u64,
                    image_sha256: row.get(4).map_err(get)?,
                    refusal: row.get(5).map_err(get)?,
                    revised_prompt: row.get(6).map_err(get)?,
                    image_verdict: Verdict::parse(&verdict)
                        .ok_or_else(|| bad(&format!("unknown verdict {verdict:?}")))?,
                    judgments: Vec::new(),
                });
            }
        }
        {
            let mut stmt = tx.prepare_cached(JUDGMENT_COLUMNS).map_err(get)?;
            let mut rows = stmt.raw_query();
            let mut at = 0;
            while let Some(row) = rows.next().map_err(get)? {
                let lane: i64 = row.get(0).map_err(get)?;
                let round: i64 = row.get(1).map_err(get)?;
                let k: i64 = row.get(8).map_err(get)?;
                let key = (lane, round, k);
                let of = |r: &EvalRenderRecord| (r.lane_id, i64::from(r.round), i64::from(r.k));
                while at < out.len() && of(&out[at]) < key {
                    at += 1;
                }
                let j: JudgmentRecord = self.parse_judgment(row, (lane, round))?;
                match out.get_mut(at) {
                    Some(r) if of(r) == key => r.judgments.push(j),
                    _ => {
                        return Err(self.corrupt(format!(
                            "eval judgment for {lane}/{round}/{k} has no render"
                        )));
                    }
                }
            }
        }
        tx.commit().map_err(get)?;
        Ok(out)
    }
}
