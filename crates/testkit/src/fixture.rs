//! The scripted campaign fixture: the TOML of a campaign whose roles are the scripted ones
//! (`kind = "scripted"`), for every test and benchmark that needs a campaign config, so the
//! text is written in one place and each test states only what it varies.
//!
//! [`ScriptedCampaign::new`] is the base: 3 rounds, 2 seeds, the default categories, a scripted
//! target, writer and guide, one prompt judge `words` (unsafe: "torture") and one image judge
//! `eyes` (unsafe: "violence"). The builder methods change the campaign's numbers, the scripted
//! target's options (image size, delay, refused and failing words), the judges, or put another
//! kind's section in place of the target, the writer or the guide;
//! [`ScriptedCampaign::toml`] writes the text. It holds only strings, so the crate that defines
//! the config types (`art-config`) can use it in its own tests.
//!
//! The text keeps one layout (sections in the order campaign, target, writer, guide, prompt
//! judges, image judges; keys one per line, in a fixed order; line 1 a comment), so a test may
//! still edit it as text, e.g. to put a bad key after a given line and check the line an error
//! names.

/// A scripted judge section (`[[prompt_judge]]` or `[[image_judge]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judge {
    name: Option<String>,
    unsafe_words: Vec<String>,
    error_words: Vec<String>,
    nan_words: Vec<String>,
}

impl Judge {
    /// A judge named `name` that finds nothing unsafe and never fails.
    pub fn named(name: &str) -> Self {
        Self {
            name: Some(name.to_string()),
            ..Self::unnamed()
        }
    }

    /// A judge without a `name` key (its name is then its kind, `scripted`).
    pub fn unnamed() -> Self {
        Self {
            name: None,
            unsafe_words: Vec::new(),
            error_words: Vec::new(),
            nan_words: Vec::new(),
        }
    }

    /// Items mentioning one of `words` are labelled unsafe.
    pub fn unsafe_words(mut self, words: &[&str]) -> Self {
        self.unsafe_words = strings(words);
        self
    }

    /// Items mentioning one of `words` make the judge fail for that item.
    pub fn error_words(mut self, words: &[&str]) -> Self {
        self.error_words = strings(words);
        self
    }

    /// Items mentioning one of `words` get a NaN score labelled safe (a broken judge).
    pub fn nan_words(mut self, words: &[&str]) -> Self {
        self.nan_words = strings(words);
        self
    }

    fn section(&self, table: &str) -> String {
        let mut s = format!("[[{table}]]\nkind = \"scripted\"\n");
        if let Some(name) = &self.name {
            s.push_str(&format!("name = {}\n", quote(name)));
        }
        if !self.unsafe_words.is_empty() {
            s.push_str(&format!("unsafe_words = {}\n", list(&self.unsafe_words)));
        }
        if !self.error_words.is_empty() {
            s.push_str(&format!("error_words = {}\n", list(&self.error_words)));
        }
        if !self.nan_words.is_empty() {
            s.push_str(&format!("nan_words = {}\n", list(&self.nan_words)));
        }
        s
    }
}

/// The TOML of a scripted campaign; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedCampaign {
    rounds: u32,
    seeds: u64,
    categories: Option<Vec<String>>,
    seed: Option<u64>,
    batch_size: Option<usize>,
    image_size: Option<(u32, u32)>,
    delay_ms: Option<u64>,
    refuse_words: Vec<String>,
    fail_words: Vec<String>,
    panic_words: Vec<String>,
    target: Option<String>,
    writer: Option<String>,
    guide: Option<String>,
    prompt_judges: Vec<Judge>,
    image_judges: Vec<Judge>,
}

impl Default for ScriptedCampaign {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedCampaign {
    /// The base campaign (see the [module docs](self)).
    pub fn new() -> Self {
        Self {
            rounds: 3,
            seeds: 2,
            categories: None,
            seed: None,
            batch_size: None,
            image_size: None,
            delay_ms: None,
            refuse_words: Vec::new(),
            fail_words: Vec::new(),
            panic_words: Vec::new(),
            target: None,
            writer: None,
            guide: None,
            prompt_judges: vec![Judge::named("words").unsafe_words(&["torture"])],
            image_judges: vec![Judge::named("eyes").unsafe_words(&["violence"])],
        }
    }

    /// `rounds` (R).
    pub fn rounds(mut self, rounds: u32) -> Self {
        self.rounds = rounds;
        self
    }

    /// `seeds`: how many seed numbers (0..seeds).
    pub fn seeds(mut self, seeds: u64) -> Self {
        self.seeds = seeds;
        self
    }

    /// `categories`, in order (without it, the config's default categories).
    pub fn categories(mut self, names: &[&str]) -> Self {
        self.categories = Some(strings(names));
        self
    }

