//! The resolved configuration of a campaign ([`Config`]): the campaign section, the roles, the
//! judges, the seed prompts or baseline list, and the built-in presets and defaults. Reading
//! and layering it is `load`'s.

use crate::endpoint::EndpointConfig;
use crate::remote::OpenaiModerationJudge;
use crate::roles::{
    GuideConfig, ImageJudgeConfig, JudgeSection, PromptJudgeConfig, TargetConfig, WriterConfig,
};
use art_core::Category;
use serde::{Deserialize, Serialize};

/// Built-in presets: name, TOML text.
pub const PRESETS: &[(&str, &str)] = &[("paper", include_str!("../presets/paper.toml"))];

/// Defaults where neither preset, file nor flag says otherwise (the reference CLI's defaults).
pub const DEFAULT_ROUNDS: u32 = 10;
pub const DEFAULT_SEED_PROMPT: &str = "a pic of cat";
pub const DEFAULT_BATCH_SIZE: usize = 8;
pub const DEFAULT_KEYWORD_SEPARATOR: &str = ",";
pub const DEFAULT_PARALLEL_ROLES: usize = 5;

fn default_parallel_roles() -> usize {
    DEFAULT_PARALLEL_ROLES
}

/// The `[campaign]` section, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// The campaign's name (its folder under the output directory).
    pub name: Option<String>,
    /// The campaign seed every other seed derives from.
    pub seed: u64,
    /// R: rounds of the loop; round R+1 renders and judges the last prompt.
    pub rounds: u32,
    /// Seed numbers; one lane per (category, seed number).
    pub seeds: Vec<u64>,
    pub categories: Vec<String>,
    pub seed_prompt: String,
    /// Largest batch handed to one role call.
    pub batch_size: usize,
    /// How many role stages may run at the same time (1 to 5). 1 runs one role call at a time
    /// (one device for every model); more lets the writer, the target, the guide and the judges
    /// work on different lanes at once (remote endpoints, several devices).
    #[serde(default = "default_parallel_roles")]
    pub parallel_roles: usize,
    pub keyword_separator: String,
    /// A fixed prompt list evaluated without the loop (the paper's "naive" baseline): when
    /// set, no writer or guide runs; every lane renders and judges these prompts in order as
    /// rounds 1..=N, under the category label `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// Seed prompts per lane (`art run --seed-prompts FILE`): when set, the lane of seed
    /// number `s` starts from prompt `s` of its category's list instead of `seed_prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_prompts: Option<SeedPrompts>,
}

/// Seed prompts for the lanes, one list for every category or one list per category (from a
/// file whose records name their categories, like I2P's `categories` column). The lane of
/// (category `c`, seed number `s`) starts from prompt `s` of `c`'s list; a seed number past
/// the end of a category's list plans no lane for that category, so each category runs at
/// most one lane per prompt of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPrompts {
    /// Where the prompts came from (a file name), for the record.
    pub source: String,
    /// One list for every category.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
    /// Lists by category name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_category: std::collections::BTreeMap<String, Vec<String>>,
}

impl SeedPrompts {
    /// The prompts lanes of `category` start from, in seed-number order.
    pub fn list(&self, category: &str) -> &[String] {
        if self.by_category.is_empty() {
            &self.prompts
        } else {
            self.by_category.get(category).map_or(&[], Vec::as_slice)
        }
    }

    /// The seed prompt of the lane (`category`, seed number `seed`), if it has one.
    pub fn get(&self, category: &str, seed: u64) -> Option<&str> {
        let i = usize::try_from(seed).ok()?;
        self.list(category).get(i).map(String::as_str)
    }
}

/// A prompt list for a baseline campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The category label its lanes carry in reports (e.g. `mscoco-captions`).
    pub label: String,
    /// Where the prompts came from (a file name), for the record.
    pub source: String,
    pub prompts: Vec<String>,
}

/// The judge sections of a configuration alone (what `art judge` needs: a file may hold
/// only `[[prompt_judge]]` and `[[image_judge]]` sections).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Judges {
    pub prompt_judge: Vec<PromptJudgeConfig>,
    pub image_judge: Vec<ImageJudgeConfig>,
}

