//! sort, argsort and top_k against the host's stable sort (NaN last), over row lengths from 1
//! past 2^16 (no driver loop cap), with ties, infinities and NaN, along any axis.

use crate::common;

use wgrad::prelude::*;

/// The host's stable argsort with NaN last.
fn host_argsort(v: &[f32]) -> Vec<i32> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| match (v[a].is_nan(), v[b].is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => v[a].partial_cmp(&v[b]).unwrap(),
    });
    idx.into_iter().map(|i| i as i32).collect()
}

#[test]
fn argsort_is_the_stable_sort_at_every_length() {
    common::setup();
    for n in [1usize, 2, 3, 5, 64, 100, 1000, 70_001] {
        // Values on a coarse grid, so ties are common; a few infinities and NaNs.
        let mut v: Vec<f32> = Tensor::rand([n], n as u64)
            .to_vec::<f32>()
            .iter()
            .map(|x| (x * 20.0).floor() - 10.0)
            .collect();
        if n > 10 {
            v[3] = f32::NAN;
            v[7] = f32::INFINITY;
            v[8] = f32::NEG_INFINITY;
            v[n - 1] = f32::NAN;
        }
        let x = Tensor::from_vec(v.clone(), [n]);
        let got = x.argsort(0).to_vec::<i32>();
        assert!(got == host_argsort(&v), "argsort of {n} differs");
        let sorted = x.sort(0).to_vec::<f32>();
        for (k, &i) in host_argsort(&v).iter().enumerate() {
            let w = v[i as usize];
            assert!(
                sorted[k] == w || (w.is_nan() && sorted[k].is_nan()),
                "sort of {n} at {k}"
            );
        }
    }
}

#[test]
fn sort_along_an_inner_axis_and_its_gradient() {
    common::setup();
    let x = Tensor::rand([3, 5, 2], 7);
    let s = x.sort(1);
    let xv = x.to_vec::<f32>();
    let sv = s.to_vec::<f32>();
    for a in 0..3 {
        for c in 0..2 {
            let col: Vec<f32> = (0..5).map(|k| xv[a * 10 + k * 2 + c]).collect();
            let order = host_argsort(&col);
            for k in 0..5 {
                assert_eq!(sv[a * 10 + k * 2 + c], col[order[k] as usize]);
            }
        }
    }
    // d/dx of Σ w ⊙ sort(x) is w sent back through the permutation.
    let w = Tensor::rand([3, 5, 2], 8);
    let g = grad(|x: &Tensor| (x.sort(1) * &w).sum_all())(&x).to_vec::<f32>();
    let wv = w.to_vec::<f32>();
    let idx = x.argsort(1).to_vec::<i32>();
    for a in 0..3 {
        for c in 0..2 {
            for k in 0..5 {
                let src = idx[a * 10 + k * 2 + c] as usize;
                assert_eq!(g[a * 10 + src * 2 + c], wv[a * 10 + k * 2 + c]);
            }
        }
    }
}

#[test]
fn top_k_takes_the_largest_in_index_order_at_ties() {
    common::setup();
    let x = Tensor::from_vec(vec![1.0f32, 4.0, 4.0, -2.0, 9.0, 4.0, 0.0, 9.0], [2, 4]);
    let (v, i) = x.top_k(3);
    assert_eq!(v.to_vec::<f32>(), vec![4.0, 4.0, 1.0, 9.0, 9.0, 4.0]);
    assert_eq!(i.to_vec::<i32>(), vec![1, 2, 0, 0, 3, 1]);
    let e = x.try_top_k(5).unwrap_err().to_string();
    assert!(e.contains("top_k") && e.contains("[2, 4]"), "{e}");
    assert!(x.try_top_k(0).is_err());
    assert!(Tensor::scalar(1.0).try_sort(0).is_err());
    assert!(Tensor::from_vec(vec![1i32], [1]).try_argsort(0).is_err());
}

#[test]
fn the_workgroup_network_sorts_as_the_global_one() {
    common::setup();
    // The short-range steps in workgroup memory (the default on GPUs), forced on here.
    let p = wgrad::Policy {
        sort_in_workgroups: Some(true),
        ..wgrad::policy()
    };
    // Several rows, so that the blocks' directions must come from the position in the row.
    for n in [3usize, 1000, 1024, 5000, 70_001] {
        let rows = 3;
        let mut v: Vec<f32> = Tensor::rand([rows * n], 40 + n as u64)
            .to_vec::<f32>()
            .iter()
            .map(|x| (x * 50.0).floor())
            .collect();
        v[n / 2] = f32::NAN;
        let x = Tensor::from_vec(v.clone(), [rows, n]);
        let got = wgrad::with_policy(p.clone(), || x.argsort(1).to_vec::<i32>());
        for r in 0..rows {
            let want = host_argsort(&v[r * n..(r + 1) * n]);
            assert!(
                got[r * n..(r + 1) * n] == want[..],
                "workgroup argsort of {n}, row {r}"
            );
        }
    }
}
