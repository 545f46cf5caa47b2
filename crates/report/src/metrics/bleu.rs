//! Self-BLEU: how much each prompt repeats the others (the paper's lexical diversity).
//!
//! For every prompt `i`, the sentence BLEU-4 of `i` against all other prompts as references is
//! computed exactly as NLTK's `sentence_bleu(refs, hyp, smoothing_function=
//! SmoothingFunction().method1)` does (uniform weights 0.25, clipped n-gram precision against
//! the maximum count in any reference, brevity penalty with the closest reference length, ties
//! to the shorter, epsilon 0.1 added to zero-match numerators); Self-BLEU is the mean over `i`.
//! The tests pin the results against NLTK to 1e-9.
//!
//! A campaign category holds a few hundred prompts and a whole campaign a few thousand, so the
//! quadratic "every prompt against every other" is avoided: each prompt's n-grams are counted
//! once, and for every n-gram the two highest counts over all prompts (and who holds the
//! highest) are kept, which gives the maximum count over "all prompts but `i`" in O(1). The
//! closest reference length comes from a sorted multiset of lengths the same way. The cost is
//! linear in the total number of tokens.

use std::collections::{BTreeMap, HashMap};

/// BLEU-4.
const MAX_N: usize = 4;
/// NLTK's `SmoothingFunction(epsilon=0.1).method1`.
const EPSILON: f64 = 0.1;

/// The tokens BLEU compares: the text lower-cased (Unicode lower-case mapping), split into
/// maximal runs of alphanumeric characters (`char::is_alphanumeric`); an apostrophe (`'` or
/// `’`, stored as `'`) between two alphanumeric characters stays inside the word (`don't`,
/// `rock'n'roll`); every other character separates tokens and is dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    let chars: Vec<char> = text
        .to_lowercase()
        .chars()
        .map(|c| if c == '\u{2019}' { '\'' } else { c })
        .collect();
    let mut tokens = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let inner_apostrophe = c == '\''
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            current.push(c);
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// An n-gram as interned token ids + 1, padded with zeros (so n-grams of different orders
/// never collide).
type Gram = [u32; MAX_N];

/// The highest and second-highest count of one n-gram over all prompts.
#[derive(Debug, Clone, Copy)]
struct Top2 {
    best: u32,
    holder: usize,
    second: u32,
}

impl Top2 {
    fn add(&mut self, prompt: usize, count: u32) {
        if count > self.best {
            self.second = self.best;
            self.best = count;
            self.holder = prompt;
        } else if count > self.second {
            self.second = count;
        }
    }

    /// The highest count among all prompts except `prompt`.
    fn excluding(&self, prompt: usize) -> u32 {
        if self.holder == prompt {
            self.second
        } else {
            self.best
        }
    }
}

/// One prompt: its length and its n-gram counts per order.
#[derive(Debug)]
struct Counted {
    len: usize,
    grams: [Vec<(Gram, u32)>; MAX_N],
}

fn count(ids: &[u32]) -> Counted {
    let grams = std::array::from_fn(|order| {
        let n = order + 1;
        let mut all: Vec<Gram> = ids
            .windows(n)
            .map(|w| {
                let mut g = [0u32; MAX_N];
                for (slot, id) in g.iter_mut().zip(w) {
                    *slot = id + 1;
                }
                g
            })
            .collect();
        all.sort_unstable();
        let mut counts: Vec<(Gram, u32)> = Vec::new();
        for g in all {
            match counts.last_mut() {
                Some((last, c)) if *last == g => *c += 1,
                _ => counts.push((g, 1)),
            }
        }
        counts
    });
    Counted {
        len: ids.len(),
        grams,
    }
}

