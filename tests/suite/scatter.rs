//! Scatters and segment reductions against host loops: repeated and missing indices, other
//! axes, device indices, set semantics, empty segments, gradients and errors.

use crate::common;

use wgrad::prelude::*;

#[test]
fn scatter_add_along_an_inner_axis_matches_a_loop() {
    common::setup();
    let x = Tensor::rand([2, 5, 3], 1);
    let idx = [4i64, 0, 4, 2, 4, 1];
    let u = Tensor::rand([2, 6, 3], 2);
    let got = x.scatter_add(idx, &u, 1).to_vec::<f32>();
    let (xv, uv) = (x.to_vec::<f32>(), u.to_vec::<f32>());
    let mut want = xv.clone();
    for a in 0..2 {
        for (j, &i) in idx.iter().enumerate() {
            for c in 0..3 {
                want[a * 15 + i as usize * 3 + c] += uv[a * 18 + j * 3 + c];
            }
        }
    }
    common::close(&got, &want, 1e-6, 1e-6).unwrap();
    // Device indices give the same.
    let dev = Tensor::from_slice(&[4i32, 0, 4, 2, 4, 1], [6]);
    common::close(
        &x.scatter_add(&dev, &u, 1).to_vec::<f32>(),
        &want,
        1e-6,
        1e-6,
    )
    .unwrap();
    // The gradient w.r.t. the updates is a gather, w.r.t. x the identity.
    let w = Tensor::rand([2, 5, 3], 3);
    let gu = grad(|u: &Tensor| (x.scatter_add(idx, u, 1) * &w).sum_all())(&u);
    let gather = w.take(idx, 1);
    common::close(&gu.to_vec::<f32>(), &gather.to_vec::<f32>(), 1e-6, 1e-6).unwrap();
}

#[test]
fn scatter_sets_unique_positions() {
    common::setup();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]);
    let u = Tensor::from_vec(vec![9.0f32, 8.0], [1, 2]);
    assert_eq!(
        x.scatter([1], &u, 0).to_vec::<f32>(),
        vec![1.0, 2.0, 9.0, 8.0, 5.0, 6.0]
    );
    // Derivative: zero where overwritten, one elsewhere.
    let g = grad(|x: &Tensor| x.scatter([1], &u, 0).sum_all())(&x);
    assert_eq!(g.to_vec::<f32>(), vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn segments_sum_and_max_with_empty_segments() {
    common::setup();
    let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0, 4.0, 5.0, -6.0, 7.0, 0.5], [4, 2]);
    let ids = [2i64, 0, 2, 2];
    let s = segment_sum(&x, ids, 4).to_vec::<f32>();
    assert_eq!(s, vec![3.0, 4.0, 0.0, 0.0, 13.0, -7.5, 0.0, 0.0]);
    let m = segment_max(&x, ids, 4).to_vec::<f32>();
    let ninf = f32::NEG_INFINITY;
    assert_eq!(m, vec![3.0, 4.0, ninf, ninf, 7.0, 0.5, ninf, ninf]);
    // segment_max's gradient picks the maximal row of each segment.
    let g = grad(|x: &Tensor| segment_max(x, ids, 3).sum_all())(&x).to_vec::<f32>();
    assert_eq!(g, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn scatter_errors_name_the_index_and_the_axis() {
    common::setup();
    let x = Tensor::zeros([3, 4]);
    let e = x
        .try_scatter_add([5], &Tensor::zeros([3, 1]), 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scatter_add") && e.contains("index 5") && e.contains("size 4"),
        "{e}"
    );
    let e = x
        .try_scatter_add([0, 1], &Tensor::zeros([3, 3]), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[3, 2]") && e.contains("[3, 3]"), "{e}");
    let e = try_segment_sum(&x, [0, 1, 7], 3).unwrap_err().to_string();
    assert!(e.contains("segment_sum") && e.contains("index 7"), "{e}");
    let e = try_segment_max(&x, [0, 1], 3).unwrap_err().to_string();
    assert!(e.contains("3 rows need 3 ids"), "{e}");
}

#[test]
fn scatter_add_by_rows_of_updates_matches_a_loop() {
    common::setup();
    // Many updates by rows (positions in groups of 1,024): other axes on both sides,
    // repeated indices, device indices that wrap (negative) and clamp (past the end), long axes
    // split into chunks, and integers.
    for (outer, m, inner, n) in [
        (2usize, 300usize, 3usize, 16usize),
        (1, 40_000, 1, 100),
        (3, 64, 2, 1024),
    ] {
        let u = Tensor::rand([outer, m, inner], (m + n) as u64) - 0.5;
        let raw: Vec<i32> = (0..m).map(|k| ((k * 7919) % (n + 3)) as i32 - 2).collect();
        let idx = Tensor::from_slice(&raw, [m]);
        let x = Tensor::zeros([outer, n, inner]);
        let got = x.scatter_add(&idx, &u, 1).to_vec::<f32>();
        let uv = u.to_vec::<f32>();
        let mut want = vec![0.0f64; outer * n * inner];
        for o in 0..outer {
            for (k, &r) in raw.iter().enumerate() {
                let j = if r < 0 { r + n as i32 } else { r }.clamp(0, n as i32 - 1) as usize;
                for q in 0..inner {
                    want[(o * n + j) * inner + q] += uv[(o * m + k) * inner + q] as f64;
                }
            }
        }
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        common::close(&got, &want, 1e-4, 1e-4)
            .unwrap_or_else(|e| panic!("{outer}×{m}×{inner} into {n}: {e}"));
    }
    let counts = Tensor::zeros([8]).cast(DType::I32);
    let ones = Tensor::ones([100]).cast(DType::I32);
    let ids: Vec<i32> = (0..100).map(|k| k % 8).collect();
    let c = counts
        .scatter_add(Tensor::from_slice(&ids, [100]), &ones, 0)
        .to_vec::<i32>();
    assert_eq!(c, vec![13, 13, 13, 13, 12, 12, 12, 12]);
}
