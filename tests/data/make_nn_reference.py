"""Reference values for tests/nn.rs, computed by JAX (float64 where it matters).

Run: python3 tests/data/make_nn_reference.py > tests/data/nn_reference.json
Layers follow flax.linen's formulas (Dense, Conv, LayerNorm, MultiHeadDotProductAttention
with a causal mask) and the losses optax's; initialisers are jax.nn.initializers on
jax.random.PRNGKey keys (threefry), so wgrad's must produce the same numbers.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax

out = {}


def arr(x):
    x = np.asarray(x, dtype=np.float64)
    return {"shape": list(x.shape), "data": [float(v) for v in x.ravel()]}


def det(shape, phase):
    """Deterministic, irregular values (the Rust test makes the same ones)."""
    n = int(np.prod(shape))
    return np.sin(np.arange(n) * 0.7 + phase).reshape(shape) * 0.8


# Initialisers (float32 sampling, as wgrad's).
init = {}
k = jax.random.PRNGKey(0)
init["he_normal_3x4"] = arr(jax.nn.initializers.he_normal()(k, (3, 4), jnp.float32))
init["he_uniform_3x4"] = arr(jax.nn.initializers.he_uniform()(k, (3, 4), jnp.float32))
init["glorot_normal_4x5"] = arr(jax.nn.initializers.glorot_normal()(jax.random.PRNGKey(1), (4, 5), jnp.float32))
init["glorot_uniform_4x5"] = arr(jax.nn.initializers.glorot_uniform()(jax.random.PRNGKey(1), (4, 5), jnp.float32))
init["lecun_normal_5x2"] = arr(jax.nn.initializers.lecun_normal()(jax.random.PRNGKey(2), (5, 2), jnp.float32))
init["lecun_uniform_5x2"] = arr(jax.nn.initializers.lecun_uniform()(jax.random.PRNGKey(2), (5, 2), jnp.float32))
# OIHW conv weights: in_axis 1, out_axis 0.
init["he_normal_conv_4x3x3x3"] = arr(
    jax.nn.initializers.he_normal(in_axis=1, out_axis=0)(jax.random.PRNGKey(3), (4, 3, 3, 3), jnp.float32))
out["init"] = init

jax.config.update("jax_enable_x64", True)

# LayerNorm over the last axis, eps 1e-6, with scale and bias.
x = det((2, 3, 5), 0.3)
scale = 1.0 + det((5,), 1.0) * 0.5
bias = det((5,), 2.0) * 0.3


def layer_norm(x, scale, bias):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / jnp.sqrt(v + 1e-6) * scale + bias


out["layer_norm"] = {
    "y": arr(layer_norm(x, scale, bias)),
    "grad_x": arr(jax.grad(lambda x: jnp.sum(jnp.sin(layer_norm(x, scale, bias))))(x)),
}

# Causal multi-head self-attention, 2 heads, d_model 4, batch 2, length 3.
B, T, D, H = 2, 3, 4, 2
xa = det((B, T, D), 0.1)
ws = {n: det((D, D), p) * 0.7 for n, p in [("q", 0.5), ("k", 1.5), ("v", 2.5), ("o", 3.5)]}
bs = {n: det((D,), p) * 0.1 for n, p in [("q", 4.5), ("k", 5.5), ("v", 6.5), ("o", 7.5)]}


def mha(x, ws, bs, causal):
    def heads(y):
        return y.reshape(B, T, H, D // H).transpose(0, 2, 1, 3)

    q, k, v = (heads(x @ ws[n] + bs[n]) for n in "qkv")
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D // H)
    if causal:
        mask = np.tril(np.ones((T, T), dtype=bool))
        s = jnp.where(mask, s, jnp.finfo(jnp.float32).min)
    a = jax.nn.softmax(s, axis=-1)
    o = (a @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
    return o @ ws["o"] + bs["o"]


out["attention"] = {
    "x": arr(xa),
    "w": {n: arr(w) for n, w in ws.items()},
    "b": {n: arr(b) for n, b in bs.items()},
    "causal": arr(mha(xa, ws, bs, True)),
    "full": arr(mha(xa, ws, bs, False)),
    "grad_wq_causal": arr(jax.grad(lambda wq: jnp.sum(mha(xa, {**ws, "q": wq}, bs, True) ** 2))(ws["q"])),
}

# Losses.
logits = det((4, 3), 0.9) * 3.0
labels = np.array([2, 0, 1, 1])
out["softmax_ce_int"] = {
    "logits": arr(logits),
    "labels": [int(v) for v in labels],
    "loss": arr(optax.softmax_cross_entropy_with_integer_labels(logits, labels)),
    "grad": arr(jax.grad(lambda l: optax.softmax_cross_entropy_with_integer_labels(l, labels).mean())(logits)),
}
bl = det((6,), 0.2) * 20.0  # includes large |logits|
by = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.3])
out["sigmoid_bce"] = {
    "logits": arr(bl),
    "labels": arr(by),
    "loss": arr(optax.sigmoid_binary_cross_entropy(bl, by)),
    "grad": arr(jax.grad(lambda l: optax.sigmoid_binary_cross_entropy(l, by).sum())(bl)),
}
print(json.dumps(out, indent=1))
