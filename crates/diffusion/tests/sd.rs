//! Stable Diffusion against diffusers 0.42 / transformers 5.24 on tiny random-weight SD1-,
//! SD2- and SDXL-style pipelines (golden files from `tools/golden/sd.py`): the CLIP tokenizers
//! (from `vocab.json` + `merges.txt` and from `tokenizer.json`), the text conditioning incl.
//! SDXL's pooled embeddings and zeroed negatives, one UNet call incl. SDXL's added time/text
//! conditioning, the VAE decode, a full 4-step render with classifier-free guidance, and every
//! scheduler step on fixed inputs. Then loading: the hub-cache layout, missing and corrupt
//! files, and the Target role's contract.

use art_diffusion::pipeline::{LoadOptions, RenderSettings, StableDiffusion};
use art_diffusion::scheduler::SchedulerConfig;
use art_diffusion::text_encoder::ClipTokenizer;
use art_diffusion::unet::{AddedInputs, Slicing};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use art_testkit::golden as common;
use common::{copy_dir, max_abs};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd")
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("golden").join(name)).unwrap()).unwrap()
}

fn tensors(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("golden").join(name), &Device::Cpu).unwrap()
}

fn max_abs_val(a: &Tensor) -> f32 {
    a.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[track_caller]
fn close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let d = max_abs(got, want);
    assert!(
        d <= tol,
        "{what}: max abs diff {d} > {tol} (values up to {})",
        max_abs_val(want)
    );
}

fn load(variant: &str) -> StableDiffusion {
    StableDiffusion::load(&fixtures().join(variant), &LoadOptions::default()).unwrap()
}

