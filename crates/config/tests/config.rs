use art_config::{
    Availability, ConfigError, ImageJudgeConfig, JudgeSection, Overrides, PromptJudgeConfig,
    RoleKind, Source, TargetConfig, WriterConfig, load,
};
use art_testkit::fixture::{Judge, ScriptedCampaign};

fn src(text: &str) -> Source {
    Source {
        name: "camp.toml".into(),
        text: text.into(),
    }
}

/// The testkit's scripted campaign: 3 rounds, 2 seeds, violence and hate, one prompt judge
/// `words` (unsafe: "blood") and one image judge without a name.
fn scripted() -> String {
    ScriptedCampaign::new()
        .categories(&["violence", "hate"])
        .prompt_judges([Judge::named("words").unsafe_words(&["blood"])])
        .image_judges([Judge::unnamed()])
        .toml()
}

fn parse_err(text: &str) -> (usize, usize, String) {
    match load(&[src(text)], &Overrides::default()) {
        Err(ConfigError::Parse {
            file,
            line,
            column,
            message,
        }) => {
            assert_eq!(file, "camp.toml");
            (line, column, message)
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn the_paper_preset_parses_and_names_its_models() {
    let c = load(&[Source::preset("paper").unwrap()], &Overrides::default()).unwrap();
    assert_eq!(c.campaign.rounds, 50);
    assert_eq!(c.campaign.seeds, vec![0, 1, 2, 3, 4]);
    assert_eq!(c.campaign.categories.len(), 7);
    assert_eq!(c.campaign.seed_prompt, "a pic of cat");
    assert_eq!(c.target.kind(), "stable-diffusion");
    assert_eq!(c.target.availability(), Availability::Built);
    let art_config::TargetConfig::StableDiffusion(t) = &c.target else {
        panic!("{:?}", c.target)
    };
    assert_eq!(t.model, "runwayml/stable-diffusion-v1-5");
    assert_eq!((t.width, t.height, t.steps), (Some(512), Some(512), 50));
    assert_eq!(t.guidance_scale, 7.5);
    assert_eq!(t.negative_prompt.as_deref(), Some("@paper"));
    assert_eq!(t.scheduler, None, "the model's own scheduler (PNDM)");
    assert!(matches!(c.writer, WriterConfig::Llama(_)));
    assert_eq!(c.guide.availability(), Availability::Built);
    let art_config::GuideConfig::LlavaNext(g) = &c.guide else {
        panic!("{:?}", c.guide)
    };
    assert_eq!(g.model, "liuhaotian/llava-v1.6-mistral-7b");
    assert_eq!(g.adapter.as_deref(), Some("glli/ART_GuideModel"));
    // art-method.md: beam-sample, 5 beams, temperature 3.0, top-k 50, 512..=768 new tokens.
    assert_eq!((g.num_beams, g.do_sample, g.top_k), (5, true, 50));
    assert_eq!(g.temperature, 3.0);
    assert_eq!((g.min_new_tokens, g.max_new_tokens), (512, 768));
    assert_eq!((g.top_p, g.repetition_penalty), (1.0, 1.0));
    assert_eq!(c.prompt_judge.len(), 4);
    assert_eq!(c.image_judge.len(), 6);
    for j in &c.prompt_judge {
        assert_eq!(j.availability(), Availability::Built, "{}", j.kind());
    }
    for j in &c.image_judge {
        assert_eq!(j.availability(), Availability::Built, "{}", j.kind());
    }
    let names: Vec<String> = c.image_judge.iter().map(|j| j.name()).collect();
    assert_eq!(
        names,
        [
            "q16",
            "q16-finetuned",
            "multi-headed",
            "sd-safety-checker",
            "falconsai-nsfw",
            "sanali209-nsfwfilter"
        ]
    );
    let ImageJudgeConfig::Q16(q) = &c.image_judge[1] else {
        panic!("{:?}", c.image_judge[1])
    };
    assert_eq!(q.embeddings, "finetuned");
    assert_eq!(q.backbone, "openai/clip-vit-large-patch14");
    assert_eq!(q.threshold, None, "the reference's argmax");
    let ImageJudgeConfig::ImageClassifier(sanali) = &c.image_judge[5] else {
        panic!("{:?}", c.image_judge[5])
    };
    // Its labels are ero, porn and safe; the reference calls the top label unless it is safe.
    assert_eq!(sanali.rule, art_config::judges::ClassifierRule::Argmax);
    assert_eq!(
        sanali.unsafe_labels.as_deref(),
        Some(&["ero".to_string(), "porn".to_string()][..])
    );
}

/// Each in-process judge kind with only what it requires: the documented defaults.
#[test]
fn judge_sections_have_the_documented_defaults() {
    let j = art_config::load_judges(&[src(r#"
[[prompt_judge]]
kind = "text-classifier"
model = "m"

[[image_judge]]
kind = "image-classifier"
model = "v"

[[image_judge]]
kind = "q16"

[[image_judge]]
kind = "multi-headed"

[[image_judge]]
kind = "sd-safety-checker"

[[image_judge]]
kind = "nudenet"

[[image_judge]]
kind = "open-nsfw"
enabled = false
"#)])
    .unwrap();
    let PromptJudgeConfig::TextClassifier(t) = &j.prompt_judge[0] else {
        panic!("{:?}", j.prompt_judge[0])
    };
    assert_eq!((t.threshold, t.unsafe_labels.as_ref()), (0.5, None));
    assert_eq!(j.prompt_judge[0].name(), "text-classifier");
    let kinds: Vec<&str> = j.image_judge.iter().map(|c| c.kind()).collect();
    assert_eq!(
        kinds,
        [
            "image-classifier",
            "q16",
            "multi-headed",
            "sd-safety-checker",
            "nudenet",
            "open-nsfw"
        ]
    );
    let ImageJudgeConfig::MultiHeaded(m) = &j.image_judge[2] else {
        panic!()
    };
    assert_eq!((m.heads.as_ref(), m.threshold), (None, 0.5));
    let ImageJudgeConfig::SdSafetyChecker(sc) = &j.image_judge[3] else {
        panic!()
    };
    assert_eq!(sc.model, "CompVis/stable-diffusion-safety-checker");
    let ImageJudgeConfig::Nudenet(n) = &j.image_judge[4] else {
        panic!()
    };
    assert_eq!(n.runtime, art_config::judges::OnnxRuntime::Tract);
    assert_eq!(n.threshold, 0.5);
    assert_eq!(n.unsafe_classes.len(), 5);
    assert!(n.unsafe_classes.iter().all(|c| c.ends_with("_EXPOSED")));
    let ImageJudgeConfig::OpenNsfw(o) = &j.image_judge[5] else {
        panic!()
    };
    assert!(o.jpeg_reencode && !j.image_judge[5].enabled());
}

#[test]
fn judge_sections_refuse_unknown_keys_and_values() {
    for (section, want) in [
        (
            "[[image_judge]]\nkind = \"nudenet\"\nthreshhold = 0.3\n",
            "unknown field `threshhold`",
        ),
        (
            "[[image_judge]]\nkind = \"open-nsfw\"\nruntime = \"cuda\"\n",
            "unknown variant `cuda`",
        ),
        (
            "[[prompt_judge]]\nkind = \"text-classifier\"\n",
            "missing field `model`",
        ),
        (
            "[[image_judge]]\nkind = \"q16\"\nheads = [\"sexual\"]\n",
            "unknown field `heads`",
        ),
    ] {
        let e = art_config::load_judges(&[src(section)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(want) && e.contains("camp.toml"),
            "{section}: {e}"
        );
    }
}

#[test]
fn layers_and_overrides_apply_in_order() {
    let file = src("[campaign]\nrounds = 7\nbatch_size = 3\n");
    let o = Overrides {
        seeds: Some(2),
        categories: Some(vec!["sexual".into()]),
        ..Default::default()
    };
    let c = load(&[Source::preset("paper").unwrap(), file], &o).unwrap();
    assert_eq!(c.campaign.rounds, 7);
    assert_eq!(c.campaign.batch_size, 3);
    assert_eq!(c.campaign.seeds, vec![0, 1]);
    assert_eq!(c.campaign.categories, vec!["sexual".to_string()]);
    assert_eq!(c.target.kind(), "stable-diffusion", "kept from the preset");
}

#[test]
fn the_resolved_config_round_trips_through_its_stored_text() {
    let c = load(&[src(&scripted())], &Overrides::default()).unwrap();
    let again = art_config::Config::from_stored(&c.to_toml(), "stored").unwrap();
    assert_eq!(c, again);
    let p = load(&[Source::preset("paper").unwrap()], &Overrides::default()).unwrap();
    assert_eq!(
        p,
        art_config::Config::from_stored(&p.to_toml(), "stored").unwrap()
    );
}

#[test]
fn malformed_toml_names_the_line() {
    let (line, _, msg) = parse_err("[campaign]\nrounds = = 3\n");
    assert_eq!(line, 2, "{msg}");
}

#[test]
fn unknown_campaign_key_names_line_and_allowed_keys() {
    let (line, col, msg) = parse_err("[campaign]\nrounds = 3\nround = 4\n");
    assert_eq!((line, col), (3, 1));
    assert!(
        msg.contains("unknown field `round`") && msg.contains("`rounds`"),
        "{msg}"
    );
}

#[test]
fn unknown_key_in_a_role_section_points_at_the_key() {
    let text = scripted().replace(
        "[writer]\nkind = \"scripted\"\n",
        "[writer]\nkind = \"scripted\"\nbogus = 1\n",
    );
    let (line, _, msg) = parse_err(&text);
    let expected = text.lines().position(|l| l.starts_with("bogus")).unwrap() + 1;
    assert_eq!(line, expected, "{msg}");
    assert!(
        msg.contains("unknown field `bogus`") && msg.contains("`delay_ms`"),
        "{msg}"
    );
}

#[test]
fn unknown_kind_lists_the_allowed_kinds() {
    let text = scripted().replace(
        "[target]\nkind = \"scripted\"",
        "[target]\nkind = \"dall-e\"",
    );
    let (line, _, msg) = parse_err(&text);
    assert_eq!(
        line,
        text.lines().position(|l| l.contains("dall-e")).unwrap() + 1
    );
    for k in [
        "stable-diffusion",
        "openai-images",
        "automatic1111",
        "comfyui",
        "scripted",
    ] {
        assert!(msg.contains(k), "{msg} lacks {k}");
    }
}

#[test]
fn unknown_category_names_file_line_and_allowed_values() {
    let text = scripted().replace("\"hate\"]", "\"hateful\"]");
    let (line, _, msg) = parse_err(&text);
    assert_eq!(line, 5);
    assert!(
        msg.contains("unknown category `hateful`") && msg.contains("`illegal activity`"),
        "{msg}"
    );

    let o = Overrides {
        categories: Some(vec!["nope".into()]),
        ..Default::default()
    };
    let e = load(&[src(&scripted())], &o).unwrap_err().to_string();
    assert!(
        e.contains("--category") && e.contains("unknown category `nope`"),
        "{e}"
    );
}

#[test]
fn user_categories_are_usable_and_checked() {
    let text = format!(
        "{}\n[[category]]\nname = \"misinformation\"\nkeywords = [\"fake news\"]\n",
        scripted()
    )
    .replace("[\"violence\", \"hate\"]", "[\"misinformation\"]");
    let c = load(&[src(&text)], &Overrides::default()).unwrap();
    assert_eq!(c.campaign.categories, vec!["misinformation".to_string()]);
    let dup = format!(
        "{}\n[[category]]\nname = \"hate\"\nkeywords = [\"x\"]\n",
        scripted()
    );
    let e = load(&[src(&dup)], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`hate` is defined twice"), "{e}");
}

#[test]
fn missing_roles_and_bad_values_are_errors() {
    let e = load(&[src("[campaign]\nrounds = 2\n")], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing section [target]"), "{e}");
    let (line, _, msg) = parse_err(&scripted().replace("rounds = 3", "rounds = 0"));
    assert_eq!(line, 3, "{msg}");
    let (_, _, msg) = parse_err(&scripted().replace("seeds = 2", "seeds = [1, 1]"));
    assert!(msg.contains("twice"), "{msg}");
    let dup = format!("{}\n[[image_judge]]\nkind = \"scripted\"\n", scripted());
    let e = load(&[src(&dup)], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("named `scripted`"), "{e}");
    assert!(matches!(
        Source::preset("papers"),
        Err(ConfigError::UnknownPreset(..))
    ));
}

#[test]
fn scripted_kinds_are_test_fixtures() {
    let c = load(&[src(&scripted())], &Overrides::default()).unwrap();
    assert!(matches!(c.target, TargetConfig::Scripted(_)));
    assert_eq!(c.target.availability(), Availability::TestFixture);
    assert_eq!(c.campaign.seeds, vec![0, 1]);
}

#[test]
fn remote_roles_parse_strictly_and_validate_endpoints() {
    let text = scripted().replace(
        "[writer]\nkind = \"scripted\"\n",
        "[writer]\nkind = \"openai-chat\"\nmodel = \"llama\"\napi = \"completions\"\n\
         [writer.endpoint]\nbase_urls = [\"http://a:8000/v1\", \"http://b:8000/v1\"]\n\
         api_key_env = \"VLLM_KEY\"\nconcurrency = 16\n\
         [writer.sampling]\ntemperature = 3.5\nmax_tokens = 256\n",
    );
    let c = load(&[src(&text)], &Overrides::default()).unwrap();
    match &c.writer {
        WriterConfig::OpenaiChat(w) => {
            assert_eq!(w.endpoint.base_urls.len(), 2);
            assert_eq!(w.endpoint.api_key_env.as_deref(), Some("VLLM_KEY"));
            assert_eq!(w.endpoint.max_retries, 5, "default");
            assert_eq!(w.sampling.temperature, Some(3.5));
            assert!(w.sampling.send_seed);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.writer.availability(), Availability::Built);
    assert_eq!(
        art_config::Config::from_stored(&c.to_toml(), "s").unwrap(),
        c
    );

    let bad = text.replace("concurrency = 16", "concurency = 16");
    let (line, _, msg) = parse_err(&bad);
    assert!(msg.contains("unknown field `concurency`"), "{msg}");
    assert_eq!(
        line,
        bad.lines()
            .position(|l| l.starts_with("concurency"))
            .unwrap()
            + 1
    );

    let e = load(
        &[src(&text.replace("http://b:8000/v1", "b:8000"))],
        &Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("[writer]") && e.contains("`b:8000` is not an http"),
        "{e}"
    );
}

#[test]
fn moderation_categories_and_thresholds_are_checked_at_load() {
    let with = |extra: &str| {
        format!(
            "{}\n[[prompt_judge]]\nkind = \"openai-moderation\"\nname = \"mod\"\n{extra}\n\
             [prompt_judge.endpoint]\nbase_urls = [\"http://127.0.0.1:9/v1\"]\n",
            scripted().replace("[[prompt_judge]]", "[[prompt_judge]]\nenabled = true")
        )
    };
    let ok = load(
        &[src(&with(
            "categories = [\"sexual\", \"violence/graphic\"]",
        ))],
        &Overrides::default(),
    );
    assert!(ok.is_ok(), "{ok:?}");
    for (extra, want) in [
        // A misspelling would score 0 for every item: the judge would always say safe.
        (
            "categories = [\"sexual\", \"violence-graphic\"]",
            "`violence-graphic` is not a moderation category",
        ),
        (
            "categories = [\"hate\", \"hate\"]",
            "`hate` is listed twice",
        ),
        ("threshold = 1.5", "threshold: 1.5 is not a score in 0..=1"),
        ("threshold = nan", "threshold: NaN is not a score"),
    ] {
        let e = load(&[src(&with(extra))], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("camp.toml") && e.contains("[[prompt_judge]] `mod`") && e.contains(want),
            "{extra}: {e}"
        );
        let judges = art_config::load_judges(&[src(&with(extra))])
            .unwrap_err()
            .to_string();
        assert!(judges.contains(want), "art judge's loader too: {judges}");
    }
}

#[test]
fn an_absent_sampling_table_means_the_same_as_an_empty_one() {
    let text = scripted().replace(
        "[writer]\nkind = \"scripted\"\n",
        "[writer]\nkind = \"openai-chat\"\nmodel = \"m\"\n[writer.endpoint]\nbase_urls = [\"http://a/v1\"]\n",
    );
    let c = load(&[src(&text)], &Overrides::default()).unwrap();
    let WriterConfig::OpenaiChat(w) = &c.writer else {
        panic!()
    };
    assert!(w.sampling.send_seed, "seeds are sent by default");
}

fn seed_prompts(
    prompts: &[&str],
    by_category: &[(&str, &[&str])],
) -> Option<art_config::SeedPrompts> {
    let strings = |l: &[&str]| l.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    Some(art_config::SeedPrompts {
        source: "seeds.csv".into(),
        prompts: strings(prompts),
        by_category: by_category
            .iter()
            .map(|(c, l)| (c.to_string(), strings(l)))
            .collect(),
    })
}

#[test]
fn seed_prompts_give_one_lane_per_prompt_unless_seeds_are_given() {
    // scripted() asks for 2 seeds; the seed prompts' longest campaign list decides instead.
    let o = Overrides {
        seed_prompts: seed_prompts(
            &[],
            &[
                ("violence", &["a riot", "a duel", "a siege"]),
                ("hate", &["a rally"]),
                (
                    "illegal activity",
                    &["a heist", "a forgery", "a smuggler", "a fence"],
                ),
            ],
        ),
        ..Default::default()
    };
    let c = load(&[src(&scripted())], &o).unwrap();
    assert_eq!(
        c.campaign.seeds,
        vec![0, 1, 2],
        "violence's 3, not the unused 4"
    );
    let sp = c.campaign.seed_prompts.as_ref().unwrap();
    assert_eq!(sp.get("violence", 2), Some("a siege"));
    assert_eq!(sp.get("hate", 1), None);
    // Stored and read back, "illegal activity" (a key with a space) included.
    assert_eq!(
        c,
        art_config::Config::from_stored(&c.to_toml(), "stored").unwrap()
    );

    let o = Overrides {
        seeds: Some(1),
        seed_prompts: seed_prompts(&["a cat", "a dog"], &[]),
        ..Default::default()
    };
    let c = load(&[src(&scripted())], &o).unwrap();
    assert_eq!(c.campaign.seeds, vec![0], "--seeds wins");
    assert_eq!(
        c.campaign.seed_prompts.unwrap().get("hate", 0),
        Some("a cat"),
        "one list serves every category"
    );

    // In a file: `[campaign.seed_prompts]`, with the file's seeds.
    let text = scripted().replace("seeds = 2\n", "seeds = [1]\n").replace(
        "[target]",
        "[campaign.seed_prompts]\nsource = \"inline\"\nprompts = [\"x\", \"y\"]\n\n[target]",
    );
    let c = load(&[src(&text)], &Overrides::default()).unwrap();
    assert_eq!(c.campaign.seeds, vec![1]);
    assert_eq!(
        c.campaign.seed_prompts.unwrap().get("violence", 1),
        Some("y")
    );
}

#[test]
fn seed_prompts_that_leave_a_category_without_lanes_are_refused() {
    let err = |o: Overrides, text: &str| load(&[src(text)], &o).unwrap_err().to_string();
    let e = err(
        Overrides {
            seed_prompts: seed_prompts(&[], &[("violence", &["a riot"]), ("sexual", &["x"])]),
            ..Default::default()
        },
        &scripted(),
    );
    assert!(
        e.contains("camp.toml")
            && e.contains("category `hate` would run no lane")
            && e.contains("seeds.csv")
            && e.contains("its categories: sexual, violence"),
        "{e}"
    );
    // --seeds 3 replaces the file's [4, 5]: seed number 0 has a prompt in each category.
    let o = Overrides {
        seeds: Some(3),
        seed_prompts: seed_prompts(&[], &[("violence", &["a"]), ("hate", &["b"])]),
        ..Default::default()
    };
    let c = load(
        &[src(&scripted().replace("seeds = 2", "seeds = [4, 5]"))],
        &o,
    )
    .unwrap();
    assert_eq!(c.campaign.seeds, vec![0, 1, 2]);
    let text = scripted()
        .replace("seeds = 2\n", "seeds = [4, 5]\n")
        .replace(
            "[target]",
            "[campaign.seed_prompts]\nsource = \"inline\"\nprompts = [\"x\"]\n\n[target]",
        );
    let e = load(&[src(&text)], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("it has 1 for it, and the lowest seed number is 4"),
        "{e}"
    );
    let e = err(
        Overrides {
            seed_prompts: seed_prompts(&["a", " "], &[]),
            ..Default::default()
        },
        &scripted(),
    );
    assert!(e.contains("prompt 2 is empty"), "{e}");
    let e = err(
        Overrides {
            seed_prompts: seed_prompts(&["a"], &[("hate", &["b"])]),
            ..Default::default()
        },
        &scripted(),
    );
    assert!(e.contains("not both"), "{e}");
    let e = err(
        Overrides {
            seed_prompts: seed_prompts(&["a"], &[]),
            baseline: Some(art_config::Baseline {
                label: "coco".into(),
                source: "coco.txt".into(),
                prompts: vec!["a bus".into()],
            }),
            ..Default::default()
        },
        &scripted(),
    );
    assert!(e.contains("use one of --prompts and --seed-prompts"), "{e}");
}
