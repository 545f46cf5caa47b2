//! Shared by the engine's tests and its benchmark: a config from TOML text, the testkit's
//! scripted roles for it, and a fresh store with the campaign's lanes.

#![allow(dead_code)]

use art_config::{Config, Overrides, Source};
use art_engine::{CampaignSpec, Roles, plan_lanes};
use art_store::{CampaignRecord, Store};
use art_testkit::build;
use std::path::Path;

pub fn config(text: &str, overrides: &Overrides) -> Config {
    art_config::load(
        &[Source {
            name: "test.toml".into(),
            text: text.into(),
        }],
        overrides,
    )
    .expect("test config")
}

/// The scripted roles of a config whose every role is `scripted`.
pub fn roles(c: &Config) -> Roles {
    let scripted = "every role of an engine test config is scripted";
    Roles {
        target: build::target(&c.target).expect(scripted),
        writer: build::writer(&c.writer).expect(scripted),
        guide: build::guide(&c.guide).expect(scripted),
        prompt_judges: c
            .prompt_judge
            .iter()
            .map(|j| build::prompt_judge(j).expect(scripted))
            .collect(),
        image_judges: c
            .image_judge
            .iter()
            .map(|j| build::image_judge(j).expect(scripted))
            .collect(),
    }
}

/// A new store in `dir` for `c`, with its lanes planned.
pub fn create(dir: &Path, c: &Config) -> Store {
    let record = CampaignRecord {
        name: "t".into(),
        created_at: 0,
        tool_version: "test".into(),
        config_toml: c.to_toml(),
        identities: Default::default(),
    };
    let mut store = Store::create(dir, &record).expect("create store");
    store
        .insert_lanes(&plan_lanes(&CampaignSpec::from_config(c).expect("spec")))
        .expect("lanes");
    store
}
