//! Special functions in float64 for the reference interpreter (`crate::reference`): erf,
//! erfc, erfinv, lgamma, digamma and polygamma, accurate to about 1e-13 relative — far below
//! the float32 results they check — with the same edge values as JAX; and the Threefry block
//! function that random numbers (and their reference) are made of.

use std::f64::consts::PI;

/// The error function: its Taylor series below 2.5, else `1 - erfc(x)`.
pub(crate) fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.abs() < 2.5 {
        let (mut term, mut sum) = (x, x);
        let x2 = x * x;
        for n in 1..200 {
            term *= -x2 / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        return sum * 2.0 / PI.sqrt();
    }
    x.signum() * (1.0 - erfc(x.abs()))
}

/// The complementary error function: a continued fraction (modified Lentz) from 2.5 up.
pub(crate) fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < 2.5 {
        return 1.0 - erf(x);
    }
    if x > 27.5 {
        return 0.0;
    }
    // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))).
    let tiny = 1e-300;
    let mut f = x;
    let (mut c, mut d) = (x, 0.0);
    for n in 1..500 {
        let a = n as f64 / 2.0;
        d = x + a * d;
        d = if d == 0.0 { tiny } else { d };
        c = x + a / c;
        c = if c == 0.0 { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / PI.sqrt() / f
}

/// The inverse error function: ±inf at ±1, NaN outside [-1, 1]; Newton steps on `erf` from a
/// logarithmic first guess.
pub(crate) fn erfinv(y: f64) -> f64 {
    if y.is_nan() || y.abs() > 1.0 {
        return f64::NAN;
    }
    if y.abs() == 1.0 {
        return y * f64::INFINITY;
    }
    let w = -((1.0 - y) * (1.0 + y)).ln();
    let mut x = y.signum() * (w - w.ln().max(0.0) / 2.0).max(0.0).sqrt() * 0.9 + y * 0.5;
    for _ in 0..100 {
        // Residual from the closer of erf and erfc, so the tail keeps its digits.
        let r = if x.abs() < 2.0 {
            erf(x) - y
        } else {
            x.signum() * ((1.0 - y.abs()) - erfc(x.abs()))
        };
        let step = r / (2.0 / PI.sqrt() * (-x * x).exp());
        x -= step;
        if step.abs() <= 1e-15 * x.abs() {
            break;
        }
    }
    x
}

/// ln |Γ(x)|: Lanczos (g = 7, nine terms) above ½, the reflection formula below; +inf at the
/// poles 0, -1, -2, ...
pub(crate) fn lgamma(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    if x <= 0.0 && x == x.round() {
        return f64::INFINITY;
    }
    if x < 0.5 {
        return (PI / (PI * x).sin().abs()).ln() - lgamma(1.0 - x);
    }
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let z = x - 1.0;
    let mut a = C[0];
    for (k, c) in C.iter().enumerate().skip(1) {
        a += c / (z + k as f64);
    }
    let t = z + 7.5;
    0.5 * (2.0 * PI).ln() + (z + 0.5) * t.ln() - t + a.ln()
}

/// ψ(x) = d/dx ln Γ(x): NaN at the poles 0, -1, -2, ... (as JAX); reflection below 0, the
/// recurrence up to 10, then the asymptotic series.
pub(crate) fn digamma(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return x;
    }
    if x <= 0.0 && x == x.round() {
        return f64::NAN;
    }
    if x < 0.0 {
        return digamma(1.0 - x) - PI / (PI * x).tan();
    }
    let (mut acc, mut y) = (0.0, x);
    while y < 10.0 {
        acc -= 1.0 / y;
        y += 1.0;
    }
    let r2 = 1.0 / (y * y);
    let s = r2
        * (1.0 / 12.0 - r2 * (1.0 / 120.0 - r2 * (1.0 / 252.0 - r2 * (1.0 / 240.0 - r2 / 132.0))));
    acc + y.ln() - 0.5 / y - s
}

