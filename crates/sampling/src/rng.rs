//! A bit-exact re-implementation of PyTorch's CPU generator (`torch.Generator('cpu')`):
//! `manual_seed(s)` followed by `randn(shape)` in float32 gives the same bits here as in torch, so a
//! seed chosen in A1111 or ComfyUI gives the same initial noise.
//!
//! What torch does (ATen `CPUGeneratorImpl`, `core/DistributionsHelper.h`,
//! `native/cpu/DistributionTemplates.h`, `native/cpu/avx_mathfun.h`), reproduced here:
//! * the engine is MT19937 seeded with the low 32 bits of the seed;
//! * a float32 uniform is `(u32 & (2^24 - 1)) * 2^-24`, a float64 uniform is
//!   `(u64 & (2^53 - 1)) * 2^-53` with the u64 made of two draws, high word first;
//! * `randn` of a contiguous float32 tensor with at least 16 elements fills the whole tensor with
//!   uniforms, then runs Box–Muller over blocks of 16 (element `j` of a block pairs with `j + 8`);
//!   when the size is not a multiple of 16 the last 16 elements are recomputed from 16 fresh
//!   uniforms. On x86-64 torch dispatches this to its AVX2 kernel (it deliberately never uses an
//!   AVX-512 one), whose `log` and `sincos` are Cephes-style polynomial approximations compiled with
//!   fused multiply-adds; those are emulated lane by lane below, FMA for FMA;
//! * smaller tensors take the scalar float64 path, which draws a pair of uniforms per two normals
//!   and caches the second normal of each pair in the generator (across calls) until it is used.

use candle_core::{Device, Tensor};

const MT_N: usize = 624;
const MT_M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The 32-bit Mersenne Twister exactly as `at::mt19937` runs it.
#[derive(Clone)]
struct Mt19937 {
    state: [u32; MT_N],
    /// Index of the next state word to temper.
    next: usize,
}

impl Mt19937 {
    fn new(seed: u64) -> Self {
        let mut state = [0_u32; MT_N];
        // Torch keeps only the low 32 bits of the 64-bit seed (`seed & 0xffffffff`).
        let mut previous = (seed & 0xffff_ffff) as u32;
        for (j, word) in state.iter_mut().enumerate() {
            if j > 0 {
                previous = 1_812_433_253_u32
                    .wrapping_mul(previous ^ (previous >> 30))
                    .wrapping_add(j as u32);
            }
            *word = previous;
        }
        // Torch regenerates the whole state before the first draw.
        Self { state, next: MT_N }
    }

    fn twist(&mut self) {
        let twisted = |u: u32, v: u32| -> u32 {
            let mixed = (u & UPPER_MASK) | (v & LOWER_MASK);
            (mixed >> 1) ^ if v & 1 == 1 { MATRIX_A } else { 0 }
        };
        for j in 0..MT_N {
            let current = self.state.get(j).copied().unwrap_or_default();
            let following = self.state.get((j + 1) % MT_N).copied().unwrap_or_default();
            let far = self.state.get((j + MT_M) % MT_N).copied().unwrap_or_default();
            if let Some(word) = self.state.get_mut(j) {
                *word = far ^ twisted(current, following);
            }
        }
        self.next = 0;
    }

    fn next_u32(&mut self) -> u32 {
        if self.next >= MT_N {
            self.twist();
        }
        let mut y = self.state.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }
}

/// A torch-compatible CPU random generator: `TorchRng::new(seed)` is `torch.Generator('cpu')
/// .manual_seed(seed)` (and `torch.manual_seed(seed)` for the global generator).
#[derive(Clone)]
pub struct TorchRng {
    engine: Mt19937,
    /// The second normal of the last scalar Box–Muller pair (torch's `next_double_normal_sample`).
    cached_normal: Option<f64>,
}

impl std::fmt::Debug for TorchRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchRng")
            .field("next", &self.engine.next)
            .field("cached_normal", &self.cached_normal)
            .finish_non_exhaustive()
    }
}

impl TorchRng {
    /// The generator after `manual_seed(seed)`. Seeds above `u32::MAX` are accepted and, as in
    /// torch, only their low 32 bits matter.
    pub fn new(seed: u64) -> Self {
        Self { engine: Mt19937::new(seed), cached_normal: None }
    }

    /// One raw 32-bit draw (`CPUGeneratorImpl::random`).
    pub fn next_u32(&mut self) -> u32 {
        self.engine.next_u32()
    }

