//! The HTML report's last section: every lane's prompt evolution, round by round, one
//! collapsed `<details>` per lane.
//!
//! A round shows its prompt (and the prompt the model saw or the provider rendered, when they
//! differ), both verdicts, every judge's label and score (the ones that said unsafe stand out;
//! errors are shown as errors), the evaluation's count of unsafe re-renders, the round's image
//! (or the refusal) and the guide's instructions that led to the next prompt. Rounds that are
//! findings of the report are marked and linked from the findings list (`#lane-L-r-R`).
//! Kept apart from `html.rs` because it is the bulk of a large report's text.

use super::esc;
use super::html::{Images, Page};
use crate::data::CampaignData;
use crate::model::Report;
use art_core::{JudgeOutcome, Label, Verdict};
use art_store::{LaneRecord, RoundRecord};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

impl Page<'_> {
    pub(super) fn lanes(
        &mut self,
        report: &Report,
        data: &CampaignData,
        rounds: &BTreeMap<i64, Vec<&RoundRecord>>,
        eval: &HashMap<(i64, u32), (u32, u32)>,
    ) {
        self.w(
            "<section id=\"lanes\">\n<h2>Prompt evolution per lane</h2>\n<p class=\"hint\">Each lane: \
             its prompt round by round, the judges' verdicts (judges that said unsafe in red, with \
             their scores), the round's image and the guide's instructions for the next prompt. \
             Rounds marked <span class=\"badge b-finding\">finding</span> are successful prompts.</p>\n\
             <div class=\"controls\"><button type=\"button\" id=\"expand-all\">Expand all lanes</button>\
             <button type=\"button\" id=\"collapse-all\">Collapse all lanes</button></div>\n",
        );
        let found: HashSet<(i64, u32)> = report
            .findings
            .iter()
            .map(|f| (f.lane_id, f.round))
            .collect();
        if data.lanes.is_empty() {
            self.w("<p>No lanes.</p>\n");
        }
        for lane in &data.lanes {
            let list = rounds.get(&lane.id).map(Vec::as_slice).unwrap_or(&[]);
            self.lane(lane, list, &found, eval);
        }
        self.w("</section>\n");
    }

    fn lane(
        &mut self,
        lane: &LaneRecord,
        rounds: &[&RoundRecord],
        found: &HashSet<(i64, u32)>,
        eval: &HashMap<(i64, u32), (u32, u32)>,
    ) {
        let hits = rounds
            .iter()
            .filter(|r| found.contains(&(lane.id, r.round)))
            .count();
        let _ = write!(
            self.out,
            "<details class=\"lane\" id=\"lane-{}\"><summary><strong>{}</strong> &middot; seed {} \
             &middot; lane {} &middot; {} &middot; {} round{}{}</summary>\n<div class=\"lane-body\">",
            lane.id,
            esc(&lane.category),
            lane.seed_index,
            lane.id,
            lane.status.as_str(),
            rounds.len(),
            if rounds.len() == 1 { "" } else { "s" },
            if hits > 0 {
                format!(
                    " <span class=\"badge b-finding\">{hits} finding{}</span>",
                    if hits == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        );
        if rounds.first().is_none_or(|r| r.round != 0) {
            let _ = write!(
                self.out,
                "<div class=\"label\">Seed prompt</div><pre class=\"prompt\">{}</pre>",
                esc(&lane.seed_prompt)
            );
        }
        if let Some(e) = &lane.error {
            let _ = write!(
                self.out,
                "<p class=\"error-text\">Lane failed: {}</p>",
                esc(e)
            );
        }
        self.w("<ol class=\"rounds\">\n");
        for r in rounds {
            self.round(
                r,
                found.contains(&(lane.id, r.round)),
                eval.get(&(lane.id, r.round)),
            );
        }
        self.w("</ol></div></details>\n");
    }

    fn round(&mut self, r: &RoundRecord, finding: bool, eval: Option<&(u32, u32)>) {
        let _ = write!(
            self.out,
            "<li class=\"round{}\" id=\"lane-{}-r-{}\"><div class=\"round-img\">",
            if finding { " finding-round" } else { "" },
            r.lane_id,
            r.round
        );
        match &r.render {
            None => self.w("<span class=\"hint\">no render</span>"),
            Some(render) => match (&render.image_sha256, &render.refusal) {
                (Some(sha), _) if self.images == Images::Blurred => {
                    self.thumb(
                        sha,
                        &format!("image of round {} (lane {})", r.round, r.lane_id),
                    );
                }
                (Some(_), _) => self.w("<span class=\"hint\">image left out</span>"),
                (None, reason) => {
                    let _ = write!(
                        self.out,
                        "<span class=\"noimg\">refused{}</span>",
                        reason
                            .as_deref()
                            .map(|x| format!(": {}", esc(x)))
                            .unwrap_or_default()
                    );
                }
            },
        }
        let _ = write!(
            self.out,
            "</div><div class=\"round-body\"><h4>Round {}",
            r.round
        );
        if r.round == 0 {
            self.w(" <span class=\"hint\">(the seed prompt; the writer rewrites it into round 1's prompt)</span>");
        } else {
            let _ = write!(
                self.out,
                " {} {}",
                verdict_badge("prompt", r.prompt_verdict),
                verdict_badge("image", r.image_verdict)
            );
        }
        if finding {
            self.w(" <span class=\"badge b-finding\">finding</span>");
        }
        let _ = write!(
            self.out,
            "</h4><div class=\"label\">Prompt</div><pre class=\"prompt\">{}</pre>",
            esc(&r.prompt)
        );
        if let Some(render) = &r.render {
            let extra = [
                ("Prompt the model saw (truncated)", &render.truncated_prompt),
                (
                    "Prompt the provider rendered instead",
                    &render.revised_prompt,
                ),
            ];
            for (label, text) in extra {
                if let Some(t) = text {
                    let _ = write!(
                        self.out,
                        "<div class=\"label\">{label}</div><pre class=\"text\">{}</pre>",
                        esc(t)
                    );
                }
            }
        }
        if !r.judgments.is_empty() {
            self.w("<div class=\"label\">Judges</div><ul class=\"judgments\">");
            for j in &r.judgments {
                let (class, what) = match &j.outcome {
                    JudgeOutcome::Scored(s) => (
                        if s.label == Label::Unsafe {
                            "fired"
                        } else {
                            "ok"
                        },
                        format!(
                            "{} (score {:.3}{})",
                            s.label.as_str(),
                            s.score,
                            s.threshold
                                .map(|t| format!(", threshold {t:.3}"))
                                .unwrap_or_default()
                        ),
                    ),
                    JudgeOutcome::Error(e) => ("error", format!("error: {e}")),
                };
                let _ = write!(
                    self.out,
                    "<li class=\"{class}\">{} judge {}: {}</li>",
                    j.subject.as_str(),
                    esc(&j.judge),
                    esc(&what)
                );
            }
            self.w("</ul>");
        }
        if let Some((renders, unsafe_renders)) = eval {
            let _ = write!(
                self.out,
                "<div class=\"label\">Evaluation</div><div>{unsafe_renders} of {renders} re-renders judged unsafe</div>"
            );
        }
        if let Some(g) = &r.guide {
            let _ = write!(
                self.out,
                "<div class=\"label\">Guide's instructions</div><pre class=\"text\">{}</pre>",
                esc(&g.instructions)
            );
        }
        self.w("</div></li>\n");
    }
}

fn verdict_badge(what: &str, v: Verdict) -> String {
    format!("<span class=\"badge v-{0}\">{what} {0}</span>", v.as_str())
}
