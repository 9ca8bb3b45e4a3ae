//! `einsum` against a host reference (nested loops over every letter, in float64), over specs
//! of every kind, and its errors.

use crate::common;

use std::collections::HashMap;
use wgrad::prelude::*;

/// The einsum of `xs` by definition: for every assignment of the letters, the product of the
/// operands' entries, added into the output's entry.
fn reference(spec: &str, xs: &[(Vec<usize>, Vec<f32>)]) -> (Vec<usize>, Vec<f64>) {
    let (lhs, out) = spec.split_once("->").unwrap();
    let terms: Vec<Vec<char>> = lhs.split(',').map(|t| t.chars().collect()).collect();
    let out: Vec<char> = out.chars().collect();
    let mut size = HashMap::new();
    for (t, (shape, _)) in terms.iter().zip(xs) {
        for (c, n) in t.iter().zip(shape) {
            size.insert(*c, *n);
        }
    }
    let mut letters: Vec<char> = size.keys().copied().collect();
    letters.sort();
    let out_shape: Vec<usize> = out.iter().map(|c| size[c]).collect();
    let mut y = vec![0.0f64; out_shape.iter().product()];
    let total: usize = letters.iter().map(|c| size[c]).product();
    let flat = |idx: &HashMap<char, usize>, t: &[char], shape: &[usize]| {
        t.iter().zip(shape).fold(0, |acc, (c, n)| acc * n + idx[c])
    };
    for mut k in 0..total {
        let mut idx = HashMap::new();
        for c in letters.iter().rev() {
            idx.insert(*c, k % size[c]);
            k /= size[c];
        }
        let mut p = 1.0f64;
        for (t, (shape, data)) in terms.iter().zip(xs) {
            p *= data[flat(&idx, t, shape)] as f64;
        }
        y[flat(&idx, &out, &out_shape)] += p;
    }
    (out_shape, y)
}

#[test]
fn einsum_matches_the_definition() {
    common::setup();
    let cases: &[(&str, &[&[usize]])] = &[
        ("ij,jk->ik", &[&[3, 4], &[4, 5]]),
        ("bij,bjk->bik", &[&[2, 3, 4], &[2, 4, 2]]),
        ("qhd,khd->hqk", &[&[3, 2, 4], &[5, 2, 4]]),
        ("hqk,khd->qhd", &[&[2, 3, 5], &[5, 2, 4]]),
        ("ij,ji->", &[&[3, 4], &[4, 3]]),
        ("ii->i", &[&[4, 4]]),
        ("ii->", &[&[4, 4]]),
        ("iij->j", &[&[3, 3, 2]]),
        ("ii,j->ij", &[&[3, 3], &[2]]),
        ("i,j->ij", &[&[3], &[4]]),
        ("i,i->i", &[&[5], &[5]]),
        ("ij,ij->", &[&[3, 4], &[3, 4]]),
        ("ijk->kji", &[&[2, 3, 4]]),
        ("ij->", &[&[3, 4]]),
        ("ij->j", &[&[3, 4]]),
        ("bi,ij,j->b", &[&[2, 3], &[3, 4], &[4]]),
        ("abc,cd,dbe->ae", &[&[2, 3, 4], &[4, 2], &[2, 3, 3]]),
        ("ab,bc,cd,de->ae", &[&[2, 3], &[3, 4], &[4, 5], &[5, 2]]),
        ("i->", &[&[6]]),
        (",i->i", &[&[], &[3]]),
    ];
    for (k, (spec, shapes)) in cases.iter().enumerate() {
        let xs: Vec<(Vec<usize>, Vec<f32>)> = shapes
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let t = Tensor::rand(s, (k * 10 + j) as u64) * 2.0 - 1.0;
                (s.to_vec(), t.to_vec::<f32>())
            })
            .collect();
        let ts: Vec<Tensor> = xs
            .iter()
            .map(|(s, d)| Tensor::from_vec(d.clone(), s.as_slice()))
            .collect();
        let got = einsum(spec, &ts);
        let (shape, want) = reference(spec, &xs);
        assert_eq!(got.shape(), shape.as_slice(), "{spec}");
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        if let Err(e) = common::close(&got.to_vec::<f32>(), &want, 1e-5, 1e-5) {
            panic!("{spec}: {e}");
        }
    }
}

#[test]
fn einsum_errors_quote_the_spec() {
    common::setup();
    let a = Tensor::ones([2, 3]);
    let b = Tensor::ones([3, 4]);
    for (spec, ops, part) in [
        ("ij,jk", vec![&a, &b], "->"),
        ("ij->ij", vec![&a, &b], "1 terms for 2 operands"),
        ("ijk,jk->ik", vec![&a, &b], "shape [2, 3]"),
        ("ij,ik->jk", vec![&a, &b], "sizes 2 and 3"),
        ("ij,jk->ii", vec![&a, &b], "twice"),
        ("ij,jk->iz", vec![&a, &b], "'z'"),
        ("i.,jk->ik", vec![&a, &b], "not a letter"),
    ] {
        let e = try_einsum(spec, &ops).unwrap_err().to_string();
        assert!(e.contains(spec) && e.contains(part), "{spec}: {e}");
        assert!(e.contains("einsum"), "{e}");
    }
}

#[test]
fn einsum_gradients_are_einsums() {
    common::setup();
    // d/dA of sum(A B ⊙ W) = W Bᵀ, by einsum's own rules.
    let a = Tensor::rand([3, 4], 1);
    let b = Tensor::rand([4, 5], 2);
    let w = Tensor::rand([3, 5], 3);
    let g = grad(|a: &Tensor| (einsum("ij,jk->ik", &[a, &b]) * &w).sum_all())(&a);
    let want = w.matmul(&b.mt());
    common::assert_close(&g, &[3, 4], &want.to_vec::<f32>(), 1e-5);
}
