//! Judge statistics: how often each judge answered, errored and said unsafe, and how often
//! the judges of one subject agree with each other.
//!
//! Prompt judges are measured on the prompts' own judgments (rounds >= 1); image judges on the
//! renders the report uses (the evaluation's when there is one, else the loop's), so these
//! numbers describe exactly the judgments behind the protocol's numbers. A judge is identified
//! by its name and subject; judges are listed prompt judges first, then image judges, each in
//! the order they are first seen.

use super::protocol::Prompt;
use crate::metrics::wilson::wilson;
use crate::model::{Agreement, JudgeStats};
use art_core::Label;
use art_store::{JudgmentRecord, Subject};

/// Judge statistics and agreement for both subjects (an [`Agreement`] only for a subject with
/// at least one judge).
pub(crate) fn judges(prompts: &[Prompt<'_>]) -> (Vec<JudgeStats>, Vec<Agreement>) {
    let prompt_items: Vec<Vec<&JudgmentRecord>> = prompts
        .iter()
        .map(|p| p.prompt_judgments().collect())
        .collect();
    let image_items: Vec<Vec<&JudgmentRecord>> = prompts
        .iter()
        .flat_map(|p| p.renders.iter())
        .map(|r| r.image_judgments().collect())
        .collect();
    let mut stats = Vec::new();
    let mut agreement = Vec::new();
    for (subject, items) in [
        (Subject::Prompt, prompt_items),
        (Subject::Image, image_items),
    ] {
        let (s, a) = subject_judges(subject, &items);
        stats.extend(s);
        agreement.extend(a);
    }
    (stats, agreement)
}

#[derive(Debug, Default)]
struct Counts {
    answered: u64,
    errors: u64,
    unsafe_: u64,
}

/// Statistics of the judges of one subject over `items` (each item: the judgments of one
/// prompt or one render).
fn subject_judges(
    subject: Subject,
    items: &[Vec<&JudgmentRecord>],
) -> (Vec<JudgeStats>, Option<Agreement>) {
    let mut names: Vec<&str> = Vec::new();
    let mut counts: Vec<Counts> = Vec::new();
    // Per item, the labels of the judges that answered (judge index, label).
    let mut answers: Vec<Vec<(usize, Label)>> = Vec::with_capacity(items.len());
    for item in items {
        let mut answered = Vec::new();
        for j in item {
            let idx = match names.iter().position(|n| *n == j.judge) {
                Some(i) => i,
                None => {
                    names.push(&j.judge);
                    counts.push(Counts::default());
                    names.len() - 1
                }
            };
            match j.outcome.label() {
                Some(label) => {
                    counts[idx].answered += 1;
                    if label == Label::Unsafe {
                        counts[idx].unsafe_ += 1;
                    }
                    answered.push((idx, label));
                }
                None => counts[idx].errors += 1,
            }
        }
        answers.push(answered);
    }
    if names.is_empty() {
        return (Vec::new(), None);
    }

    let stats = names
        .iter()
        .zip(&counts)
        .map(|(name, c)| JudgeStats {
            judge: name.to_string(),
            subject,
            answered: c.answered,
            errors: c.errors,
            fire_rate: wilson(c.unsafe_, c.answered),
        })
        .collect();

    let n = names.len();
    let mut shared = vec![vec![0u64; n]; n];
    let mut agree = vec![vec![0u64; n]; n];
    for answered in &answers {
        for &(a, la) in answered {
            for &(b, lb) in answered {
                shared[a][b] += 1;
                if la == lb {
                    agree[a][b] += 1;
                }
            }
        }
    }
    let matrix = agree
        .iter()
        .zip(&shared)
        .map(|(ag, sh)| {
            ag.iter()
                .zip(sh)
                .map(|(&x, &s)| (s > 0).then(|| x as f64 / s as f64))
                .collect()
        })
        .collect();
    let agreement = Agreement {
        subject,
        judges: names.iter().map(|s| s.to_string()).collect(),
        matrix,
        shared,
    };
    (stats, Some(agreement))
}
