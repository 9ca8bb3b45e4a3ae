//! The digits CNN of `examples/digits.rs`, for the page and the browser tests: scikit-learn's
//! handwritten digits (compiled into the module), a two-convolution network from `wgrad::nn`,
//! Adam from `wgrad::optim`.

use wgrad::prelude::*;
use wgrad::{nn, optim, random};

/// Two 3×3 convolutions, a 2×2 max pool, two dense layers.
pub struct Cnn {
    /// 1 → 16 channels.
    pub c1: nn::Conv2d,
    /// 16 → 32 channels.
    pub c2: nn::Conv2d,
    /// 512 → 64.
    pub fc1: nn::Linear,
    /// 64 → 10 logits.
    pub fc2: nn::Linear,
}
wgrad::tree_struct!(Cnn { c1, c2, fc1, fc2 });

impl Cnn {
    /// A fresh model from `key`.
    pub fn new(key: random::Key) -> Cnn {
        let [k1, k2, k3, k4] = key.split_n();
        let same = Conv2dOptions {
            padding: [1, 1],
            ..Default::default()
        };
        Cnn {
            c1: nn::Conv2d::new(k1, 1, 16, [3, 3], same),
            c2: nn::Conv2d::new(k2, 16, 32, [3, 3], same),
            fc1: nn::Linear::new(k3, 32 * 4 * 4, 64),
            fc2: nn::Linear::new(k4, 64, 10),
        }
    }

    /// Logits `[n, 10]` for images `[n, 1, 8, 8]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let n = x.shape()[0];
        let h = self.c1.forward(x).relu();
        let h = self.c2.forward(&h).relu().max_pool2d(2, None);
        let h = self.fc1.forward(&h.reshape([n, 32 * 4 * 4])).relu();
        self.fc2.forward(&h)
    }
}

/// The data, shuffled with a fixed key and split: 360 held-out images first.
pub struct Digits {
    /// Training images `[1437, 1, 8, 8]` in [0, 1].
    pub x_train: Tensor,
    /// Training labels (i32).
    pub y_train: Tensor,
    /// Held-out images `[360, 1, 8, 8]`.
    pub x_test: Tensor,
    /// Held-out labels.
    pub y_test: Tensor,
}

/// Loads the 1,797 images.
pub fn load() -> Digits {
    let bytes = include_bytes!("../../examples/data/digits.bin");
    let n = bytes.len() / 65;
    let order = random::permutation(random::key(0), n);
    let mut pixels = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    for rec in bytes.chunks_exact(65) {
        pixels.extend(rec[..64].iter().map(|&p| p as f32 / 16.0));
        labels.push(rec[64] as i32);
    }
    let n_test = 360;
    let images = Tensor::from_vec(pixels, [n, 1, 8, 8]).take(&order, 0);
    let labels = Tensor::from_slice(&labels, [n]).take(&order, 0);
    Digits {
        x_test: images.slice_axis(0, 0..n_test),
        y_test: labels.slice_axis(0, 0..n_test),
        x_train: images.slice_axis(0, n_test..n),
        y_train: labels.slice_axis(0, n_test..n),
    }
}

/// A trainer: the model, Adam with a warm-up cosine schedule, the step count.
pub struct Trainer {
    /// The model being trained.
    pub model: Cnn,
    opt: optim::Optimizer,
    state: optim::OptState,
}

impl Trainer {
    /// A fresh model and optimizer for `total` steps.
    pub fn new(total: u64) -> Trainer {
        let model = Cnn::new(random::key(42));
        let opt = optim::adam(optim::warmup_cosine_decay_schedule(
            0.0,
            3e-3,
            (total / 20).max(1),
            total,
            1e-4,
        ));
        let state = opt.init(&model);
        Trainer { model, opt, state }
    }

    /// One Adam step on batch `step` of `epoch` (64 images); returns the loss (lazy).
    pub fn step(&mut self, data: &Digits, epoch: u32, step: usize) -> Tensor {
        let n = data.y_train.numel();
        let shuffle = random::permutation(random::key(1).fold_in(epoch), n);
        let idx = shuffle.slice_axis(0, step * 64..(step + 1) * 64);
        let (x, y) = (data.x_train.take(&idx, 0), data.y_train.take(&idx, 0));
        let loss_fn =
            |m: &Cnn| nn::softmax_cross_entropy_with_integer_labels(&m.forward(&x), &y).mean_all();
        let (loss, g) = value_and_grad(loss_fn)(&self.model);
        self.model = self.opt.step(&self.model, &g, &mut self.state);
        wgrad::tree::realize(&[&self.model, &self.state, &loss]);
        loss
    }

    /// Predicted classes of the held-out images (lazy, i32 `[360]`) and the accuracy (lazy).
    pub fn evaluate(&self, data: &Digits) -> (Tensor, Tensor) {
        let logits = self.model.forward(&data.x_test);
        (logits.argmax(-1), nn::accuracy(&logits, &data.y_test))
    }
}
