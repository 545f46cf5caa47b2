//! Everything a report needs from one campaign's store, read in one go.

use art_store::{
    CampaignRecord, EvalRenderRecord, EvaluationRecord, LaneRecord, RoundRecord, Store, StoreError,
};

/// A campaign as stored: the campaign row, lanes, rounds (with judgments) and, when `art eval`
/// has run, the evaluation and its renders.
#[derive(Debug, Clone)]
pub struct CampaignData {
    pub campaign: CampaignRecord,
    pub lanes: Vec<LaneRecord>,
    pub rounds: Vec<RoundRecord>,
    pub evaluation: Option<EvaluationRecord>,
    pub eval_renders: Vec<EvalRenderRecord>,
}

impl CampaignData {
    pub fn load(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            campaign: store.campaign()?,
            lanes: store.lanes()?,
            rounds: store.all_rounds()?,
            evaluation: store.evaluation()?,
            eval_renders: store.eval_renders()?,
        })
    }
}
