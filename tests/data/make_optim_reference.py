"""Reference trajectories for tests/optim.rs, computed by optax (float64).

Run: python3 tests/data/make_optim_reference.py > tests/data/optim_reference.json
(optax 0.2.8, jax 0.10.2 when the committed file was made).
"""
import json

import jax
import jax.numpy as jnp
import optax

jax.config.update("jax_enable_x64", True)

W0 = jnp.array([[0.5, -1.0, 2.0], [0.25, 1.5, -0.75]])
B0 = jnp.array([0.1, -0.3, 0.8])
A = jnp.array([[1.0, 2.0, 0.5], [3.0, 0.25, 1.0]])
C = jnp.array([[-0.5, 0.5, 1.0], [0.0, -1.0, 2.0]])


def loss(p):
    w, b = p["w"], p["b"]
    return jnp.sum(A * (w - C) ** 2) + jnp.sum(jnp.sin(w)) + jnp.sum(jnp.cosh(b) * b)


OPTIMIZERS = {
    "sgd": optax.sgd(0.05),
    "sgd_momentum": optax.sgd(0.02, momentum=0.9),
    "sgd_nesterov": optax.sgd(0.02, momentum=0.9, nesterov=True),
    "adam": optax.adam(0.05),
    "adam_custom": optax.adam(0.05, b1=0.8, b2=0.99, eps=1e-3, eps_root=1e-4),
    "adamw": optax.adamw(0.05, weight_decay=0.1),
    "rmsprop": optax.rmsprop(0.01),
    "rmsprop_momentum": optax.rmsprop(0.01, decay=0.95, eps=1e-6, momentum=0.9),
    "clip_adam": optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.1)),
    "adam_warmup_cosine": optax.adam(optax.warmup_cosine_decay_schedule(0.0, 0.1, 3, 10, 0.01)),
    "sgd_exponential": optax.sgd(optax.exponential_decay(0.05, 2, 0.5)),
}

out = {}
for name, opt in OPTIMIZERS.items():
    p = {"w": W0, "b": B0}
    s = opt.init(p)
    traj = []
    for _ in range(8):
        g = jax.grad(loss)(p)
        u, s = opt.update(g, s, p)
        p = optax.apply_updates(p, u)
        traj.append([float(v) for v in jnp.concatenate([p["w"].ravel(), p["b"].ravel()])])
    out[name] = traj
print(json.dumps(out, indent=1))