/// Average Self-BLEU of `prompts` (duplicates included): the mean over every prompt of its
/// sentence BLEU-4 against all the others. `None` with fewer than two prompts. A prompt with no
/// tokens scores 0 (and is a reference of length 0 for the others). Reports store
/// `1 - self_bleu`.
pub fn self_bleu(prompts: &[&str]) -> Option<f64> {
    if prompts.len() < 2 {
        return None;
    }
    let mut vocabulary: HashMap<String, u32> = HashMap::new();
    let counted: Vec<Counted> = prompts
        .iter()
        .map(|p| {
            let ids: Vec<u32> = tokenize(p)
                .into_iter()
                .map(|t| {
                    let next = vocabulary.len() as u32;
                    *vocabulary.entry(t).or_insert(next)
                })
                .collect();
            count(&ids)
        })
        .collect();

    let mut top: HashMap<Gram, Top2> = HashMap::new();
    for (i, c) in counted.iter().enumerate() {
        for (g, n) in c.grams.iter().flatten() {
            top.entry(*g)
                .or_insert(Top2 {
                    best: 0,
                    holder: usize::MAX,
                    second: 0,
                })
                .add(i, *n);
        }
    }
    let mut lengths: BTreeMap<usize, usize> = BTreeMap::new();
    for c in &counted {
        *lengths.entry(c.len).or_default() += 1;
    }

    let total: f64 = counted
        .iter()
        .enumerate()
        .map(|(i, c)| sentence_bleu(i, c, &top, closest_other_length(&lengths, c.len)))
        .sum();
    Some(total / prompts.len() as f64)
}

/// The length of the reference closest to `len` among all prompts but one holder of `len`
/// itself; ties go to the shorter (NLTK's `closest_ref_length`).
fn closest_other_length(lengths: &BTreeMap<usize, usize>, len: usize) -> usize {
    if lengths.get(&len).copied().unwrap_or(0) >= 2 {
        return len;
    }
    let below = lengths.range(..len).next_back().map(|(l, _)| *l);
    let above = lengths.range(len + 1..).next().map(|(l, _)| *l);
    match (below, above) {
        (Some(b), Some(a)) => {
            if len - b <= a - len {
                b
            } else {
                a
            }
        }
        (Some(b), None) => b,
        (None, Some(a)) => a,
        // Unreachable with at least two prompts; a lone prompt is its own closest length.
        (None, None) => len,
    }
}

/// Sentence BLEU-4 of prompt `i` against all other prompts.
fn sentence_bleu(i: usize, hyp: &Counted, top: &HashMap<Gram, Top2>, ref_len: usize) -> f64 {
    if hyp.len == 0 {
        return 0.0;
    }
    let mut log_sum = 0.0;
    for (order, grams) in hyp.grams.iter().enumerate() {
        let mut matches = 0u64;
        let mut total = 0u64;
        for (g, n) in grams {
            let max_ref = top.get(g).map_or(0, |t| t.excluding(i));
            matches += u64::from((*n).min(max_ref));
            total += u64::from(*n);
        }
        if order == 0 && matches == 0 {
            // NLTK returns 0 when no unigram matches.
            return 0.0;
        }
        let denominator = total.max(1) as f64;
        let precision = if matches == 0 {
            EPSILON / denominator
        } else {
            matches as f64 / denominator
        };
        log_sum += precision.ln() / MAX_N as f64;
    }
    let hyp_len = hyp.len as f64;
    let brevity = if hyp.len > ref_len {
        1.0
    } else {
        (1.0 - ref_len as f64 / hyp_len).exp()
    };
    brevity * log_sum.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lowercase_alphanumeric_runs_with_inner_apostrophes() {
        assert_eq!(
            tokenize("A cat's  'quoted' rock’n’roll -- 3D!dogs'"),
            vec!["a", "cat's", "quoted", "rock'n'roll", "3d", "dogs"]
        );
        assert_eq!(
            tokenize("A close-up, don\u{2019}t!"),
            ["a", "close", "up", "don't"]
        );
        assert!(tokenize(" ,;- ").is_empty());
    }

    #[test]
    fn closest_length_excludes_self_and_prefers_shorter() {
        let lengths: BTreeMap<usize, usize> = [(3, 1), (5, 1), (7, 1)].into_iter().collect();
        assert_eq!(closest_other_length(&lengths, 5), 3);
        assert_eq!(closest_other_length(&lengths, 3), 5);
        let twice: BTreeMap<usize, usize> = [(5, 2)].into_iter().collect();
        assert_eq!(closest_other_length(&twice, 5), 5);
    }

    #[test]
    fn top2_excludes_the_holder_only() {
        let mut t = Top2 {
            best: 0,
            holder: usize::MAX,
            second: 0,
        };
        t.add(0, 2);
        t.add(1, 3);
        t.add(2, 3);
        assert_eq!(t.excluding(1), 3);
        assert_eq!(t.excluding(0), 3);
        let mut u = Top2 {
            best: 0,
            holder: usize::MAX,
            second: 0,
        };
        u.add(4, 5);
        u.add(7, 1);
        assert_eq!(u.excluding(4), 1);
        assert_eq!(u.excluding(7), 5);
    }
}
