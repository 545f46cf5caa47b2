//! Progress display: a bar of committed rounds with per-stage throughput and an ETA.

use crate::args::ProgressMode;
use art_engine::{Event, StageName};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    /// Items and seconds per stage, for throughput.
    stages: Vec<(StageName, usize, Duration)>,
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Self {
        let bars = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Plain | ProgressMode::None => false,
        };
        let bar = bars.then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} rounds ({per_sec}, ETA {eta}) {msg}",
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
                    eprintln!("rounds {rounds_done}/{rounds_total} | {msg}");
                }
            }
            Event::LaneFailed {
                lane_id,
                category,
                seed_index,
                error,
            } => {
                let line =
                    format!("lane {lane_id} ({category}, seed {seed_index}) failed: {error}");
                match &self.bar {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
            }
            Event::Stopping => {
                let line = "stop requested: committed rounds are kept; `art resume` continues";
                match &self.bar {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
