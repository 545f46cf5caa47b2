//! Progress display: a bar of committed rounds with per-stage throughput and an ETA.

use crate::args::ProgressMode;
use art_engine::{EvalEvent, Event, StageName};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    /// Items and seconds per stage, for throughput.
    stages: Vec<(StageName, usize, Duration)>,
    unit: String,
}

impl Progress {
    /// A progress display counting `unit`s (rounds for a campaign, renders for an evaluation).
    pub fn new(mode: ProgressMode, unit: &str) -> Self {
        let bars = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Plain | ProgressMode::None => false,
        };
        let bar = bars.then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    &format!(
                        "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}}) {{msg}}"
                    ),
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b
        });
        Self {
            bar,
            plain: mode == ProgressMode::Plain,
            stages: Vec::new(),
            unit: unit.to_string(),
        }
    }

    fn throughput(&self) -> String {
        self.stages
            .iter()
            .map(|(s, n, d)| {
                let rate = *n as f64 / d.as_secs_f64().max(1e-9);
                format!("{} {rate:.1}/s", s.as_str())
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    pub fn handle(&mut self, e: &Event) {
        match e {
            Event::Started {
                lanes_open,
                rounds_done,
                rounds_total,
            } => {
                if let Some(b) = &self.bar {
                    b.set_length(*rounds_total);
                    b.set_position(*rounds_done);
                    b.reset_eta();
                }
                if self.plain {
                    eprintln!(
                        "{lanes_open} lanes open, {rounds_done}/{rounds_total} rounds committed"
                    );
                }
            }
            Event::Batch {
                stage,
                items,
                elapsed,
            } => match self.stages.iter_mut().find(|(s, ..)| s == stage) {
                Some((_, n, d)) => {
                    *n += items;
                    *d += *elapsed;
                }
                None => self.stages.push((*stage, *items, *elapsed)),
            },
            Event::Committed {
                rounds_done,
                rounds_total,
                ..
            } => {
                let msg = self.throughput();
                if let Some(b) = &self.bar {
                    b.set_position(*rounds_done);
                    b.set_message(msg);
                } else if self.plain {
                    eprintln!("{} {rounds_done}/{rounds_total} | {msg}", self.unit);
                }
            }
            Event::LaneFailed {
                lane_id,
                category,
                seed_index,
                error,
            } => {
                self.line(&format!(
                    "lane {lane_id} ({category}, seed {seed_index}) failed: {error}"
                ));
            }
            Event::Stopping => {
                self.line("stop requested: committed rounds are kept; `art resume` continues");
            }
        }
    }

    /// Shows an evaluation's progress (renders committed).
    pub fn handle_eval(&mut self, e: &EvalEvent) {
        match e {
            EvalEvent::Started { done, total } => {
                if let Some(b) = &self.bar {
                    b.set_length(*total);
                    b.set_position(*done);
                    b.reset_eta();
                }
                if self.plain {
                    eprintln!("{done}/{total} renders committed");
                }
            }
            EvalEvent::Committed {
                renders,
                done,
                total,
                render_time,
                judge_time,
            } => {
                for (stage, t) in [
                    (StageName::Target, render_time),
                    (StageName::ImageJudges, judge_time),
                ] {
                    self.handle(&Event::Batch {
                        stage,
                        items: *renders,
                        elapsed: *t,
                    });
                }
                self.handle(&Event::Committed {
                    rounds: *renders,
                    rounds_done: *done,
                    rounds_total: *total,
                });
            }
            EvalEvent::Failed {
                lane_id,
                round,
                k,
                error,
            } => self.line(&format!(
                "lane {lane_id} round {round} render {k} failed: {error}"
            )),
            EvalEvent::Stopping => {
                self.line("stop requested: committed renders are kept; `art eval` again continues")
            }
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
