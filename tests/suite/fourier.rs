//! `wgrad::fft` against the DFT summed in float64, at lengths of every kind: powers of two,
//! mixed factors, primes above the direct size (Bluestein), and the inverses' round trips.

use crate::common;

use wgrad::fft::{fft, ifft, irfft, rfft, try_fft, try_irfft, try_rfft};
use wgrad::prelude::*;

/// The DFT of (re, im) by its definition, in f64.
fn host_dft(re: &[f32], im: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let n = re.len();
    let mut out = (vec![0.0; n], vec![0.0; n]);
    for k in 0..n {
        for t in 0..n {
            let a = -2.0 * std::f64::consts::PI * ((k * t) % n) as f64 / n as f64;
            let (c, s) = (a.cos(), a.sin());
            out.0[k] += re[t] as f64 * c - im[t] as f64 * s;
            out.1[k] += re[t] as f64 * s + im[t] as f64 * c;
        }
    }
    out
}

/// The largest error relative to the signal's size (the scale of f32 FFT error).
fn worst(got: &[f32], want: &[f64], scale: f64) -> f64 {
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs() / scale)
        .fold(0.0, f64::max)
}

#[test]
fn fft_matches_the_definition_at_every_kind_of_length() {
    common::setup();
    for n in [1usize, 2, 5, 12, 64, 65, 67, 128, 1000, 4099] {
        let re = Tensor::rand([n], n as u64) * 2.0 - 1.0;
        let im = Tensor::rand([n], n as u64 + 1) * 2.0 - 1.0;
        let (r, i) = fft(&re, &im);
        let (rv, iv) = (re.to_vec::<f32>(), im.to_vec::<f32>());
        let (wr, wi) = host_dft(&rv, &iv);
        let scale = (n as f64).sqrt();
        let e = worst(&r.to_vec::<f32>(), &wr, scale).max(worst(&i.to_vec::<f32>(), &wi, scale));
        assert!(e < 1e-5, "fft of {n}: error {e:e} of sqrt(n)");
        // The inverse gives the signal back.
        let (br, bi) = ifft(&r, &i);
        common::close(&br.to_vec::<f32>(), &rv, 1e-4, 1e-4).unwrap();
        common::close(&bi.to_vec::<f32>(), &iv, 1e-4, 1e-4).unwrap();
        // rfft is the first n/2 + 1 frequencies of the real signal; irfft inverts it.
        let (fr, fi) = rfft(&re);
        let h = n / 2 + 1;
        let (wr, wi) = host_dft(&rv, &vec![0.0; n]);
        assert!(
            worst(&fr.to_vec::<f32>(), &wr[..h], scale) < 1e-5,
            "rfft re of {n}"
        );
        assert!(
            worst(&fi.to_vec::<f32>(), &wi[..h], scale) < 1e-5,
            "rfft im of {n}"
        );
        let back = irfft(&fr, &fi, n).to_vec::<f32>();
        common::close(&back, &rv, 1e-4, 1e-4).unwrap_or_else(|e| panic!("irfft of {n}: {e}"));
    }
}

#[test]
fn fft_batches_and_differentiates() {
    common::setup();
    // Rows are independent: a batch equals each row alone.
    let x = Tensor::rand([3, 20], 5);
    let (r, _) = rfft(&x);
    for k in 0..3 {
        let (rk, _) = rfft(&x.index(k as isize));
        common::close(
            &r.index(k as isize).to_vec::<f32>(),
            &rk.to_vec::<f32>(),
            1e-5,
            1e-5,
        )
        .unwrap();
    }
    // Parseval: Σ|X_k|² = n Σ x², so its gradient is 2n·x.
    let n = 20.0f32;
    let g = grad(|x: &Tensor| {
        let (r, i) = fft(x, &x.zeros_like());
        (r.square() + i.square()).sum_all()
    })(&x);
    common::close(
        &g.to_vec::<f32>(),
        &(&x * (2.0 * n)).to_vec::<f32>(),
        1e-4,
        1e-4,
    )
    .unwrap();
    // Bad input.
    assert!(try_fft(&Tensor::zeros([3]), &Tensor::zeros([4])).is_err());
    assert!(try_rfft(&Tensor::zeros([2, 0])).is_err());
    assert!(try_irfft(&Tensor::zeros([3]), &Tensor::zeros([3]), 0).is_err());
}