/// ψ^(n)(x) for n ≥ 1 and x > 0 (NaN at and below 0, as wgrad's kernel and JAX for x ≤ 0 at
/// the poles): the terms below 30 summed, then Euler–Maclaurin to B10.
pub(crate) fn polygamma(n: u32, x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    let s = (n + 1) as f64;
    let (mut acc, mut y) = (0.0, x);
    while y < 30.0 {
        acc += y.powf(-s);
        y += 1.0;
    }
    // Σ_{k≥0} (y+k)^-s = y^(1-s)/(s-1) + y^-s/2 + Σ_j B2j/(2j)! s(s+1)…(s+2j-2) y^-(s+2j-1).
    let b = [1.0 / 6.0, -1.0 / 30.0, 1.0 / 42.0, -1.0 / 30.0, 5.0 / 66.0];
    let mut tail = y.powf(1.0 - s) / (s - 1.0) + 0.5 * y.powf(-s);
    let mut rising = s; // s (s+1) ... (s+2j-2)
    let mut fact2j = 2.0; // (2j)!
    for (j, bj) in b.iter().enumerate() {
        let j = j as f64 + 1.0;
        tail += bj / fact2j * rising * y.powf(-(s + 2.0 * j - 1.0));
        rising *= (s + 2.0 * j - 1.0) * (s + 2.0 * j);
        fact2j *= (2.0 * j + 1.0) * (2.0 * j + 2.0);
    }
    let fact: f64 = (1..=n).map(|k| k as f64).product();
    let sign = if n % 2 == 1 { 1.0 } else { -1.0 };
    sign * fact * (acc + tail)
}

/// Threefry-2x32 with 20 rounds (Random123): the block function of every key and sample.
pub(crate) fn threefry2x32(k: [u32; 2], c: [u32; 2]) -> [u32; 2] {
    const ROT: [[u32; 4]; 2] = [[13, 15, 26, 6], [17, 29, 16, 24]];
    let ks = [k[0], k[1], 0x1BD1_1BDA ^ k[0] ^ k[1]];
    let (mut x0, mut x1) = (c[0].wrapping_add(ks[0]), c[1].wrapping_add(ks[1]));
    for s in 0..5 {
        for r in ROT[s % 2] {
            x0 = x0.wrapping_add(x1);
            x1 = x1.rotate_left(r) ^ x0;
        }
        x0 = x0.wrapping_add(ks[(s + 1) % 3]);
        x1 = x1.wrapping_add(ks[(s + 2) % 3]).wrapping_add(s as u32 + 1);
    }
    [x0, x1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_functions_match_known_values() {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-11 * b.abs().max(1e-300);
        assert!(close(erf(0.5), 0.520_499_877_813_046_5));
        assert!(close(erf(3.0), 0.999_977_909_503_001_4));
        assert!(close(erfc(3.0), 2.209_049_699_858_544e-5));
        assert!(close(erfc(6.0), 2.151_973_671_249_891_3e-17));
        assert!(close(erfc(-1.0), 1.842_700_792_949_715));
        assert!(close(erf(erfinv(0.3)), 0.3));
        assert!(close(erfinv(0.999_999), 3.458_910_737_279_500_5));
        assert!(close(lgamma(0.5), 0.572_364_942_924_700_1));
        assert!(close(lgamma(10.0), 12.801_827_480_081_469));
        assert!(close(lgamma(-2.5), -0.056_243_716_497_674_05));
        assert!(close(digamma(1.0), -0.577_215_664_901_532_9));
        assert!(close(digamma(-0.5), 0.036_489_973_978_576_52));
        assert!(close(polygamma(1, 1.0), PI * PI / 6.0));
        assert!(close(polygamma(2, 0.5), -16.828_796_644_234_32));
        assert!(digamma(-2.0).is_nan() && lgamma(-3.0) == f64::INFINITY);
    }
}
