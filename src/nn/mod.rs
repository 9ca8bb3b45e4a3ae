//! Neural-network building blocks as plain parameter trees: each layer is a struct of tensors
//! (a [`crate::Tree`], so `grad` returns the same struct and [`crate::optim`] updates it) with
//! a constructor from a [`Key`](crate::random::Key) and a `forward`. Initialisers are `jax.nn.initializers`' (same
//! numbers for the same key); layers follow flax's formulas; losses are optax's.
//!
//! ```
//! use wgrad::prelude::*;
//! use wgrad::{nn, optim, random};
//!
//! let [k1, k2] = random::key(0).split_n();
//! let mut model = nn::Mlp::new(k1, &[2, 16, 1], nn::Activation::Tanh);
//! let x = random::normal(k2, [32, 2]);
//! let y = (x.slice_axis(1, 0..1) * x.slice_axis(1, 1..2)).sign(); // XOR-like labels
//! let y01 = (y + 1.0) * 0.5;
//! let loss = |m: &nn::Mlp| nn::sigmoid_binary_cross_entropy(&m.forward(&x), &y01).mean_all();
//! let opt = optim::adam(0.05);
//! let mut state = opt.init(&model);
//! let first = loss(&model).item();
//! for _ in 0..60 {
//!     let g = grad(loss)(&model);
//!     model = opt.step(&model, &g, &mut state);
//! }
//! assert!(loss(&model).item() < first * 0.7);
//! ```

pub mod init;
mod layers;
mod losses;
mod models;

pub use layers::{Conv1d, Conv2d, ConvTranspose2d, Embedding, LayerNorm, Linear, dropout};
pub use losses::{
    accuracy, mse, sigmoid_binary_cross_entropy, softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
};
pub use models::{Activation, Mlp, MultiHeadAttention};
