//! Parsing, layering and validation of campaign configuration, with errors that name the file,
//! the line and the allowed values.

use crate::{
    CampaignConfig, Config, DEFAULT_BATCH_SIZE, DEFAULT_KEYWORD_SEPARATOR, DEFAULT_ROUNDS,
    DEFAULT_SEED_PROMPT, GuideConfig, ImageJudgeConfig, JudgeSection, PromptJudgeConfig,
    TargetConfig, WriterConfig,
};
use art_core::{Categories, Category};
use serde::Deserialize;
use std::collections::BTreeSet;
use toml::Spanned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("unknown preset `{0}`; expected one of: {1}")]
    UnknownPreset(String, String),
    #[error("no configuration given: pass --config FILE and/or --preset NAME")]
    Nothing,
}

/// One layer of configuration text and where it came from (a path or `preset:NAME`).
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        crate::PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Source {
                name: format!("preset:{n}"),
                text: text.to_string(),
            })
            .ok_or_else(|| {
                let names: Vec<_> = crate::PRESETS
                    .iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect();
                ConfigError::UnknownPreset(name.to_string(), names.join(", "))
            })
    }
}

/// Command-line overrides of `[campaign]`, applied last.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub name: Option<String>,
    pub seed: Option<u64>,
    pub rounds: Option<u32>,
    /// Number of seeds: lanes use seed numbers `0..n`.
    pub seeds: Option<u64>,
    pub categories: Option<Vec<String>>,
    pub batch_size: Option<usize>,
    pub parallel_roles: Option<usize>,
    /// Run a fixed prompt list instead of the loop.
    pub baseline: Option<crate::Baseline>,
    /// Start the lanes from these prompts; without `seeds`, every category gets one lane per
    /// prompt of its list (seed numbers `0..n` for the longest list).
    pub seed_prompts: Option<crate::SeedPrompts>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    name: Option<String>,
    seed: Option<u64>,
    rounds: Option<Spanned<u32>>,
    seeds: Option<Spanned<SeedsSpec>>,
    categories: Option<Vec<Spanned<String>>>,
    seed_prompt: Option<String>,
    batch_size: Option<Spanned<usize>>,
    parallel_roles: Option<Spanned<usize>>,
    baseline: Option<crate::Baseline>,
    seed_prompts: Option<crate::SeedPrompts>,
    keyword_separator: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SeedsSpec {
    Count(u64),
    List(Vec<u64>),
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    campaign: Option<RawCampaign>,
    #[serde(default)]
    category: Vec<Category>,
    target: Option<TargetConfig>,
    writer: Option<WriterConfig>,
    guide: Option<GuideConfig>,
    prompt_judge: Option<Vec<PromptJudgeConfig>>,
    image_judge: Option<Vec<ImageJudgeConfig>>,
}

/// Layer index and byte span of a value in that layer's text.
type Written = (usize, std::ops::Range<usize>);

/// Where a value came from, to point errors at it.
struct At<'a> {
    source: &'a Source,
    span: std::ops::Range<usize>,
}

impl At<'_> {
    fn error(&self, message: String) -> ConfigError {
        let (line, column) = line_col(&self.source.text, self.span.start);
        ConfigError::Parse {
            file: self.source.name.clone(),
            line,
            column,
            message,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn parse_layer(source: &Source) -> Result<RawConfig, ConfigError> {
    toml::from_str(&source.text).map_err(|e| {
        let message = e.message().trim().to_string();
        let offset = e
            .span()
            .map(|s| refine_unknown_field(&source.text, s.start, &message))
            .unwrap_or(0);
        let (line, column) = line_col(&source.text, offset);
        ConfigError::Parse {
            file: source.name.clone(),
            line,
            column,
            message,
        }
    })
}

/// For role sections (internally tagged enums) the TOML parser points an unknown key at the
/// table header; move the position to the key's own line inside that table (or one of its
/// sub-tables, such as `[writer.endpoint]`) when we can find it.
fn refine_unknown_field(text: &str, start: usize, message: &str) -> usize {
    let Some(key) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    else {
        return start;
    };
    let header = text[start..].lines().next().unwrap_or("");
    let name = header.trim().trim_matches(|c| c == '[' || c == ']').trim();
    if !header.trim_start().starts_with('[') || name.is_empty() {
        return start;
    }
    let sub = format!("{name}.");
    let mut offset = start;
    for (i, line) in text[start..].split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') {
            let inner = t.trim_start_matches('[').trim_start();
            if !inner.starts_with(&sub) {
                break;
            }
        } else if i > 0
            && let Some(rest) = t.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return offset + (line.len() - t.len());
        }
        offset += line.len();
    }
    start
}

