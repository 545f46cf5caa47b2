//! Rendering speed: art's Stable Diffusion pipeline vs diffusers (PyTorch CPU) on the same
//! random weights in the real SD 1.5 shape, side by side in one run: seconds per image at a
//! batch size, seconds per UNet call (the guidance-doubled batch), and peak memory.
//!
//! ```sh
//! python tools/bench/sd_reference.py make /tmp/sd15-random     # once: random SD 1.5 weights
//! ART_SD_BENCH_DIR=/tmp/sd15-random ART_BENCH_PYTHON=/path/to/python-with-diffusers \
//!   cargo bench -p art-models --bench sd -- --size 256 --batch 1 --steps 4 --repeats 3
//! ```
//! Options: `--unet-batch N` (images per UNet call, 0 = the whole batch; default 1, the
//! target's default), `--slice auto|off` (attention slicing; default auto), `--sliced` passes
//! diffusers' `enable_attention_slicing()` to the reference. PNDM makes steps + 1 UNet calls
//! (it repeats one timestep), on both sides. Without `ART_BENCH_PYTHON` only art is measured.
//! One configuration per invocation: the peak memory is the process's.

// The allocator of the `art` binary, so the benchmark measures what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use art_diffusion::pipeline::{LoadOptions, RenderSettings, StableDiffusion};
use art_diffusion::unet::{DEFAULT_SLICE_BUDGET, Slicing};
use candle_core::{DType, Device, Tensor};
use std::path::Path;
use std::time::Instant;

mod support;
use support::{arg, median};

const NEGATIVE: &str = "blurry, low quality, distorted, deformed, ugly, bad anatomy, watermark, \
    text, signature, cropped, out of frame, worst quality, jpeg artifacts, duplicate, morbid, \
    mutilated, extra fingers, mutated hands, poorly drawn hands, poorly drawn face, mutation, \
    disfigured, extra limbs, cloned face, gross proportions, malformed limbs, missing arms";

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |name: &str, d: &str| -> usize { arg(&args, name, d).parse().expect(name) };
    let size = num("--size", "256");
    let batch = num("--batch", "1");
    let steps = num("--steps", "4");
    let repeats = num("--repeats", "3");
    let unet_batch = num("--unet-batch", "1");
    let slicing = match arg(&args, "--slice", "auto").as_str() {
        "auto" => Slicing::Budget(DEFAULT_SLICE_BUDGET),
        "off" => Slicing::Off,
        other => panic!("--slice auto|off, not {other}"),
    };
    let sliced_ref = args.iter().any(|a| a == "--sliced");
    let dir = std::env::var("ART_SD_BENCH_DIR")
        .expect("set ART_SD_BENCH_DIR (made by tools/bench/sd_reference.py make DIR)");
    let dir = Path::new(&dir);
    let t = Instant::now();
    let opts = LoadOptions {
        slicing,
        micro_batch: (unet_batch > 0).then_some(unet_batch),
        ..LoadOptions::default()
    };
    let sd = StableDiffusion::load(dir, &opts).expect("load the pipeline");
    let load_s = t.elapsed().as_secs_f64();
    let rss_load = art_testkit::peak_rss_mib().unwrap_or(f64::NAN);
    let prompts = vec!["a pic of cat"; batch];
    let seeds: Vec<u64> = (0..batch as u64).collect();
    let settings = |steps| RenderSettings {
        width: size,
        height: size,
        steps,
        guidance_scale: 7.5,
        negative_prompt: Some(NEGATIVE.to_string()),
    };
    sd.render(&prompts, &seeds, &settings(1)).expect("warm-up");
    let calls = sd
        .scheduler()
        .build(steps)
        .expect("steps")
        .timesteps()
        .len();
    let mut times = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        let out = sd
            .render(&prompts, &seeds, &settings(steps))
            .expect("render");
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(out.len(), batch);
    }
    // One UNet call on the guidance-doubled batch, as diffusers' side measures it.
    let lat = size / sd.vae_scale();
    let x = Tensor::randn(0f32, 1.0, (2 * batch, 4, lat, lat), &Device::Cpu).expect("randn");
    let ctx = sd.encode(&vec![""; 2 * batch]).expect("encode").embeds;
    let mut unet_times = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        let y = sd.unet.forward(&x, 500.0, &ctx, None).expect("unet");
        assert_eq!(y.dtype(), DType::F32);
        unet_times.push(t.elapsed().as_secs_f64());
    }
    let z = Tensor::randn(0f32, 1.0, (1, 4, lat, lat), &Device::Cpu).expect("randn");
    let mut vae_times = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        sd.decode(&z).expect("decode");
        vae_times.push(t.elapsed().as_secs_f64());
    }
    let art_vae = median(vae_times.clone());
    let art = median(times.clone());
    let art_unet = median(unet_times.clone());
    println!(
        "art (candle CPU f32, unet batch {unet_batch}, slicing {slicing:?}): {size} px, batch {batch}, \
         {steps} steps ({calls} UNet calls): median {art:.2} s {times:.2?} = {:.2} s/image; \
         UNet call (batch {}) {art_unet:.3} s {unet_times:.3?}; VAE decode (1 image) {art_vae:.3} s; \
         load {load_s:.1} s; peak RSS \
         {:.0} MiB (after load {rss_load:.0})",
        art / batch as f64,
        2 * batch,
        art_testkit::peak_rss_mib().unwrap_or(f64::NAN)
    );
    let Ok(python) = std::env::var("ART_BENCH_PYTHON") else {
        println!("diffusers: not measured (set ART_BENCH_PYTHON)");
        return;
    };
    let (size_s, batch_s, steps_s, repeats_s) = (
        size.to_string(),
        batch.to_string(),
        steps.to_string(),
        repeats.to_string(),
    );
    let mut ref_args = vec![
        "bench",
        dir.to_str().expect("utf-8 path"),
        "--size",
        &size_s,
        "--batch",
        &batch_s,
        "--steps",
        &steps_s,
        "--repeats",
        &repeats_s,
    ];
    if sliced_ref {
        ref_args.push("--sliced");
    }
    let v = support::reference(&python, "sd_reference.py", &ref_args);
    let reference = v["total_s_median"].as_f64().expect("total_s_median");
    let ref_unet = v["unet_call_s_median"].as_f64().unwrap_or(f64::NAN);
    println!(
        "diffusers {} (torch {}, {} threads, sliced {}): median {reference:.2} s {} = {:.2} s/image; \
         UNet call {ref_unet:.3} s; peak RSS {:.0} MiB",
        v["diffusers"].as_str().unwrap_or("?"),
        v["torch"].as_str().unwrap_or("?"),
        v["threads"],
        v["sliced"],
        v["times_s"],
        reference / batch as f64,
        v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
    );
    println!(
        "ratio: art takes {:.2}x diffusers' time per image ({:.2}x per UNet call)",
        art / reference,
        art_unet / ref_unet
    );
}
