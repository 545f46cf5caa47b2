//! The DCGAN face generator of PyPI `gan-face-generate==1.1.1` (`gan_face_generate/models.py`,
//! the PyTorch DCGAN tutorial's generator: nz = 100, ngf = 64, 64x64 RGB) on candle, loaded
//! from the package's `weights.tar` (a `torch.save` zip: `{"netG_state_dict": ...}`) with
//! candle's pickle reader, so the real-image tests need no torch. Eval mode: BatchNorm with its
//! running statistics (eps 1e-5). Pixels are `round((x + 1) * 127.5)` of the tanh output,
//! the rule `tools/golden/onnx_judges.py` renders its fixture faces with.

use art_core::Image;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

pub const NZ: usize = 100;
pub const SIDE: usize = 64;

#[derive(Debug)]
struct Layer {
    weight: Tensor,
    stride: usize,
    padding: usize,
    /// The BatchNorm's weight, bias, running mean and running variance; None for the last
    /// layer (tanh instead).
    norm: Option<(Tensor, Tensor, Tensor, Tensor)>,
}

#[derive(Debug)]
pub struct Dcgan {
    layers: Vec<Layer>,
}

impl Dcgan {
    pub fn load(path: &Path) -> Dcgan {
        let tensors: HashMap<String, Tensor> =
            candle_core::pickle::read_all_with_key(path, Some("netG_state_dict"))
                .unwrap_or_else(|e| {
                    panic!(
                        "{}: not the gan-face-generate checkpoint: {e}",
                        path.display()
                    )
                })
                .into_iter()
                .collect();
        let get = |n: &str| {
            tensors
                .get(n)
                .unwrap_or_else(|| panic!("{}: no tensor {n}", path.display()))
                .to_dtype(DType::F32)
                .unwrap()
        };
        // main.{0,3,6,9,12} are the ConvTranspose2d layers, main.{1,4,7,10} their BatchNorms.
        let layers = [0usize, 3, 6, 9, 12]
            .iter()
            .map(|&i| Layer {
                weight: get(&format!("main.{i}.weight")),
                stride: if i == 0 { 1 } else { 2 },
                padding: if i == 0 { 0 } else { 1 },
                norm: (i != 12).then(|| {
                    let b = i + 1;
                    (
                        get(&format!("main.{b}.weight")),
                        get(&format!("main.{b}.bias")),
                        get(&format!("main.{b}.running_mean")),
                        get(&format!("main.{b}.running_var")),
                    )
                }),
            })
            .collect();
        Dcgan { layers }
    }

    /// The generator's output for one latent vector: `[3, 64, 64]` in -1..1, row-major.
    pub fn forward(&self, z: &[f32]) -> Vec<f32> {
        assert_eq!(z.len(), NZ);
        let mut x = Tensor::from_slice(z, (1, NZ, 1, 1), &Device::Cpu).unwrap();
        for l in &self.layers {
            x = x
                .conv_transpose2d(&l.weight, l.padding, 0, l.stride, 1)
                .unwrap();
            x = match &l.norm {
                Some((w, b, mean, var)) => {
                    let c = w.dims1().unwrap();
                    let shape = (1, c, 1, 1);
                    let inv = (var + 1e-5).unwrap().sqrt().unwrap();
                    let y = x
                        .broadcast_sub(&mean.reshape(shape).unwrap())
                        .unwrap()
                        .broadcast_div(&inv.reshape(shape).unwrap())
                        .unwrap()
                        .broadcast_mul(&w.reshape(shape).unwrap())
                        .unwrap()
                        .broadcast_add(&b.reshape(shape).unwrap())
                        .unwrap();
                    y.relu().unwrap()
                }
                None => x.tanh().unwrap(),
            };
        }
        assert_eq!(x.dims(), &[1, 3, SIDE, SIDE]);
        x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// The face for a latent vector, as the golden script makes its PNGs.
    pub fn render(&self, z: &[f32]) -> Image {
        to_image(&self.forward(z))
    }
}

/// `round((x + 1) * 127.5)` (half to even, as numpy's rint), clipped, CHW to packed RGB.
pub fn to_image(chw: &[f32]) -> Image {
    let n = SIDE * SIDE;
    let mut rgb = vec![0u8; n * 3];
    for c in 0..3 {
        for i in 0..n {
            let v = ((chw[c * n + i] + 1.0) * 127.5).round_ties_even();
            rgb[i * 3 + c] = v.clamp(0.0, 255.0) as u8;
        }
    }
    Image::new(SIDE as u32, SIDE as u32, rgb).unwrap()
}

/// A latent vector from a seed without numpy: splitmix64 and Box-Muller (for faces beyond the
/// golden ones).
pub fn latent(seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..NZ)
        .map(|_| {
            let (u1, u2) = (next(), next());
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect()
}