#[test]
fn clip_tokenizers_match_transformers() {
    let g = json("tokens.json");
    let prompts: Vec<String> = g["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let mut checked = 0;
    for (variant, toks) in g["variants"].as_object().unwrap() {
        for (name, t) in toks.as_object().unwrap() {
            let tok = ClipTokenizer::from_folder(&fixtures().join(variant).join(name)).unwrap();
            for (i, p) in prompts.iter().enumerate() {
                let got = tok.encode(p).unwrap();
                let want: Vec<u32> = t["ids"][i]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u32)
                    .collect();
                assert_eq!(got.ids, want, "{variant}/{name}: ids of prompt {i} {p:?}");
                assert_eq!(
                    got.truncated.as_deref(),
                    t["truncated_text"][i].as_str(),
                    "{variant}/{name}: truncated text of prompt {i}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} tokenizations checked");
}

fn check_text(variant: &str) {
    let g = json(&format!("{variant}.json"));
    let t = tensors(&format!("{variant}.safetensors"));
    let sd = load(variant);
    let ep = &g["encode_prompt"];
    let prompts: Vec<&str> = ep["prompt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let neg = ep["negative_prompt"][0].as_str().unwrap();
    let cond = sd.encode(&prompts).unwrap();
    close(
        &format!("{variant} prompt_embeds"),
        &cond.embeds,
        &t["prompt_embeds"],
        1e-4,
    );
    assert_eq!(cond.truncated[0], None);
    assert!(
        cond.truncated[2].is_some(),
        "the long prompt is reported truncated"
    );
    let un = sd.encode_negative(Some(neg), prompts.len()).unwrap();
    close(
        &format!("{variant} negative_prompt_embeds"),
        &un.embeds,
        &t["negative_prompt_embeds"],
        1e-4,
    );
    if variant == "sdxl" {
        close(
            "sdxl pooled",
            cond.pooled.as_ref().unwrap(),
            &t["pooled_prompt_embeds"],
            1e-4,
        );
        close(
            "sdxl negative pooled",
            un.pooled.as_ref().unwrap(),
            &t["negative_pooled_prompt_embeds"],
            1e-4,
        );
        let z = sd.encode_negative(None, prompts.len()).unwrap();
        close(
            "sdxl zero negative",
            &z.embeds,
            &t["zero_negative_prompt_embeds"],
            0.0,
        );
        close(
            "sdxl zero pooled",
            z.pooled.as_ref().unwrap(),
            &t["zero_negative_pooled"],
            0.0,
        );
        close(
            "sdxl time ids",
            &sd.time_ids(1, 64, 64).unwrap(),
            &t["add_time_ids"],
            0.0,
        );
    }
}

#[test]
fn sd1_text_conditioning_matches_diffusers() {
    check_text("sd1");
}

#[test]
fn sd2_text_conditioning_matches_diffusers() {
    check_text("sd2");
}

#[test]
fn sdxl_text_conditioning_matches_diffusers() {
    check_text("sdxl");
}

fn check_unet_and_vae(variant: &str) {
    let g = json(&format!("{variant}.json"));
    let t = tensors(&format!("{variant}.safetensors"));
    let mut sd = load(variant);
    let ts = g["unet_timestep"].as_f64().unwrap();
    for slicing in [Slicing::Off, Slicing::Rows(1), Slicing::Budget(1)] {
        sd.unet.slicing = slicing;
        let added = (variant == "sdxl").then(|| AddedInputs {
            text_embeds: &t["unet_text_embeds"],
            time_ids: &t["unet_time_ids"],
        });
        let out = sd
            .unet
            .forward(
                &t["unet_sample"],
                ts,
                &t["unet_encoder_hidden_states"],
                added,
            )
            .unwrap();
        close(
            &format!("{variant} unet ({slicing:?})"),
            &out,
            &t["unet_out"],
            1e-4,
        );
    }
    let img = sd.decode(&t["vae_latents"]).unwrap();
    let want = ((&t["vae_decoded"] / 2.0).unwrap() + 0.5)
        .unwrap()
        .clamp(0f32, 1f32)
        .unwrap();
    close(&format!("{variant} vae decode"), &img, &want, 1e-4);
}

#[test]
fn sd1_unet_and_vae_match_diffusers() {
    check_unet_and_vae("sd1");
}

#[test]
fn sd2_unet_and_vae_match_diffusers() {
    check_unet_and_vae("sd2");
}

#[test]
fn sdxl_unet_with_added_conditioning_and_vae_match_diffusers() {
    check_unet_and_vae("sdxl");
}

fn check_render(variant: &str, image_key: &str, guidance: Option<f64>) {
    let g = json(&format!("{variant}.json"));
    let t = tensors(&format!("{variant}.safetensors"));
    let mut sd = load(variant);
    let r = &g["render"];
    let prompts: Vec<&str> = r["prompt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let settings = RenderSettings {
        width: r["width"].as_u64().unwrap() as usize,
        height: r["height"].as_u64().unwrap() as usize,
        steps: r["num_inference_steps"].as_u64().unwrap() as usize,
        guidance_scale: guidance.unwrap_or(r["guidance_scale"].as_f64().unwrap()),
        negative_prompt: r["negative_prompt"][0].as_str().map(str::to_string),
    };
    let sched = sd.scheduler().build(settings.steps).unwrap();
    let want_ts: Vec<f64> = r["timesteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(sched.timesteps(), want_ts.as_slice(), "{variant} timesteps");
    let sigma = sched.init_noise_sigma();
    assert!((sigma - r["init_noise_sigma"].as_f64().unwrap()).abs() < 1e-6);
    let cond = sd.encode(&prompts).unwrap();
    let un = sd
        .encode_negative(settings.negative_prompt.as_deref(), prompts.len())
        .unwrap();
    let latents = t["render_latents"].affine(sigma, 0.0).unwrap();
    let mut run = |micro: Option<usize>, latents: Tensor| {
        sd.micro_batch = micro;
        sd.denoise(&cond, Some(&un), latents, &settings, &mut || {
            unreachable!("no noise")
        })
        .unwrap()
    };
    // The whole batch in one UNet call agrees too (to rounding).
    let whole = run(None, latents.clone());
    let out = run(Some(1), latents);
    close(
        &format!("{variant} whole batch vs one image per call"),
        &whole,
        &out,
        1e-4,
    );
    if guidance.is_none() {
        close(
            &format!("{variant} final latents"),
            &out,
            &t["render_final_latents"],
            1e-3,
        );
    }
    let img = sd.decode(&out).unwrap().permute((0, 2, 3, 1)).unwrap();
    close(&format!("{variant} {image_key}"), &img, &t[image_key], 1e-3);
}

#[test]
fn sd1_render_matches_diffusers() {
    check_render("sd1", "render_image", None);
}

#[test]
fn sd2_render_with_and_without_guidance_matches_diffusers() {
    check_render("sd2", "render_image", None);
    check_render("sd2", "render_image_nocfg", Some(1.0));
}

#[test]
fn sdxl_render_matches_diffusers() {
    check_render("sdxl", "render_image", None);
}

#[test]
fn schedulers_step_like_diffusers() {
    let g = json("schedulers.json");
    let t = tensors("schedulers.safetensors");
    let path = fixtures().join("golden/schedulers.json");
    let mut stepped = 0;
    let mut worst = 0f32;
    for (name, case) in g["cases"].as_object().unwrap() {
        let cfg = case["config"].as_object().unwrap().clone();
        let mut map = cfg.clone();
        map.insert("_class_name".into(), case["class"].clone());
        let sc = SchedulerConfig::from_json(&map, &path, None, None).unwrap();
        let steps = case["num_inference_steps"].as_u64().unwrap() as usize;
        let mut s = sc.build(steps).unwrap();
        let want: Vec<f64> = case["timesteps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(s.timesteps(), want.as_slice(), "{name}: timesteps");
        let sigma = case["init_noise_sigma"].as_f64().unwrap();
        assert!(
            (s.init_noise_sigma() - sigma).abs() <= 1e-6 * sigma.max(1.0),
            "{name}: init_noise_sigma {} vs {sigma}",
            s.init_noise_sigma()
        );
        match (s.sigmas(), case["sigmas"].as_array()) {
            (Some(got), Some(want)) => {
                assert_eq!(got.len(), want.len(), "{name}: sigmas");
                for (g, w) in got.iter().zip(want) {
                    let w = w.as_f64().unwrap();
                    assert!(
                        (g - w).abs() <= 1e-6 * w.max(1.0),
                        "{name}: sigma {g} vs {w}"
                    );
                }
            }
            (None, None) => {}
            (got, want) => panic!("{name}: sigmas {got:?} vs {want:?}"),
        }
        let calls = case["num_step_calls"].as_u64().unwrap() as usize;
        if calls == 0 {
            continue;
        }
        let mut sample = t[&format!("{name}/sample0")].clone();
        for i in 0..calls {
            let scaled = s.scale_model_input(&sample, i).unwrap();
            let want = &t[&format!("{name}/scaled_input_{i}")];
            close(
                &format!("{name} scaled input {i}"),
                &scaled,
                want,
                2e-6 * max_abs_val(want).max(1.0),
            );
            let noise = t.get(&format!("{name}/noise_{i}"));
            assert_eq!(noise.is_some(), s.needs_noise(), "{name}: noise use");
            let prev = s
                .step(&t[&format!("{name}/model_output_{i}")], i, &sample, noise)
                .unwrap();
            let want = &t[&format!("{name}/prev_sample_{i}")];
            let rel = max_abs(&prev, want) / max_abs_val(want).max(1.0);
            worst = worst.max(rel);
            close(
                &format!("{name} step {i}"),
                &prev,
                want,
                2e-6 * max_abs_val(want).max(1.0),
            );
            sample = prev;
            stepped += 1;
        }
    }
    assert!(stepped > 80, "only {stepped} steps checked");
    eprintln!("{stepped} scheduler steps, worst relative difference {worst:e}");
}

fn load_err(dir: &Path) -> String {
    StableDiffusion::load(dir, &LoadOptions::default())
        .unwrap_err()
        .to_string()
}

/// Rewrites one file of a pipeline folder.
fn edit(dir: &Path, file: &str, f: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    let p = dir.join(file);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, f(bytes)).unwrap();
}

fn replace(from: &'static str, to: &'static str) -> impl FnOnce(Vec<u8>) -> Vec<u8> {
    move |b| String::from_utf8(b).unwrap().replace(from, to).into_bytes()
}

#[test]
fn missing_corrupt_and_unsupported_files_are_named() {
    type Change = Box<dyn FnOnce(&Path)>;
    let cases: Vec<(&str, Change, &[&str])> = vec![
        (
            "no unet weights",
            Box::new(|d| {
                std::fs::remove_file(d.join("unet/diffusion_pytorch_model.safetensors")).unwrap()
            }),
            &["unet/diffusion_pytorch_model.safetensors", "not found"],
        ),
        (
            "truncated vae",
            Box::new(|d| {
                edit(d, "vae/diffusion_pytorch_model.safetensors", |b| {
                    b[..b.len() - 100].to_vec()
                })
            }),
            &["vae/diffusion_pytorch_model.safetensors", "truncated"],
        ),
        (
            "garbage text encoder",
            Box::new(|d| {
                edit(d, "text_encoder/model.safetensors", |_| {
                    b"not a safetensors file".to_vec()
                })
            }),
            &["text_encoder/model.safetensors", "not a safetensors file"],
        ),
        (
            "cut-off json",
            Box::new(|d| {
                edit(d, "unet/config.json", |_| {
                    b"{ \"block_out_channels\": [32,".to_vec()
                })
            }),
            &["unet/config.json"],
        ),
        (
            "config and weights disagree",
            Box::new(|d| {
                edit(
                    d,
                    "unet/config.json",
                    replace("\"cross_attention_dim\": 32", "\"cross_attention_dim\": 48"),
                )
            }),
            &["unet/diffusion_pytorch_model.safetensors", "has shape"],
        ),
        (
            "an LCM UNet",
            Box::new(|d| {
                edit(
                    d,
                    "unet/config.json",
                    replace(
                        "\"time_cond_proj_dim\": null",
                        "\"time_cond_proj_dim\": 256",
                    ),
                )
            }),
            &["unet/config.json", "time_cond_proj_dim", "not supported"],
        ),
        (
            "another scheduler",
            Box::new(|d| {
                edit(
                    d,
                    "scheduler/scheduler_config.json",
                    replace("PNDMScheduler", "LCMScheduler"),
                )
            }),
            &["scheduler_config.json", "LCMScheduler"],
        ),
        (
            "no merges",
            Box::new(|d| std::fs::remove_file(d.join("tokenizer/merges.txt")).unwrap()),
            &["tokenizer/merges.txt", "not found"],
        ),
        (
            "another pipeline",
            Box::new(|d| {
                edit(
                    d,
                    "model_index.json",
                    replace("StableDiffusionPipeline", "StableDiffusion3Pipeline"),
                )
            }),
            &["model_index.json", "StableDiffusion3Pipeline"],
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (i, (what, change, expect)) in cases.into_iter().enumerate() {
        let d = tmp.path().join(i.to_string());
        copy_dir(&fixtures().join("sd1"), &d);
        change(&d);
        let e = load_err(&d);
        for x in expect {
            assert!(e.contains(x), "{what}: `{x}` not in: {e}");
        }
    }
}

fn target(extra: &str, model: &Path) -> art_diffusion::target::StableDiffusionTarget {
    let text = format!("model = {:?}\n{extra}", model.to_str().unwrap());
    let c: art_config::local::StableDiffusionTarget = toml::from_str(&text).unwrap();
    art_diffusion::target::StableDiffusionTarget::new(&c).unwrap()
}

#[test]
fn the_target_role_keeps_the_contract_and_reports_truncation() {
    use art_core::{RenderOutcome, RenderRequest, Target};
    let tokens = json("tokens.json");
    let long = tokens["prompts"][tokens["long_prompt_index"].as_u64().unwrap() as usize]
        .as_str()
        .unwrap()
        .to_string();
    let prompts = [
        "a pic of cat",
        "a lighthouse at dusk",
        long.as_str(),
        "two dogs",
    ];
    for (variant, extra) in [
        ("sd1", "steps = 3"),
        (
            "sdxl",
            "steps = 2\nscheduler = \"euler-ancestral-discrete\"\ntimestep_spacing = \"trailing\"",
        ),
    ] {
        let t = target(extra, &fixtures().join(variant));
        art_testkit::contract::target(&t, &prompts);
        let out = t.render(&[
            RenderRequest {
                prompt: prompts[0],
                seed: 7,
            },
            RenderRequest {
                prompt: prompts[2],
                seed: 7,
            },
            RenderRequest {
                prompt: prompts[0],
                seed: 8,
            },
        ]);
        let img = |i: usize| match &out[i].as_ref().unwrap().outcome {
            RenderOutcome::Image(im) => im.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (img(0).width(), img(0).height()),
            (64, 64),
            "native size of the fixture"
        );
        assert_ne!(
            img(0).rgb(),
            img(2).rgb(),
            "{variant}: another seed, another image"
        );
        assert_eq!(out[0].as_ref().unwrap().truncated_prompt, None);
        let cut = out[1].as_ref().unwrap().truncated_prompt.clone().unwrap();
        assert!(
            long.to_lowercase().starts_with(&cut[..40]) && cut.len() < long.len(),
            "{cut}"
        );
        let id = t.identity();
        assert_eq!(id.kind, "stable-diffusion");
        assert_eq!(id.params["steps"], if variant == "sd1" { "3" } else { "2" });
        let sched = if variant == "sd1" {
            "pndm"
        } else {
            "eulerancestraldiscrete"
        };
        assert_eq!(id.params["scheduler"], sched);
    }
}

#[test]
fn bad_target_settings_are_refused_with_the_value() {
    let err = |text: &str| {
        let c: art_config::local::StableDiffusionTarget = toml::from_str(text).unwrap();
        art_diffusion::target::StableDiffusionTarget::new(&c)
            .unwrap_err()
            .to_string()
    };
    let sd1 = format!("model = {:?}\n", fixtures().join("sd1").to_str().unwrap());
    let e = err(&format!("{sd1}width = 60"));
    assert!(
        e.contains("width") && e.contains("60") && e.contains("multiple of 8"),
        "{e}"
    );
    let e = err(&format!("{sd1}steps = 0"));
    assert!(e.contains("0 steps"), "{e}");
    let e = err(&format!("{sd1}dtype = \"bf16\""));
    assert!(e.contains("bf16") && e.contains("f16"), "{e}");
    let e = err("model = \"/nonexistent/sd\"");
    assert!(e.contains("/nonexistent/sd"), "{e}");
}

#[test]
fn a_vae_with_the_old_attention_names_loads_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("sd1");
    copy_dir(&fixtures().join("sd1"), &d);
    let f = d.join("vae/diffusion_pytorch_model.safetensors");
    let old: HashMap<String, Tensor> = candle_core::safetensors::load(&f, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            let k = k
                .replace(".to_q.", ".query.")
                .replace(".to_k.", ".key.")
                .replace(".to_v.", ".value.")
                .replace(".to_out.0.", ".proj_attn.");
            (k, v)
        })
        .collect();
    assert!(old.keys().any(|k| k.contains(".proj_attn.")));
    candle_core::safetensors::save(&old, &f).unwrap();
    let sd = StableDiffusion::load(&d, &LoadOptions::default()).unwrap();
    let t = tensors("sd1.safetensors");
    let want = ((&t["vae_decoded"] / 2.0).unwrap() + 0.5)
        .unwrap()
        .clamp(0f32, 1f32)
        .unwrap();
    close(
        "old-name vae",
        &sd.decode(&t["vae_latents"]).unwrap(),
        &want,
        1e-4,
    );
}

#[test]
fn f16_weights_render_close_to_f32() {
    let t = tensors("sd1.safetensors");
    let g = json("sd1.json");
    let half = StableDiffusion::load(
        &fixtures().join("sd1"),
        &LoadOptions {
            dtype: DType::F16,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let ts = g["unet_timestep"].as_f64().unwrap();
    let x = t["unet_sample"].to_dtype(DType::F16).unwrap();
    let ctx = t["unet_encoder_hidden_states"]
        .to_dtype(DType::F16)
        .unwrap();
    let out = half.unet.forward(&x, ts, &ctx, None).unwrap();
    assert_eq!(out.dtype(), DType::F16);
    close("f16 unet", &out, &t["unet_out"], 2e-2);
    let img = half
        .decode(&t["vae_latents"].to_dtype(DType::F16).unwrap())
        .unwrap();
    let want = ((&t["vae_decoded"] / 2.0).unwrap() + 0.5)
        .unwrap()
        .clamp(0f32, 1f32)
        .unwrap();
    close("f16 vae", &img, &want, 2e-2);
}
