//! Tree utilities: paths, static fields, map/zip/fold, global norm.

use crate::common;

use wgrad::prelude::*;
use wgrad::tree::{global_norm, named_leaves, size, try_tree_map2, zeros_like};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Tanh,
    Relu,
}

struct Dense {
    w: Tensor,
    b: Option<Tensor>,
    act: Act,
    label: String,
}
wgrad::tree_struct!(Dense { w, b; static act, label });

struct Net {
    layers: Vec<Dense>,
    scale: (Tensor, [Tensor; 2]),
}
wgrad::tree_struct!(Net { layers, scale });

fn net() -> Net {
    Net {
        layers: vec![
            Dense {
                w: Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.25], [2, 2]),
                b: Some(Tensor::from_vec(vec![0.1f32, -0.2], [2])),
                act: Act::Tanh,
                label: "first".into(),
            },
            Dense {
                w: Tensor::from_vec(vec![1.5f32, -0.5], [2, 1]),
                b: None,
                act: Act::Relu,
                label: "second".into(),
            },
        ],
        scale: (
            Tensor::scalar(2.0),
            [Tensor::scalar(1.0), Tensor::scalar(3.0)],
        ),
    }
}

fn apply(n: &Net, x: &Tensor) -> Tensor {
    let mut h = x.clone();
    for l in &n.layers {
        h = h.matmul(&l.w);
        if let Some(b) = &l.b {
            h = h + b;
        }
        h = match l.act {
            Act::Tanh => h.tanh(),
            Act::Relu => h.relu(),
        };
    }
    h * &n.scale.0
}

#[test]
fn leaves_are_named_by_path() {
    let names: Vec<String> = named_leaves(&net()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "layers.0.w",
            "layers.0.b",
            "layers.1.w",
            "scale.0",
            "scale.1.0",
            "scale.1.1"
        ]
    );
    assert_eq!(size(&net()), 4 + 2 + 2 + 3);
}

#[test]
fn static_fields_ride_along_through_grad_and_vmap() {
    let n = net();
    let x = Tensor::from_vec(vec![1.0f32, 2.0], [1, 2]);
    let g = grad(|n: &Net| apply(n, &x).sum_all())(&n);
    assert_eq!(g.layers[0].act, Act::Tanh);
    assert_eq!(g.layers[1].label, "second");
    assert!(g.layers[1].b.is_none());
    // d/d scale.0 of scale * f(x) is f(x).
    let fx = apply(&n, &x).item() / 2.0;
    assert!((g.scale.0.item() - fx).abs() < 1e-6);
    // The relu layer's weight gradient is h1 (tanh output) times scale while active.
    let h1: Vec<f32> = (x.matmul(&n.layers[0].w) + n.layers[0].b.as_ref().unwrap())
        .tanh()
        .to_vec();
    let active = fx > 0.0;
    let gw: Vec<f32> = g.layers[1].w.to_vec();
    for k in 0..2 {
        let want = if active { h1[k] * 2.0 } else { 0.0 };
        assert!((gw[k] - want).abs() < 1e-5, "{gw:?} vs {h1:?}");
    }
    // vmap over a batch of inputs with the struct captured by reference.
    let xs = Tensor::from_vec(vec![1.0f32, 2.0, -1.0, 0.5, 0.0, 0.0], [3, 1, 2]);
    let ys = vmap(|x: &Tensor| apply(&n, x), 0)(&xs);
    assert_eq!(ys.shape(), &[3, 1, 1]);
    let y0 = ys.to_vec::<f32>()[0];
    assert!((y0 - apply(&n, &x).item()).abs() < 1e-6);
}

#[test]
fn map2_zips_and_checks_leaf_counts() {
    let n = net();
    let g = wgrad::tree::tree_map(&n, |t| t.ones_like());
    let stepped = tree_map2(&n, &g, |p, g| p - g * 0.5);
    assert_eq!(
        stepped.layers[0].w.to_vec::<f32>(),
        vec![0.0, -1.5, 1.5, -0.25]
    );
    assert_eq!(stepped.layers[0].label, "first");
    let short = Net {
        layers: vec![],
        scale: n.scale.clone(),
    };
    let e = match try_tree_map2(&n, &short, |a, b| a + b) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("mismatched trees zipped"),
    };
    assert!(
        e.contains("tree_map2") && e.contains("6 leaves and 3"),
        "{e}"
    );
}

#[test]
fn reduce_and_global_norm() {
    let n = net();
    let sum_sq: f32 = tree_leaves(&n)
        .iter()
        .flat_map(|t| t.to_vec::<f32>())
        .map(|v| v * v)
        .sum();
    assert!((global_norm(&n).item() - sum_sq.sqrt()).abs() < 1e-5);
    let max_abs = tree_reduce(&n, 0.0f32, |m, t| {
        t.to_vec::<f32>().iter().fold(m, |m, v| m.max(v.abs()))
    });
    assert_eq!(max_abs, 3.0);
    assert_eq!(global_norm(&()).item(), 0.0);
    let z = zeros_like(&n);
    assert_eq!(global_norm(&z).item(), 0.0);
    // The norm is differentiable: d|p|/dp = p / |p|.
    let p = (
        Tensor::from_vec(vec![3.0f32], [1]),
        Tensor::from_vec(vec![4.0f32], [1]),
    );
    let g = grad(|p: &(Tensor, Tensor)| global_norm(p))(&p);
    assert!((g.0.item() - 0.6).abs() < 1e-6 && (g.1.item() - 0.8).abs() < 1e-6);
}

#[test]
fn vmap2_batches_a_borrowed_struct_against_shared_data() {
    // An ensemble of three linear models stacked on axis 0, applied to the same inputs.
    struct Lin {
        w: Tensor,
        b: Tensor,
        name: &'static str,
    }
    wgrad::tree_struct!(Lin { w, b; static name });
    let ens = Lin {
        w: Tensor::from_vec((0..18).map(|v| v as f32 * 0.1).collect(), [3, 3, 2]),
        b: Tensor::from_vec(vec![1.0f32, -1.0, 0.5, 0.0, 2.0, 3.0], [3, 2]),
        name: "ensemble",
    };
    let x = Tensor::from_vec(vec![1.0f32, -2.0, 0.5, 3.0, 1.0, -1.0], [2, 3]);
    let f = |m: &Lin, x: &Tensor| x.matmul(&m.w) + &m.b;
    let ys = vmap2(f, vec![Some(0), None])(&ens, &x);
    assert_eq!(ys.shape(), &[3, 2, 2]);
    for k in 0..3 {
        let one = Lin {
            w: ens.w.index(k),
            b: ens.b.index(k),
            name: ens.name,
        };
        let want = f(&one, &x).to_vec::<f32>();
        let got = ys.index(k).to_vec::<f32>();
        common::close(&got, &want, 1e-6, 1e-6).unwrap();
    }
    // And the gradient of each member's loss, per member.
    let g = vmap2(
        |m: &Lin, x: &Tensor| grad(|m: &Lin| f(m, x).square().sum_all())(m),
        vec![Some(0), None],
    )(&ens, &x);
    assert_eq!((g.w.shape(), g.name), (&[3usize, 3, 2][..], "ensemble"));
    let one = Lin {
        w: ens.w.index(2),
        b: ens.b.index(2),
        name: "",
    };
    let g2 = grad(|m: &Lin| f(m, &x).square().sum_all())(&one);
    common::close(
        &g.b.index(2).to_vec::<f32>(),
        &g2.b.to_vec::<f32>(),
        1e-5,
        1e-5,
    )
    .unwrap();
}