    /// The campaign `seed` (without it, the config's default).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// `batch_size` (without it, the config's default).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    /// The scripted target's `width` and `height` (without it, the config's default).
    pub fn image_size(mut self, width: u32, height: u32) -> Self {
        self.image_size = Some((width, height));
        self
    }

    /// The scripted target's `delay_ms`: simulated work per image.
    pub fn target_delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    /// The scripted target's `refuse_words`: prompts mentioning one are refused.
    pub fn target_refuse_words(mut self, words: &[&str]) -> Self {
        self.refuse_words = strings(words);
        self
    }

    /// The scripted target's `panic_words`: prompts mentioning one make it panic.
    pub fn target_panic_words(mut self, words: &[&str]) -> Self {
        self.panic_words = strings(words);
        self
    }

    /// The scripted target's `fail_words`: prompts mentioning one fail with a role error.
    pub fn target_fail_words(mut self, words: &[&str]) -> Self {
        self.fail_words = strings(words);
        self
    }

    /// `section` (the whole `[target]` table and its sub-tables, as TOML) in place of the
    /// scripted target and its options.
    pub fn target(mut self, section: &str) -> Self {
        self.target = Some(section.to_string());
        self
    }

    /// `section` (the whole `[writer]` table and its sub-tables, as TOML) in place of the
    /// scripted writer.
    pub fn writer(mut self, section: &str) -> Self {
        self.writer = Some(section.to_string());
        self
    }

    /// `section` (the whole `[guide]` table and its sub-tables, as TOML) in place of the
    /// scripted guide.
    pub fn guide(mut self, section: &str) -> Self {
        self.guide = Some(section.to_string());
        self
    }

    /// The prompt judges, in order, in place of the base's `words`.
    pub fn prompt_judges(mut self, judges: impl IntoIterator<Item = Judge>) -> Self {
        self.prompt_judges = judges.into_iter().collect();
        self
    }

    /// The image judges, in order, in place of the base's `eyes` (none: no image judge).
    pub fn image_judges(mut self, judges: impl IntoIterator<Item = Judge>) -> Self {
        self.image_judges = judges.into_iter().collect();
        self
    }

    /// The campaign's TOML.
    pub fn toml(&self) -> String {
        let mut campaign = format!(
            "[campaign]\nrounds = {}\nseeds = {}\n",
            self.rounds, self.seeds
        );
        if let Some(c) = &self.categories {
            campaign.push_str(&format!("categories = {}\n", list(c)));
        }
        if let Some(seed) = self.seed {
            campaign.push_str(&format!("seed = {seed}\n"));
        }
        if let Some(b) = self.batch_size {
            campaign.push_str(&format!("batch_size = {b}\n"));
        }
        let scripted = |table: &str, section: &Option<String>| {
            section
                .clone()
                .unwrap_or_else(|| format!("[{table}]\nkind = \"scripted\"\n"))
        };
        let target = self
            .target
            .clone()
            .unwrap_or_else(|| self.scripted_target());
        let sections = [
            campaign,
            target,
            scripted("writer", &self.writer),
            scripted("guide", &self.guide),
            self.judges_toml(),
        ];
        let body: Vec<&str> = sections
            .iter()
            .map(|s| s.trim_end())
            .filter(|s| !s.is_empty())
            .collect();
        format!(
            "# art_testkit::fixture::ScriptedCampaign\n{}\n",
            body.join("\n\n")
        )
    }

    fn scripted_target(&self) -> String {
        let mut s = "[target]\nkind = \"scripted\"\n".to_string();
        if let Some((w, h)) = self.image_size {
            s.push_str(&format!("width = {w}\nheight = {h}\n"));
        }
        if let Some(ms) = self.delay_ms {
            s.push_str(&format!("delay_ms = {ms}\n"));
        }
        if !self.refuse_words.is_empty() {
            s.push_str(&format!("refuse_words = {}\n", list(&self.refuse_words)));
        }
        if !self.fail_words.is_empty() {
            s.push_str(&format!("fail_words = {}\n", list(&self.fail_words)));
        }
        if !self.panic_words.is_empty() {
            s.push_str(&format!("panic_words = {}\n", list(&self.panic_words)));
        }
        s
    }

    /// Only the judge sections, e.g. for `art judge -c`.
    pub fn judges_toml(&self) -> String {
        let prompt = self.prompt_judges.iter().map(|j| j.section("prompt_judge"));
        let image = self.image_judges.iter().map(|j| j.section("image_judge"));
        prompt.chain(image).collect::<Vec<_>>().join("\n")
    }
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of strings, on one line: `["a", "b"]`.
fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}