    /// One raw 64-bit draw (`CPUGeneratorImpl::random64`): two 32-bit draws, the first is the
    /// high word.
    pub fn next_u64(&mut self) -> u64 {
        let high = u64::from(self.next_u32());
        let low = u64::from(self.next_u32());
        (high << 32) | low
    }

    /// A float32 uniform in [0, 1) from 24 random bits, as `torch.rand` in float32.
    pub fn uniform_f32(&mut self) -> f32 {
        const DIVISOR: f32 = 1.0 / (1_u32 << 24) as f32;
        ((self.next_u32() & 0x00ff_ffff) as f32) * DIVISOR
    }

    /// A float64 uniform in [0, 1) from 53 random bits.
    pub fn uniform_f64(&mut self) -> f64 {
        const DIVISOR: f64 = 1.0 / (1_u64 << 53) as f64;
        ((self.next_u64() & ((1_u64 << 53) - 1)) as f64) * DIVISOR
    }

    /// One standard normal from torch's scalar path (`at::normal_distribution<double>`), with
    /// its cache of the pair's second value.
    fn scalar_normal(&mut self) -> f64 {
        let value = match self.cached_normal.take() {
            Some(cached) => cached,
            None => {
                let u1 = self.uniform_f64();
                let u2 = self.uniform_f64();
                let radius = (-2.0 * (-u2).ln_1p()).sqrt();
                let theta = 2.0 * std::f64::consts::PI * u1;
                self.cached_normal = Some(radius * theta.sin());
                radius * theta.cos()
            }
        };
        // `transformation::normal(ret, mean = 0, std = 1)`; keeps torch's -0 -> +0.
        value * 1.0 + 0.0
    }

    /// `torch.randn(numel)` in float32, flattened: the values of a contiguous tensor with `numel`
    /// elements, in memory order.
    pub fn randn_vec(&mut self, numel: usize) -> Vec<f32> {
        if numel < 16 {
            return (0..numel).map(|_| self.scalar_normal() as f32).collect();
        }
        let mut data: Vec<f32> = (0..numel).map(|_| self.uniform_f32()).collect();
        for block in data.chunks_exact_mut(16) {
            normal_fill_16(block);
        }
        if !numel.is_multiple_of(16) {
            let tail_start = numel - 16;
            if let Some(tail) = data.get_mut(tail_start..) {
                for value in tail.iter_mut() {
                    *value = self.uniform_f32();
                }
                normal_fill_16(tail);
            }
        }
        data
    }

    /// `torch.randn(shape, generator=g)` (float32, CPU), moved to `device`.
    pub fn randn(&mut self, shape: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let numel = shape.iter().product();
        let values = self.randn_vec(numel);
        Tensor::from_vec(values, shape, &Device::Cpu)?.to_device(device)
    }
}

/// Box–Muller over one block of 16 uniforms, in place, as torch's `NormalFill16<float>` AVX2
/// kernel computes it lane by lane (mean 0, std 1).
fn normal_fill_16(block: &mut [f32]) {
    const TWO_PI: f32 = (2.0 * std::f64::consts::PI) as f32;
    let (first, second) = block.split_at_mut(8);
    for (cos_slot, sin_slot) in first.iter_mut().zip(second.iter_mut()) {
        let u1 = 1.0_f32 - *cos_slot;
        let u2 = *sin_slot;
        let radius = (-2.0_f32 * cephes_log(u1)).sqrt();
        let theta = TWO_PI * u2;
        let (sin_theta, cos_theta) = cephes_sincos(theta);
        // `_mm256_fmadd_ps(n, std, mean)` with std 1 and mean 0.
        *cos_slot = (radius * cos_theta).mul_add(1.0, 0.0);
        *sin_slot = (radius * sin_theta).mul_add(1.0, 0.0);
    }
}

