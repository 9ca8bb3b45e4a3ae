//! conv2d and pooling against direct host loops (the definition in FORMAT.md), over many
//! configurations of stride, padding, dilation and groups; their derivatives by finite
//! differences; vmap over the input and over the weights against a loop.

use crate::common;

use common::close;
use wgrad::prelude::*;

fn data(shape: &[usize], seed: u64) -> (Tensor, Vec<f32>) {
    let t = Tensor::rand(shape, seed) * 2.0 - 1.0;
    let v = t.to_vec::<f32>();
    (Tensor::from_vec(v.clone(), shape), v)
}

/// y[n, o, i, j] = Σ xp[n, g·C/G + c, i·sh + a·dh, j·sw + b·dw] · w[o, c, a, b].
fn host_conv(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    ws: [usize; 4],
    o: Conv2dOptions,
) -> (Vec<f32>, [usize; 4]) {
    let [n, c, h, wd] = xs;
    let [oc, cg, kh, kw] = ws;
    let g = o.groups;
    let ho = (h + 2 * o.padding[0] - o.dilation[0] * (kh - 1) - 1) / o.stride[0] + 1;
    let wo = (wd + 2 * o.padding[1] - o.dilation[1] * (kw - 1) - 1) / o.stride[1] + 1;
    let mut y = vec![0f32; n * oc * ho * wo];
    for b in 0..n {
        for q in 0..oc {
            let grp = q / (oc / g);
            for i in 0..ho {
                for j in 0..wo {
                    let mut acc = 0f64;
                    for cc in 0..cg {
                        for a in 0..kh {
                            for e in 0..kw {
                                let r = (i * o.stride[0] + a * o.dilation[0]) as isize
                                    - o.padding[0] as isize;
                                let s = (j * o.stride[1] + e * o.dilation[1]) as isize
                                    - o.padding[1] as isize;
                                if r < 0 || s < 0 || r >= h as isize || s >= wd as isize {
                                    continue;
                                }
                                let ch = grp * cg + cc;
                                acc += x[((b * c + ch) * h + r as usize) * wd + s as usize] as f64
                                    * w[((q * cg + cc) * kh + a) * kw + e] as f64;
                            }
                        }
                    }
                    y[((b * oc + q) * ho + i) * wo + j] = acc as f32;
                }
            }
        }
    }
    let _ = c;
    (y, [n, oc, ho, wo])
}

fn configs() -> Vec<([usize; 4], [usize; 4], Conv2dOptions)> {
    let d = Conv2dOptions::default();
    vec![
        ([2, 3, 7, 6], [4, 3, 3, 3], d),
        ([1, 2, 8, 8], [3, 2, 3, 2], d.stride(2).padding(1)),
        ([2, 4, 9, 7], [6, 2, 2, 3], d.groups(2).dilation([2, 1])),
        ([1, 3, 6, 6], [3, 1, 3, 3], d.groups(3).padding(1)), // depthwise
        (
            [1, 1, 10, 5],
            [2, 1, 3, 1],
            d.stride([3, 1]).padding([2, 0]).dilation(2),
        ),
        ([3, 2, 4, 4], [5, 2, 1, 1], d), // 1×1
        ([1, 2, 5, 5], [2, 2, 5, 5], d), // the window covers the image
    ]
}

#[test]
fn conv2d_matches_the_definition() {
    common::setup();
    for (k, (xs, ws, o)) in configs().into_iter().enumerate() {
        let (x, xv) = data(&xs, 10 + k as u64);
        let (w, wv) = data(&ws, 20 + k as u64);
        let (want, shape) = host_conv(&xv, xs, &wv, ws, o);
        let y = x.conv2d(&w, o);
        assert_eq!(y.shape(), &shape, "config {k}: {o:?}");
        close(&y.to_vec::<f32>(), &want, 1e-5, 1e-5)
            .unwrap_or_else(|e| panic!("config {k} {o:?}: {e}"));
    }
}