/// Parse every layer, apply overrides, fill defaults and validate.
pub fn load(layers: &[Source], overrides: &Overrides) -> Result<Config, ConfigError> {
    if layers.is_empty() {
        return Err(ConfigError::Nothing);
    }
    let mut campaign = CampaignConfig {
        name: None,
        seed: 0,
        rounds: DEFAULT_ROUNDS,
        seeds: vec![0],
        categories: art_core::category::builtin()
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        seed_prompt: DEFAULT_SEED_PROMPT.to_string(),
        batch_size: DEFAULT_BATCH_SIZE,
        parallel_roles: crate::DEFAULT_PARALLEL_ROLES,
        baseline: None,
        seed_prompts: None,
        keyword_separator: DEFAULT_KEYWORD_SEPARATOR.to_string(),
    };
    let mut user_categories: Vec<Category> = Vec::new();
    let (mut target, mut writer, mut guide) = (None, None, None);
    let (mut prompt_judges, mut image_judges) = (None, None);
    // Category names and where each was written, validated once all categories are known.
    let mut category_refs: Vec<(String, Option<Written>)> = Vec::new();

    for (li, source) in layers.iter().enumerate() {
        let raw = parse_layer(source)?;
        if let Some(c) = raw.campaign {
            let at = |span| At { source, span };
            if let Some(v) = c.name {
                campaign.name = Some(v);
            }
            if let Some(v) = c.seed {
                campaign.seed = v;
            }
            if let Some(v) = c.rounds {
                if *v.get_ref() == 0 {
                    return Err(at(v.span()).error("`rounds` must be at least 1".into()));
                }
                campaign.rounds = v.into_inner();
            }
            if let Some(v) = c.seeds {
                let span = v.span();
                campaign.seeds = match v.into_inner() {
                    SeedsSpec::Count(n) => (0..n).collect(),
                    SeedsSpec::List(l) => l,
                };
                check_seeds(&campaign.seeds).map_err(|m| at(span).error(m))?;
            }
            if let Some(v) = c.categories {
                category_refs = v
                    .into_iter()
                    .map(|s| {
                        let span = s.span();
                        (s.into_inner(), Some((li, span)))
                    })
                    .collect();
            }
            if let Some(v) = c.seed_prompt {
                campaign.seed_prompt = v;
            }
            if let Some(v) = c.batch_size {
                if *v.get_ref() == 0 {
                    return Err(at(v.span()).error("`batch_size` must be at least 1".into()));
                }
                campaign.batch_size = v.into_inner();
            }
            if let Some(v) = c.parallel_roles {
                if !(1..=5).contains(v.get_ref()) {
                    return Err(at(v.span()).error("`parallel_roles` must be 1 to 5".into()));
                }
                campaign.parallel_roles = v.into_inner();
            }
            if let Some(v) = c.baseline {
                campaign.baseline = Some(v);
            }
            if let Some(v) = c.seed_prompts {
                campaign.seed_prompts = Some(v);
            }
            if let Some(v) = c.keyword_separator {
                campaign.keyword_separator = v;
            }
        }
        user_categories.extend(raw.category);
        // A later layer's role section replaces the earlier one whole: mixing keys of two
        // different kinds would make no sense.
        target = raw.target.or(target);
        writer = raw.writer.or(writer);
        guide = raw.guide.or(guide);
        prompt_judges = raw.prompt_judge.or(prompt_judges);
        image_judges = raw.image_judge.or(image_judges);
    }

    let last = layers.last().expect("non-empty").name.clone();
    let invalid = |message: String| ConfigError::Invalid {
        file: last.clone(),
        message,
    };

    if let Some(v) = &overrides.name {
        campaign.name = Some(v.clone());
    }
    if let Some(v) = overrides.seed {
        campaign.seed = v;
    }
    if let Some(v) = overrides.rounds {
        if v == 0 {
            return Err(invalid("--rounds must be at least 1".into()));
        }
        campaign.rounds = v;
    }
    if let Some(n) = overrides.seeds {
        campaign.seeds = (0..n).collect();
        check_seeds(&campaign.seeds).map_err(|m| invalid(format!("--seeds: {m}")))?;
    }
    if let Some(v) = overrides.batch_size {
        if v == 0 {
            return Err(invalid("--batch-size must be at least 1".into()));
        }
        campaign.batch_size = v;
    }
    if let Some(v) = overrides.parallel_roles {
        if !(1..=5).contains(&v) {
            return Err(invalid("--parallel-roles must be 1 to 5".into()));
        }
        campaign.parallel_roles = v;
    }
    if let Some(b) = &overrides.baseline {
        campaign.baseline = Some(b.clone());
    }
    if let Some(b) = &campaign.baseline {
        if b.prompts.is_empty() {
            return Err(invalid(format!("baseline `{}` has no prompts", b.source)));
        }
        if b.label.trim().is_empty() {
            return Err(invalid("baseline label must not be empty".into()));
        }
    }
    if let Some(v) = &overrides.categories {
        category_refs = v.iter().map(|c| (c.clone(), None)).collect();
    }

    let known = Categories::with_user(&user_categories).map_err(|e| invalid(e.to_string()))?;
    if !category_refs.is_empty() {
        let mut seen = BTreeSet::new();
        for (name, at) in &category_refs {
            let err = match known.get(name) {
                Err(e) => Some(e.to_string()),
                Ok(_) if !seen.insert(name.clone()) => {
                    Some(format!("category `{name}` is listed twice"))
                }
                Ok(_) => None,
            };
            if let Some(message) = err {
                return Err(match at {
                    Some((li, span)) => At {
                        source: &layers[*li],
                        span: span.clone(),
                    }
                    .error(message),
                    None => ConfigError::Invalid {
                        file: "--category".into(),
                        message,
                    },
                });
            }
        }
        campaign.categories = category_refs.into_iter().map(|(n, _)| n).collect();
    } else if !user_categories.is_empty() {
        // No explicit list: the default is every known category, user ones included.
        campaign.categories = known.names().iter().map(|s| s.to_string()).collect();
    }
    if let Some(sp) = &overrides.seed_prompts {
        if overrides.seeds.is_none() {
            let longest = campaign
                .categories
                .iter()
                .map(|c| sp.list(c).len())
                .max()
                .unwrap_or(0);
            campaign.seeds = (0..longest as u64).collect();
        }
        campaign.seed_prompts = Some(sp.clone());
    }
    if let Some(sp) = &campaign.seed_prompts {
        check_seed_prompts(sp, &campaign).map_err(invalid)?;
    }

    let missing = |section: &str| {
        invalid(format!(
            "missing section [{section}]: every campaign needs a target, a writer and a guide \
             (use --preset paper or add the section with a `kind`)"
        ))
    };
    let config = Config {
        campaign,
        category: user_categories,
        target: target.ok_or_else(|| missing("target"))?,
        writer: writer.ok_or_else(|| missing("writer"))?,
        guide: guide.ok_or_else(|| missing("guide"))?,
        prompt_judge: prompt_judges.unwrap_or_default(),
        image_judge: image_judges.unwrap_or_default(),
    };
    check_judge_names("prompt_judge", config.prompt_judge.iter().map(|j| j.name()))
        .map_err(invalid)?;
    check_judge_names("image_judge", config.image_judge.iter().map(|j| j.name()))
        .map_err(invalid)?;
    for (section, endpoint) in config.endpoints() {
        endpoint
            .validate()
            .map_err(|m| invalid(format!("{section}: {m}")))?;
    }
    for (section, judge) in config.moderation() {
        judge
            .validate()
            .map_err(|m| invalid(format!("{section}: {m}")))?;
    }
    Ok(config)
}

