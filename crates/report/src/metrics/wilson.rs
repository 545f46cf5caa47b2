//! Ratios with their 95% Wilson score interval.
//!
//! Every proportion in a report (safe prompts, success ratios, judge fire rates) is a
//! [`Ratio`]: the raw counts, the value and the interval, so a reader sees how much a number
//! rests on. The Wilson interval is used rather than the normal approximation because campaign
//! proportions are often near 0 or 1 and samples small; it never leaves [0, 1] and is defined
//! at 0/n and n/n.

use crate::model::{Interval, Ratio};

/// The standard normal quantile for a two-sided 95% interval (`scipy.stats.norm.isf(0.025)`).
pub const Z95: f64 = 1.959963984540054;

/// `num / den` with its 95% Wilson score interval; `value` and `ci95` are `None` when
/// `den == 0`.
///
/// With `n = den`, `p = num / n` and `z = Z95`:
/// `center = (p + z²/2n) / (1 + z²/n)`,
/// `half = z · sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)`,
/// interval = `[center - half, center + half]` clamped to [0, 1] (the clamp only removes
/// rounding error at `p = 0` and `p = 1`). `num` must not exceed `den`.
pub fn wilson(num: u64, den: u64) -> Ratio {
    debug_assert!(
        num <= den,
        "wilson({num}, {den}): numerator above denominator"
    );
    if den == 0 {
        return Ratio {
            num,
            den,
            value: None,
            ci95: None,
        };
    }
    let n = den as f64;
    let p = num as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Ratio {
        num,
        den,
        value: Some(p),
        ci95: Some(Interval {
            lo: (center - half).max(0.0),
            hi: (center + half).min(1.0),
        }),
    }
}