#[test]
fn conv2d_derivatives_match_finite_differences() {
    common::setup();
    for (k, (xs, ws, o)) in configs().into_iter().enumerate().take(5) {
        let (x, _) = data(&xs, 30 + k as u64);
        let (w, _) = data(&ws, 40 + k as u64);
        // Small weights keep tanh off its flat tails, where float32 second differences are noise.
        let w = (w * 0.25).realize().clone();
        let f = move |a: &[Tensor]| a[0].conv2d(&a[1], o).tanh().sum_all();
        check_grads(f, &[x, w], 2, &[Mode::Fwd, Mode::Rev], 2e-2)
            .unwrap_or_else(|e| panic!("config {k} {o:?}: {e}"));
    }
}

#[test]
fn vmap_over_inputs_or_weights_matches_a_loop() {
    common::setup();
    let o = Conv2dOptions::default().padding(1).groups(2);
    let (xb, _) = data(&[3, 2, 4, 5, 5], 50); // 3 batches of [2, 4, 5, 5]
    let (wb, _) = data(&[3, 4, 2, 3, 3], 51); // 3 per-example kernels [4, 2, 3, 3]
    let (x0, _) = data(&[2, 4, 5, 5], 52);
    let (w0, _) = data(&[4, 2, 3, 3], 53);
    let over_x = vmap(|x: &Tensor| x.conv2d(&w0, o), 0)(&xb);
    let over_w = vmap(|w: &Tensor| x0.conv2d(w, o), 0)(&wb);
    let over_both = vmap(
        |a: &(Tensor, Tensor)| a.0.conv2d(&a.1, o),
        [Some(0), Some(0)],
    )(&(xb.clone(), wb.clone()));
    for b in 0..3 {
        let xi = xb.index(b as isize);
        let wi = wb.index(b as isize);
        let checks = [
            (&over_x, xi.conv2d(&w0, o)),
            (&over_w, x0.conv2d(&wi, o)),
            (&over_both, xi.conv2d(&wi, o)),
        ];
        for (got, want) in checks {
            close(
                &got.index(b as isize).to_vec::<f32>(),
                &want.to_vec::<f32>(),
                1e-5,
                1e-5,
            )
            .unwrap_or_else(|e| panic!("example {b}: {e}"));
        }
    }
}

