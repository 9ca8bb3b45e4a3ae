//! nn against JAX: initialisers on the same keys, LayerNorm, causal attention and losses with
//! their gradients (tests/data/nn_reference.json, made by tests/data/make_nn_reference.py).

use crate::common;

use common::{Json, close, json_tensor, parse_json, to_tensor as tensor};
use wgrad::nn::{self, init};
use wgrad::prelude::*;
use wgrad::random::key;

fn reference() -> Json {
    parse_json(include_str!("../data/nn_reference.json"))
}

/// The Python script's `det`: sin(0.7 k + phase) * 0.8.
fn det(shape: &[usize], phase: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|k| ((k as f64 * 0.7 + phase).sin() * 0.8) as f32)
        .collect();
    Tensor::from_vec(v, shape)
}

fn check(name: &str, got: &Tensor, want_j: &Json, tol: f32) {
    let (shape, w) = json_tensor(want_j);
    assert_eq!(got.shape(), &shape[..], "{name}");
    if let Err(e) = close(&got.to_vec::<f32>(), &w, tol, tol) {
        panic!("{name}: {e}");
    }
}

#[test]
fn initialisers_give_jaxs_numbers_for_the_same_key() {
    let r = reference();
    let i = r.get("init").unwrap();
    check(
        "he_normal",
        &init::he_normal(key(0), [3, 4]),
        i.get("he_normal_3x4").unwrap(),
        1e-5,
    );
    check(
        "he_uniform",
        &init::he_uniform(key(0), [3, 4]),
        i.get("he_uniform_3x4").unwrap(),
        1e-6,
    );
    check(
        "glorot_normal",
        &init::glorot_normal(key(1), [4, 5]),
        i.get("glorot_normal_4x5").unwrap(),
        1e-5,
    );
    check(
        "glorot_uniform",
        &init::glorot_uniform(key(1), [4, 5]),
        i.get("glorot_uniform_4x5").unwrap(),
        1e-6,
    );
    check(
        "lecun_normal",
        &init::lecun_normal(key(2), [5, 2]),
        i.get("lecun_normal_5x2").unwrap(),
        1e-5,
    );
    check(
        "lecun_uniform",
        &init::lecun_uniform(key(2), [5, 2]),
        i.get("lecun_uniform_5x2").unwrap(),
        1e-6,
    );
    let conv = init::variance_scaling(
        key(3),
        [4, 3, 3, 3],
        2.0,
        init::FanMode::FanIn,
        init::Distribution::TruncatedNormal,
        1,
        0,
    );
    check(
        "he_normal conv",
        &conv,
        i.get("he_normal_conv_4x3x3x3").unwrap(),
        1e-5,
    );
}

#[test]
fn layer_norm_and_its_gradient() {
    let r = reference();
    let r = r.get("layer_norm").unwrap();
    let ln = nn::LayerNorm {
        scale: det(&[5], 1.0) * 0.5 + 1.0,
        bias: det(&[5], 2.0) * 0.3,
        eps: 1e-6,
    };
    let x = det(&[2, 3, 5], 0.3);
    check("layer_norm", &ln.forward(&x), r.get("y").unwrap(), 1e-5);
    let g = grad(|x: &Tensor| ln.forward(x).sin().sum_all())(&x);
    check("layer_norm grad", &g, r.get("grad_x").unwrap(), 2e-5);
}

#[test]
fn attention_causal_and_full_and_gradient() {
    let r = reference();
    let a = r.get("attention").unwrap();
    let lin = |n: &str| nn::Linear {
        w: tensor(a.get("w").unwrap().get(n).unwrap()),
        b: Some(tensor(a.get("b").unwrap().get(n).unwrap())),
    };
    let att = nn::MultiHeadAttention {
        q: lin("q"),
        k: lin("k"),
        v: lin("v"),
        o: lin("o"),
        heads: 2,
    };
    let x = tensor(a.get("x").unwrap());
    check(
        "causal",
        &att.forward(&x, true),
        a.get("causal").unwrap(),
        1e-5,
    );
    check(
        "full",
        &att.forward(&x, false),
        a.get("full").unwrap(),
        1e-5,
    );
    let g = grad(|m: &nn::MultiHeadAttention| m.forward(&x, true).square().sum_all())(&att);
    check("grad wq", &g.q.w, a.get("grad_wq_causal").unwrap(), 5e-5);
    assert_eq!(g.heads, 2);
    // Unbatched input gives the batched result's rows.
    let one = att.forward(&x.index(1), true).to_vec::<f32>();
    let both = att.forward(&x, true).index(1).to_vec::<f32>();
    close(&one, &both, 1e-6, 1e-6).unwrap();
}

