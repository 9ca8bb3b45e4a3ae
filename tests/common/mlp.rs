//! The small model and data of the data-parallel tests (`tests/parallel.rs`, `tests/mpi.rs`).

use wgrad::prelude::*;
use wgrad::random;

/// A 6-16-3 tanh MLP: `(w1, b1, w2, b2)`.
pub type Mlp = (Tensor, Tensor, Tensor, Tensor);

pub fn mlp(seed: u64) -> Mlp {
    let k = random::key(seed);
    (
        random::normal(k.fold_in(0), [6, 16]) * 0.4,
        random::normal(k.fold_in(1), [16]) * 0.1,
        random::normal(k.fold_in(2), [16, 3]) * 0.3,
        Tensor::zeros([3]),
    )
}

/// Mean squared error of the MLP over the rows of `batch = [x, y]`.
pub fn loss(p: &Mlp, batch: &[Tensor]) -> Tensor {
    let h = (batch[0].matmul(&p.0) + &p.1).tanh();
    (h.matmul(&p.2) + &p.3 - &batch[1]).square().mean_all()
}

/// `rows` inputs and noisy targets, drawn from `seed` (the same on every device and process).
pub fn data(rows: usize, seed: u64) -> Vec<Tensor> {
    let k = random::key(seed);
    let x = random::normal(k.fold_in(0), [rows, 6]);
    let y = (x.slice_axis(1, 0..3) * 2.0).sin() + random::normal(k.fold_in(1), [rows, 3]) * 0.1;
    wgrad::realize(&[x.clone(), y.clone()]);
    vec![x, y]
}

/// The leaves' values on the host.
pub fn host(tree: &Mlp) -> Vec<Vec<f32>> {
    tree.leaves().iter().map(|t| t.to_vec::<f32>()).collect()
}
