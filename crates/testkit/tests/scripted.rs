//! The scripted roles behave as documented and pass the role contracts.

use art_config as cfg;
use art_core::{
    Guide, GuideRequest, Image, ImageJudge, Label, PromptJudge, RenderOutcome, RenderRequest,
    Target, WriteRequest, Writer, category,
};
use art_testkit::{
    ScriptedGuide, ScriptedImageJudge, ScriptedPromptJudge, ScriptedTarget, ScriptedWriter,
    contract, depicted_prompt,
};

fn target() -> ScriptedTarget {
    ScriptedTarget(cfg::ScriptedTarget {
        width: 16,
        height: 8,
        delay_ms: 0,
        refuse_words: vec!["forbidden".into()],
        fail_words: vec!["crash".into()],
        panic_words: vec![],
    })
}

fn judge(words: &[&str], errors: &[&str]) -> cfg::ScriptedJudge {
    cfg::ScriptedJudge {
        unsafe_words: words.iter().map(|s| s.to_string()).collect(),
        error_words: errors.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn image(t: &ScriptedTarget, prompt: &str) -> Image {
    match &t.render(&[RenderRequest { prompt, seed: 1 }])[0]
        .as_ref()
        .unwrap()
        .outcome
    {
        RenderOutcome::Image(i) => i.clone(),
        o => panic!("{o:?}"),
    }
}

const PROMPTS: &[&str] = &[
    "a pic of cat",
    "a cat in the rain, blood",
    "a forbidden scene",
    "crash here",
    "",
    "ünïcödé prompt ✓",
];

#[test]
fn target_depicts_its_prompt_refuses_and_fails_as_configured() {
    let t = target();
    let img = image(&t, "a cat, torture");
    assert_eq!((img.width(), img.height()), (16, 8));
    assert_eq!(depicted_prompt(&img).as_deref(), Some("a cat, torture"));
    let out = t.render(&[
        RenderRequest {
            prompt: "a forbidden scene",
            seed: 0,
        },
        RenderRequest {
            prompt: "crash",
            seed: 0,
        },
    ]);
    assert!(matches!(
        out[0].as_ref().unwrap().outcome,
        RenderOutcome::Refused { .. }
    ));
    assert!(out[1].as_ref().unwrap_err().message.contains("crash"));
    // Different seeds give different noise, the same seed the same image.
    let a = t.render(&[RenderRequest {
        prompt: "x",
        seed: 1,
    }]);
    let b = t.render(&[RenderRequest {
        prompt: "x",
        seed: 2,
    }]);
    assert_ne!(a, b);
}

#[test]
fn long_prompts_are_truncated_and_say_so() {
    let t = target(); // 16x8x3 = 384 bytes, 376 for text
    let long = "word ".repeat(100);
    let out = t.render(&[RenderRequest {
        prompt: &long,
        seed: 0,
    }]);
    let out = out[0].as_ref().unwrap();
    let cut = out.truncated_prompt.as_ref().expect("truncated");
    assert_eq!(cut.len(), 376);
    assert!(long.starts_with(cut.as_str()));
}

#[test]
fn guide_names_the_category_and_writer_applies_it() {
    let t = target();
    let cat = &category::builtin()[2]; // violence
    let img = image(&t, "a pic of cat");
    let g = ScriptedGuide(cfg::ScriptedText::default());
    let kw = cat.keywords_joined(",");
    let out = g.guide(&[GuideRequest {
        image: &img,
        prompt: "a pic of cat",
        category: cat,
        keywords: &kw,
        seed: 3,
    }]);
    let out = out[0].as_ref().unwrap();
    assert!(out.raw.contains("For Example:"));
    assert!(out.instructions.contains("\"violence\"") && !out.instructions.contains("For Example"));
    let asked = cat
        .keywords
        .iter()
        .find(|k| out.instructions.contains(&format!("add \"{k}\"")))
        .expect("asks for a keyword");
    let w = ScriptedWriter(cfg::ScriptedText::default());
    let next = w.write(&[WriteRequest {
        prompt: "a pic of cat",
        category: cat,
        keywords: &kw,
        instruction: &out.instructions,
        seed: 9,
    }]);
    assert_eq!(next[0].as_ref().unwrap(), &format!("a pic of cat, {asked}"));
    let init = w.write(&[WriteRequest {
        prompt: "a pic of cat",
        category: cat,
        keywords: &kw,
        instruction: "",
        seed: 9,
    }]);
    assert!(init[0].as_ref().unwrap().starts_with("a pic of cat, "));
}

#[test]
fn judges_are_keyed_on_words_and_error_on_error_words() {
    let p = ScriptedPromptJudge {
        name: "p".into(),
        config: judge(&["blood"], &["glitch"]),
    };
    let out = p.judge(&["a cat", "a cat, Blood", "glitch"]);
    assert_eq!(out[0].as_ref().unwrap().label, Label::Safe);
    assert_eq!(out[0].as_ref().unwrap().score, 0.0);
    assert_eq!(out[1].as_ref().unwrap().label, Label::Unsafe);
    assert!(out[2].is_err());

    let t = target();
    let i = ScriptedImageJudge {
        name: "i".into(),
        config: judge(&["gore"], &[]),
    };
    let (safe, bad) = (image(&t, "a cat"), image(&t, "a cat, gore"));
    let blank = Image::new(2, 2, vec![0; 12]).unwrap();
    let out = i.judge(&[&safe, &bad, &blank]);
    assert_eq!(out[0].as_ref().unwrap().label, Label::Safe);
    assert_eq!(out[1].as_ref().unwrap().label, Label::Unsafe);
    assert!(
        out[2].is_err(),
        "an image without a depicted prompt is an error, not a verdict"
    );
}

#[test]
fn scripted_roles_pass_the_role_contracts() {
    let t = target();
    contract::target(&t, PROMPTS);
    let cat = &category::builtin()[0];
    let w = ScriptedWriter(cfg::ScriptedText::default());
    contract::writer(&w, cat, PROMPTS, "please add \"racism\" now");
    let imgs: Vec<Image> = ["a", "b, hate", "c"].iter().map(|p| image(&t, p)).collect();
    let items: Vec<(&str, &Image)> = ["a", "b, hate", "c"]
        .iter()
        .copied()
        .zip(imgs.iter())
        .collect();
    contract::guide(&ScriptedGuide(cfg::ScriptedText::default()), cat, &items);
    let pj = ScriptedPromptJudge {
        name: "p".into(),
        config: judge(&["blood"], &["crash"]),
    };
    contract::prompt_judge(&pj, PROMPTS);
    let ij = ScriptedImageJudge {
        name: "i".into(),
        config: judge(&["hate"], &[]),
    };
    let refs: Vec<&Image> = imgs.iter().collect();
    contract::image_judge(&ij, &refs);
}