#[test]
fn losses_and_their_gradients_match_optax() {
    let r = reference();
    let ce = r.get("softmax_ce_int").unwrap();
    let logits = tensor(ce.get("logits").unwrap());
    let labels: Vec<i32> = ce
        .get("labels")
        .unwrap()
        .arr()
        .iter()
        .map(|v| v.num() as i32)
        .collect();
    let labels = Tensor::from_slice(&labels, [labels.len()]);
    let f = |l: &Tensor| nn::softmax_cross_entropy_with_integer_labels(l, &labels);
    check("ce", &f(&logits), ce.get("loss").unwrap(), 1e-5);
    let g = grad(|l: &Tensor| f(l).mean_all())(&logits);
    check("ce grad", &g, ce.get("grad").unwrap(), 1e-6);
    // The same through one-hot label distributions.
    let dense = nn::softmax_cross_entropy(&logits, &one_hot(&labels, 3));
    check("ce dense", &dense, ce.get("loss").unwrap(), 1e-5);

    let b = r.get("sigmoid_bce").unwrap();
    let (bl, by) = (
        tensor(b.get("logits").unwrap()),
        tensor(b.get("labels").unwrap()),
    );
    check(
        "bce",
        &nn::sigmoid_binary_cross_entropy(&bl, &by),
        b.get("loss").unwrap(),
        1e-5,
    );
    let g = grad(|l: &Tensor| nn::sigmoid_binary_cross_entropy(l, &by).sum_all())(&bl);
    check("bce grad", &g, b.get("grad").unwrap(), 1e-6);
    // Stable far out: no inf or NaN at |logit| = 100.
    let far = nn::sigmoid_binary_cross_entropy(
        &Tensor::from_vec(vec![100.0f32, -100.0], [2]),
        &Tensor::from_vec(vec![0.0f32, 1.0], [2]),
    );
    assert_eq!(far.to_vec::<f32>(), vec![100.0, 100.0]);
}

#[test]
fn conv_layer_embedding_dropout_and_mlp() {
    let opts = Conv2dOptions {
        padding: [1, 1],
        ..Default::default()
    };
    let conv = nn::Conv2d::new(key(5), 2, 3, [3, 3], opts);
    let conv = nn::Conv2d {
        b: Some(Tensor::from_vec(vec![1.0f32, -2.0, 0.5], [3])),
        ..conv
    };
    let x = det(&[1, 2, 4, 4], 0.4);
    let y = conv.forward(&x);
    let no_bias = x.conv2d(&conv.w, opts).to_vec::<f32>();
    let yv = y.to_vec::<f32>();
    for (k, (a, b)) in yv.iter().zip(&no_bias).enumerate() {
        let bias = [1.0, -2.0, 0.5][k / 16];
        assert!((a - b - bias).abs() < 1e-5);
    }
    // Weight variance ~ 1 / fan_in (18), truncated-normal rescaled.
    let w = nn::Conv2d::new(key(6), 16, 64, [3, 3], opts).w;
    let var = w.square().mean_all().item();
    assert!((var * 144.0 - 1.0).abs() < 0.1, "variance {var}");

    let e = nn::Embedding::new(key(7), 5, 3);
    let ids = Tensor::from_slice(&[4i32, 1, 4], [3]);
    let g = grad(|e: &nn::Embedding| e.forward(&ids).sum_all())(&e);
    assert_eq!(
        g.table.to_vec::<f32>(),
        vec![
            0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0
        ]
    );

    let x = Tensor::ones([10_000]);
    let d = nn::dropout(&x, 0.5, Some(key(8))).to_vec::<f32>();
    assert!(d.iter().all(|v| *v == 0.0 || *v == 2.0));
    let kept = d.iter().filter(|v| **v == 2.0).count();
    assert!((4800..5200).contains(&kept), "{kept}");
    let d2 = nn::dropout(&x, 0.5, Some(key(9))).to_vec::<f32>();
    assert_ne!(d, d2);

    let m = nn::Mlp::new(key(10), &[3, 4, 2], nn::Activation::Gelu);
    let x = det(&[5, 3], 0.0);
    let by_hand = m.layers[1].forward(&m.layers[0].forward(&x).gelu());
    close(
        &m.forward(&x).to_vec::<f32>(),
        &by_hand.to_vec::<f32>(),
        1e-6,
        1e-6,
    )
    .unwrap();
    let acc = nn::accuracy(
        &m.forward(&x),
        &Tensor::from_slice(&[0i32, 1, 0, 1, 0], [5]),
    )
    .item();
    assert!((0.0..=1.0).contains(&acc) && (acc * 5.0).fract() == 0.0);
}