/// The judge sections of `layers` (later layers replace earlier lists), names unique and
/// endpoints valid; the other sections are parsed and checked but not needed.
pub fn load_judges(layers: &[Source]) -> Result<crate::Judges, ConfigError> {
    let Some(last) = layers.last() else {
        return Err(ConfigError::Invalid {
            file: "(no config)".into(),
            message: "give a config file (-c) or a preset (--preset) with judge sections".into(),
        });
    };
    let (mut prompt_judges, mut image_judges) = (None, None);
    for source in layers {
        let raw = parse_layer(source)?;
        prompt_judges = raw.prompt_judge.or(prompt_judges);
        image_judges = raw.image_judge.or(image_judges);
    }
    let invalid = |message: String| ConfigError::Invalid {
        file: last.name.clone(),
        message,
    };
    let judges = crate::Judges {
        prompt_judge: prompt_judges.unwrap_or_default(),
        image_judge: image_judges.unwrap_or_default(),
    };
    check_judge_names("prompt_judge", judges.prompt_judge.iter().map(|j| j.name()))
        .map_err(invalid)?;
    check_judge_names("image_judge", judges.image_judge.iter().map(|j| j.name()))
        .map_err(invalid)?;
    for (section, endpoint) in judges.endpoints() {
        endpoint
            .validate()
            .map_err(|m| invalid(format!("{section}: {m}")))?;
    }
    for (section, judge) in judges.moderation() {
        judge
            .validate()
            .map_err(|m| invalid(format!("{section}: {m}")))?;
    }
    Ok(judges)
}