/// Constants of `avx_mathfun.h`, digits as written there; double literals narrowed to float as
/// C++ does.
#[allow(
    clippy::excessive_precision,
    clippy::approx_constant,
    reason = "the reference's literals, narrowed exactly as its C++ compiler narrows them"
)]
mod cephes {
    pub const SQRTHF: f32 = 0.707_106_781_186_547_524_f64 as f32;
    pub const LOG_P: [f32; 9] = [
        7.037_683_629_2E-2_f64 as f32,
        -1.151_461_031_0E-1_f64 as f32,
        1.167_699_874_0E-1_f64 as f32,
        -1.242_014_084_6E-1_f64 as f32,
        1.424_932_278_7E-1_f64 as f32,
        -1.666_805_766_5E-1_f64 as f32,
        2.000_071_476_5E-1_f64 as f32,
        -2.499_999_399_3E-1_f64 as f32,
        3.333_333_117_4E-1_f64 as f32,
    ];
    pub const LOG_Q1: f32 = -2.121_944_40e-4_f64 as f32;
    pub const LOG_Q2: f32 = 0.693_359_375_f64 as f32;
    pub const MINUS_DP1: f32 = -0.785_156_25_f64 as f32;
    pub const MINUS_DP2: f32 = -2.418_756_484_985_351_562_5e-4_f64 as f32;
    pub const MINUS_DP3: f32 = -3.774_894_977_445_941_08e-8_f64 as f32;
    pub const SINCOF: [f32; 3] = [
        -1.951_529_589_1E-4_f64 as f32,
        8.332_160_873_6E-3_f64 as f32,
        -1.666_665_461_1E-1_f64 as f32,
    ];
    pub const COSCOF: [f32; 3] = [
        2.443_315_711_809_948E-005_f64 as f32,
        -1.388_731_625_493_765E-003_f64 as f32,
        4.166_664_568_298_827E-002_f64 as f32,
    ];
    pub const FOPI: f32 = 1.273_239_544_735_16_f64 as f32;
}

/// `log256_ps` for one lane. The multiply-adds GCC contracted in torch's build are `mul_add`s.
fn cephes_log(input: f32) -> f32 {
    use cephes::{LOG_P, LOG_Q1, LOG_Q2, SQRTHF};
    let invalid = input <= 0.0;
    let x = input.max(f32::from_bits(0x0080_0000));
    let exponent_bits = (x.to_bits() >> 23) as i32;
    let mut x = f32::from_bits((x.to_bits() & !0x7f80_0000) | 0.5_f32.to_bits());
    let mut e = (exponent_bits - 0x7f) as f32 + 1.0;
    let below_sqrthf = x < SQRTHF;
    let tmp = if below_sqrthf { x } else { 0.0 };
    x -= 1.0;
    e -= if below_sqrthf { 1.0 } else { 0.0 };
    x += tmp;
    let z = x * x;
    let mut y = LOG_P[0];
    for coefficient in &LOG_P[1..] {
        y = y.mul_add(x, *coefficient);
    }
    y *= x;
    y = y.mul_add(z, e * LOG_Q1);
    y = (-z).mul_add(0.5, y);
    x += y;
    x = e.mul_add(LOG_Q2, x);
    if invalid { f32::NAN } else { x }
}

/// `sincos256_ps` for one lane: returns (sin, cos).
fn cephes_sincos(input: f32) -> (f32, f32) {
    use cephes::{COSCOF, FOPI, MINUS_DP1, MINUS_DP2, MINUS_DP3, SINCOF};
    let mut sign_sin = input.to_bits() & 0x8000_0000;
    let mut x = input.abs();
    let mut j = (x * FOPI) as i32;
    j = (j + 1) & !1;
    let y = j as f32;
    let swap_sign_sin = ((j & 4) as u32) << 29;
    let use_sin_poly = (j & 2) == 0;
    x = y.mul_add(MINUS_DP1, x);
    x = y.mul_add(MINUS_DP2, x);
    x = y.mul_add(MINUS_DP3, x);
    let sign_cos = ((!(j - 2) & 4) as u32) << 29;
    sign_sin ^= swap_sign_sin;

    let z = x * x;
    let mut cos_poly = COSCOF[0].mul_add(z, COSCOF[1]);
    cos_poly = cos_poly.mul_add(z, COSCOF[2]);
    cos_poly *= z;
    cos_poly = cos_poly.mul_add(z, -(z * 0.5));
    cos_poly += 1.0;

    let mut sin_poly = SINCOF[0].mul_add(z, SINCOF[1]);
    sin_poly = sin_poly.mul_add(z, SINCOF[2]);
    sin_poly *= z;
    sin_poly = sin_poly.mul_add(x, x);

    let (sin_part, cos_part) =
        if use_sin_poly { (sin_poly, cos_poly) } else { (cos_poly, sin_poly) };
    // The kernel selects with masks: `a - (a & m)` is `a - a` = +0 or `a - 0` = a.
    let sin_value = f32::from_bits((sin_part + 0.0).to_bits() ^ sign_sin);
    let cos_value = f32::from_bits((cos_part + 0.0).to_bits() ^ sign_cos);
    (sin_value, cos_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_sequence() {
        // std::mt19937 with the default seed 5489: the 10000th output is 4123659995.
        let mut engine = Mt19937::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = engine.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }
}
