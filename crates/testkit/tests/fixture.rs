//! The scripted campaign fixture writes the text its docs promise, and every option lands in
//! the loaded config.

use art_config::{
    Config, ImageJudgeConfig, JudgeSection, Overrides, PromptJudgeConfig, RoleKind, Source,
    TargetConfig, WriterConfig,
};
use art_testkit::fixture::{Judge, ScriptedCampaign};

fn load(text: &str) -> Config {
    let src = Source {
        name: "fixture.toml".into(),
        text: text.into(),
    };
    art_config::load(&[src], &Overrides::default()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn the_base_campaign_is_this_text() {
    // Tests edit this text (and name its lines), so its layout is part of the fixture.
    assert_eq!(
        ScriptedCampaign::new().toml(),
        "# art_testkit::fixture::ScriptedCampaign\n\
         [campaign]\nrounds = 3\nseeds = 2\n\n\
         [target]\nkind = \"scripted\"\n\n\
         [writer]\nkind = \"scripted\"\n\n\
         [guide]\nkind = \"scripted\"\n\n\
         [[prompt_judge]]\nkind = \"scripted\"\nname = \"words\"\nunsafe_words = [\"torture\"]\n\n\
         [[image_judge]]\nkind = \"scripted\"\nname = \"eyes\"\nunsafe_words = [\"violence\"]\n"
    );
    let c = load(&ScriptedCampaign::default().toml());
    assert_eq!(
        (c.campaign.rounds, c.campaign.seeds.clone()),
        (3, vec![0, 1])
    );
    assert!(matches!(c.target, TargetConfig::Scripted(_)));
    assert!(matches!(c.writer, WriterConfig::Scripted(_)));
    assert_eq!(c.guide.kind(), "scripted");
    assert_eq!(c.prompt_judge.len(), 1);
    assert_eq!(c.prompt_judge[0].name(), "words");
    assert_eq!(c.image_judge[0].name(), "eyes");
}

#[test]
fn every_option_lands_in_the_config() {
    let text = ScriptedCampaign::new()
        .rounds(5)
        .seeds(4)
        .categories(&["violence", "illegal activity"])
        .seed(42)
        .batch_size(3)
        .image_size(24, 8)
        .target_delay_ms(7)
        .target_refuse_words(&["watercolor"])
        .target_fail_words(&["Domestic", "say \"no\""])
        .prompt_judges([
            Judge::named("p").unsafe_words(&["torture"]),
            Judge::unnamed().error_words(&["Xenophobia"]),
        ])
        .image_judges([])
        .toml();
    let c = load(&text);
    assert_eq!(c.campaign.rounds, 5);
    assert_eq!(c.campaign.seeds, vec![0, 1, 2, 3]);
    assert_eq!(c.campaign.categories, ["violence", "illegal activity"]);
    assert_eq!((c.campaign.seed, c.campaign.batch_size), (42, 3));
    let TargetConfig::Scripted(t) = &c.target else {
        panic!("{:?}", c.target)
    };
    assert_eq!((t.width, t.height, t.delay_ms), (24, 8, 7));
    assert_eq!(t.refuse_words, ["watercolor"]);
    assert_eq!(t.fail_words, ["Domestic", "say \"no\""]);
    let names: Vec<String> = c.prompt_judge.iter().map(|j| j.name()).collect();
    assert_eq!(names, ["p", "scripted"]);
    let PromptJudgeConfig::Scripted(j) = &c.prompt_judge[1] else {
        panic!()
    };
    assert_eq!(
        (j.unsafe_words.len(), j.error_words.clone()),
        (0, vec!["Xenophobia".into()])
    );
    assert!(c.image_judge.is_empty());
}

#[test]
fn other_kinds_take_the_place_of_the_scripted_roles() {
    let c = load(
        &ScriptedCampaign::new()
            .image_size(16, 16) // ignored: the target is replaced
            .target("[target]\nkind = \"openai-images\"\nmodel = \"m\"\n\n[target.endpoint]\nbase_urls = [\"http://t/v1\"]\n")
            .writer("[writer]\nkind = \"openai-chat\"\nmodel = \"w\"\n\n[writer.endpoint]\nbase_urls = [\"http://w/v1\"]")
            .guide("[guide]\nkind = \"scripted\"\ndelay_ms = 3")
            .toml(),
    );
    assert_eq!(c.target.kind(), "openai-images");
    assert!(matches!(c.writer, WriterConfig::OpenaiChat(_)));
    assert_eq!(c.guide.kind(), "scripted");
    assert!(matches!(c.image_judge[0], ImageJudgeConfig::Scripted(_)));
}

#[test]
fn the_judges_alone_are_a_judges_file() {
    let text = ScriptedCampaign::new().judges_toml();
    assert!(text.starts_with("[[prompt_judge]]\n") && !text.contains("[campaign]"));
    let judges = art_config::load_judges(&[Source {
        name: "judges.toml".into(),
        text,
    }])
    .unwrap();
    assert_eq!(judges.prompt_judge[0].name(), "words");
    assert_eq!(judges.image_judge[0].name(), "eyes");
}