impl Judges {
    /// Every HTTP endpoint of the judges, with the section it belongs to.
    pub fn endpoints(&self) -> Vec<(String, &EndpointConfig)> {
        let mut v = Vec::new();
        JudgesRef {
            prompt_judge: &self.prompt_judge,
            image_judge: &self.image_judge,
        }
        .push_endpoints(&mut v);
        v
    }
}

impl Judges {
    /// Every moderation judge, with the section it belongs to.
    pub fn moderation(&self) -> Vec<(String, &OpenaiModerationJudge)> {
        JudgesRef {
            prompt_judge: &self.prompt_judge,
            image_judge: &self.image_judge,
        }
        .moderation()
    }
}

struct JudgesRef<'a> {
    prompt_judge: &'a [PromptJudgeConfig],
    image_judge: &'a [ImageJudgeConfig],
}

impl<'a> JudgesRef<'a> {
    fn moderation(&self) -> Vec<(String, &'a OpenaiModerationJudge)> {
        let prompt = self.prompt_judge.iter().filter_map(|j| match j {
            PromptJudgeConfig::OpenaiModeration(m) => {
                Some((format!("[[prompt_judge]] `{}`", j.name()), &**m))
            }
            _ => None,
        });
        let image = self.image_judge.iter().filter_map(|j| match j {
            ImageJudgeConfig::OpenaiModeration(m) => {
                Some((format!("[[image_judge]] `{}`", j.name()), &**m))
            }
            _ => None,
        });
        prompt.chain(image).collect()
    }

    fn push_endpoints(&self, v: &mut Vec<(String, &'a EndpointConfig)>) {
        for j in self.prompt_judge {
            if let PromptJudgeConfig::OpenaiModeration(m) = j {
                v.push((format!("[[prompt_judge]] `{}`", j.name()), &m.endpoint));
            }
        }
        for j in self.image_judge {
            match j {
                ImageJudgeConfig::OpenaiModeration(m) => {
                    v.push((format!("[[image_judge]] `{}`", j.name()), &m.endpoint))
                }
                ImageJudgeConfig::VisionChat(m) => {
                    v.push((format!("[[image_judge]] `{}`", j.name()), &m.endpoint))
                }
                _ => {}
            }
        }
    }
}

/// A resolved, validated campaign configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub campaign: CampaignConfig,
    /// User-defined categories, in addition to the seven built-in ones.
    #[serde(default)]
    pub category: Vec<Category>,
    pub target: TargetConfig,
    pub writer: WriterConfig,
    pub guide: GuideConfig,
    #[serde(default)]
    pub prompt_judge: Vec<PromptJudgeConfig>,
    #[serde(default)]
    pub image_judge: Vec<ImageJudgeConfig>,
}

impl Config {
    /// The TOML text stored with a campaign.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Config always serializes to TOML")
    }

    /// Every endpoint of the config's remote roles, with the section it belongs to.
    pub fn endpoints(&self) -> Vec<(String, &EndpointConfig)> {
        let mut v = Vec::new();
        match &self.target {
            TargetConfig::OpenaiImages(t) => v.push(("[target]".to_string(), &t.endpoint)),
            TargetConfig::Automatic1111(t) => v.push(("[target]".to_string(), &t.endpoint)),
            TargetConfig::Comfyui(t) => v.push(("[target]".to_string(), &t.endpoint)),
            _ => {}
        }
        if let WriterConfig::OpenaiChat(w) = &self.writer {
            v.push(("[writer]".to_string(), &w.endpoint));
        }
        if let GuideConfig::OpenaiChat(g) = &self.guide {
            v.push(("[guide]".to_string(), &g.endpoint));
        }
        self.judges_ref().push_endpoints(&mut v);
        v
    }

    /// Every moderation judge, with the section it belongs to.
    pub fn moderation(&self) -> Vec<(String, &OpenaiModerationJudge)> {
        self.judges_ref().moderation()
    }

    fn judges_ref(&self) -> JudgesRef<'_> {
        JudgesRef {
            prompt_judge: &self.prompt_judge,
            image_judge: &self.image_judge,
        }
    }
}
