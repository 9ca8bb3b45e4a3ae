//! The demo's model, shared by the page and the browser tests: a 2-16-16-1 MLP that learns to
//! separate two interleaved half-moons, trained with `value_and_grad` and plain SGD.

use wgrad::prelude::*;

/// The MLP's parameters: gradients come back as the same struct.
#[derive(Clone)]
pub struct Mlp {
    /// Layer weights, `[in, out]`.
    pub w: Vec<Tensor>,
    /// Layer biases, `[out]`.
    pub b: Vec<Tensor>,
}
wgrad::tree_struct!(Mlp { w, b });

/// A small deterministic generator (the page and the tests see the same data).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / (1u64 << 24) as f32
    }
}

/// Two half-moons: `n` points (host copy for drawing), inputs `[n, 2]` and labels `[n, 1]`.
pub fn moons(n: usize) -> (Vec<(f32, f32, bool)>, Tensor, Tensor) {
    let mut rng = Lcg(42);
    let mut pts = Vec::with_capacity(n);
    for i in 0..n {
        let upper = i % 2 == 0;
        let t = rng.next() * std::f32::consts::PI;
        let (mut x, mut y) = if upper {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        x += (rng.next() - 0.5) * 0.2;
        y += (rng.next() - 0.5) * 0.2;
        pts.push(((x - 0.5) / 1.2, (y - 0.25) / 1.2, upper));
    }
    let xs: Vec<f32> = pts.iter().flat_map(|p| [p.0, p.1]).collect();
    let ys: Vec<f32> = pts.iter().map(|p| p.2 as u8 as f32).collect();
    (
        pts,
        Tensor::from_vec(xs, [n, 2]),
        Tensor::from_vec(ys, [n, 1]),
    )
}

/// He-initialized parameters for layer sizes `dims`.
pub fn init(dims: &[usize], seed: u64) -> Mlp {
    let w = (0..dims.len() - 1)
        .map(|k| {
            Tensor::randn([dims[k], dims[k + 1]], seed + k as u64) * (2.0 / dims[k] as f32).sqrt()
        })
        .collect();
    let b = (1..dims.len()).map(|k| Tensor::zeros([dims[k]])).collect();
    Mlp { w, b }
}

/// The logits `[n, 1]`.
pub fn logits(p: &Mlp, x: &Tensor) -> Tensor {
    let mut h = x.clone();
    for k in 0..p.w.len() {
        h = h.matmul(&p.w[k]) + &p.b[k];
        if k + 1 < p.w.len() {
            h = h.tanh();
        }
    }
    h
}

/// Binary cross-entropy with logits, averaged over the batch.
pub fn loss(p: &Mlp, x: &Tensor, y: &Tensor) -> Tensor {
    let z = logits(p, x);
    (z.softplus() - y * &z).mean_all()
}

/// One SGD step: the new parameters and the loss before the step, all pending on the device.
pub fn step(p: &Mlp, x: &Tensor, y: &Tensor, lr: f32) -> (Mlp, Tensor) {
    let opts = GradOptions {
        create_graph: false,
        realize: false,
    };
    let (l, g) = value_and_grad_with(|p: &Mlp| loss(p, x, y), opts)(p);
    let next = Mlp {
        w: p.w.iter().zip(&g.w).map(|(w, g)| w - g * lr).collect(),
        b: p.b.iter().zip(&g.b).map(|(b, g)| b - g * lr).collect(),
    };
    let mut all = next.leaves();
    all.push(l.clone());
    wgrad::realize(&all);
    (next, l)
}

/// A `res × res` grid of points over [-1.5, 1.5]², row-major from the top left: `[res², 2]`.
pub fn grid(res: usize) -> Tensor {
    let mut v = Vec::with_capacity(res * res * 2);
    for r in 0..res {
        for c in 0..res {
            let x = -1.5 + 3.0 * (c as f32 + 0.5) / res as f32;
            let y = 1.5 - 3.0 * (r as f32 + 0.5) / res as f32;
            v.extend_from_slice(&[x, y]);
        }
    }
    Tensor::from_vec(v, [res * res, 2])
}

/// The Hessian of the Rosenbrock function at `(x, y)` by `jacfwd(jacrev(f))`: `[2, 2]`.
pub fn rosenbrock_hessian(x: f32, y: f32) -> Tensor {
    let f = |v: &Tensor| {
        let a = v.slice([0], [1]);
        let b = v.slice([1], [2]);
        ((1.0 - &a).square() + (b - a.square()).square() * 100.0).sum_all()
    };
    jacfwd(jacrev(f))(&Tensor::from_vec(vec![x, y], [2]))
}