#[test]
fn pooling_matches_host_windows() {
    common::setup();
    let (x, xv) = data(&[2, 3, 7, 6], 60);
    for (win, stride) in [
        ([2, 2], None),
        ([3, 2], Some([2, 1])),
        ([3, 3], Some([1, 1])),
        ([1, 6], None),
    ] {
        let s = stride.unwrap_or(win);
        let ho = (7 - win[0]) / s[0] + 1;
        let wo = (6 - win[1]) / s[1] + 1;
        let mut mx = vec![];
        let mut av = vec![];
        for nc in 0..6 {
            for i in 0..ho {
                for j in 0..wo {
                    let mut m = f32::NEG_INFINITY;
                    let mut sum = 0f64;
                    for a in 0..win[0] {
                        for b in 0..win[1] {
                            let v = xv[nc * 42 + (i * s[0] + a) * 6 + j * s[1] + b];
                            m = m.max(v);
                            sum += v as f64;
                        }
                    }
                    mx.push(m);
                    av.push((sum / (win[0] * win[1]) as f64) as f32);
                }
            }
        }
        let gm = x.max_pool2d(win, stride);
        assert_eq!(gm.shape(), &[2, 3, ho, wo]);
        close(&gm.to_vec::<f32>(), &mx, 0.0, 0.0).unwrap();
        close(&x.avg_pool2d(win, stride).to_vec::<f32>(), &av, 1e-6, 1e-6).unwrap();
    }
    // The gradient of max pooling goes to each window's maximum, summed where windows overlap.
    let x = Tensor::from_vec(
        vec![1.0f32, 5.0, 2.0, 0.0, 3.0, 4.0, 8.0, 6.0, 7.0],
        [1, 1, 3, 3],
    );
    let g = grad(|x: &Tensor| x.max_pool2d(2, Some([1, 1])).sum_all())(&x);
    // Windows (0,0) and (0,1) both have their maximum at 5; (1,0) at 8; (1,1) at 7.
    assert_eq!(
        g.to_vec::<f32>(),
        vec![0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    );
}

#[test]
fn conv_errors_name_the_shapes() {
    common::setup();
    let x = Tensor::zeros([1, 3, 4, 4]);
    let e = x
        .try_conv2d(&Tensor::zeros([2, 3, 5, 5]), Conv2dOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("conv2d") && e.contains("[1, 3, 4, 4]") && e.contains("[2, 3, 5, 5]"),
        "{e}"
    );
    assert!(
        x.try_conv2d(
            &Tensor::zeros([2, 3, 3, 3]),
            Conv2dOptions::default().stride(0)
        )
        .is_err()
    );
    assert!(
        x.try_conv2d(
            &Tensor::zeros([3, 1, 3, 3]),
            Conv2dOptions::default().groups(2)
        )
        .is_err()
    );
    assert!(x.try_max_pool2d(5, None).is_err());
}

#[test]
fn conv1d_matches_the_definition() {
    common::setup();
    for (n, c, w, o, k, s, p, d, g) in [
        (2, 3, 11, 4, 3, 1, 0, 1, 1),
        (1, 4, 9, 6, 2, 2, 1, 2, 2),
        (3, 2, 7, 2, 3, 3, 2, 1, 2),
    ] {
        let (x, xv) = data(&[n, c, w], 1);
        let (wt, wv) = data(&[o, c / g, k], 2);
        let opts = Conv1dOptions::default()
            .stride(s)
            .padding(p)
            .dilation(d)
            .groups(g);
        let y = x.conv1d(&wt, opts);
        let wo = (w + 2 * p - d * (k - 1) - 1) / s + 1;
        assert_eq!(y.shape(), &[n, o, wo]);
        let mut want = vec![0.0f32; n * o * wo];
        let (cg, og) = (c / g, o / g);
        for b in 0..n {
            for oc in 0..o {
                for i in 0..wo {
                    let mut acc = 0.0;
                    for ci in 0..cg {
                        for a in 0..k {
                            let pos = (i * s + a * d) as isize - p as isize;
                            if pos >= 0 && (pos as usize) < w {
                                let ch = (oc / og) * cg + ci;
                                acc += xv[(b * c + ch) * w + pos as usize]
                                    * wv[(oc * cg + ci) * k + a];
                            }
                        }
                    }
                    want[(b * o + oc) * wo + i] = acc;
                }
            }
        }
        common::close(&y.to_vec::<f32>(), &want, 1e-5, 1e-5).unwrap();
    }
}

#[test]
fn conv_transpose2d_is_the_transpose_of_conv2d() {
    common::setup();
    // ⟨conv2d(z, w), x⟩ = ⟨z, conv_transpose2d(x, w)⟩ with w read as OIHW from O to C.
    for (s, p, k) in [
        ([1, 1], [0, 0], [3, 3]),
        ([2, 3], [1, 0], [3, 2]),
        ([2, 2], [2, 1], [4, 3]),
    ] {
        let (x, _) = data(&[2, 3, 4, 5], 3);
        let (w, _) = data(&[3, 2, k[0], k[1]], 4);
        let y = x.conv_transpose2d(&w, s, p);
        let ho = 3 * s[0] + k[0] - 2 * p[0];
        let wo = 4 * s[1] + k[1] - 2 * p[1];
        assert_eq!(y.shape(), &[2, 2, ho, wo]);
        let (z, _) = data(&[2, 2, ho, wo], 5);
        let back = z.conv2d(&w, Conv2dOptions::default().stride(s).padding(p));
        assert_eq!(back.shape(), x.shape());
        let lhs = (&back * &x).sum_all().item();
        let rhs = (&z * &y).sum_all().item();
        assert!(
            (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
            "{s:?} {p:?}: {lhs} vs {rhs}"
        );
    }
    let e = Tensor::zeros([1, 2, 3, 3])
        .try_conv_transpose2d(&Tensor::zeros([2, 1, 2, 2]), 1, 2)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("conv_transpose2d") && e.contains("padding"),
        "{e}"
    );
}