/// Seed prompts must be one kind of list, hold no empty prompt, not be mixed with a baseline,
/// and give every category of the campaign at least one lane.
fn check_seed_prompts(sp: &crate::SeedPrompts, c: &CampaignConfig) -> Result<(), String> {
    let src = &sp.source;
    if c.baseline.is_some() {
        return Err(format!(
            "seed prompts (`{src}`) start the loop's lanes, and a baseline runs without the \
             loop: use one of --prompts and --seed-prompts"
        ));
    }
    match (sp.prompts.is_empty(), sp.by_category.is_empty()) {
        (true, true) => return Err(format!("seed prompts `{src}` hold no prompt")),
        (false, false) => {
            return Err(format!(
                "seed prompts `{src}`: give either `prompts` (every category) or \
                 `by_category`, not both"
            ));
        }
        _ => {}
    }
    let lists = std::iter::once(("every category", &sp.prompts))
        .chain(sp.by_category.iter().map(|(k, v)| (k.as_str(), v)));
    for (category, list) in lists {
        if let Some(i) = list.iter().position(|p| p.trim().is_empty()) {
            return Err(format!(
                "seed prompts `{src}` ({category}): prompt {} is empty",
                i + 1
            ));
        }
    }
    for category in &c.categories {
        let n = sp.list(category).len();
        if !c.seeds.iter().any(|&s| s < n as u64) {
            let why = if n == 0 {
                let named: Vec<&str> = sp.by_category.keys().map(String::as_str).collect();
                format!("it has none for it (its categories: {})", named.join(", "))
            } else {
                let lowest = c.seeds.iter().min().copied().unwrap_or(0);
                format!("it has {n} for it, and the lowest seed number is {lowest}")
            };
            return Err(format!(
                "category `{category}` would run no lane: the lane of seed number s starts \
                 from seed prompt s of `{src}`, and {why}"
            ));
        }
    }
    Ok(())
}

fn check_seeds(seeds: &[u64]) -> Result<(), String> {
    if seeds.is_empty() {
        return Err("`seeds` must name at least one seed".into());
    }
    let unique: BTreeSet<_> = seeds.iter().collect();
    if unique.len() != seeds.len() {
        return Err("`seeds` lists a seed twice".into());
    }
    Ok(())
}

fn check_judge_names(section: &str, names: impl Iterator<Item = String>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n.clone()) {
            return Err(format!(
                "two [[{section}]] entries are named `{n}`; give each a unique `name`"
            ));
        }
    }
    Ok(())
}

impl Config {
    /// Parse a stored (already resolved) configuration.
    pub fn from_stored(text: &str, origin: &str) -> Result<Self, ConfigError> {
        load(
            &[Source {
                name: origin.to_string(),
                text: text.to_string(),
            }],
            &Overrides::default(),
        )
    }
}
