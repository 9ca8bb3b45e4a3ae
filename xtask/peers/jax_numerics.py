#!/usr/bin/env python3
"""JAX (CPU, jit) peer of wgrad's numerics benchmark rows (examples/support/numerics.rs):
the same shapes and formulas, timed as wgrad's bench times them (a first call, 3 warm-ups, a
calibration of at least 0.25 s, then iterations until --secs, each finished with
block_until_ready; median and minimum). Inputs are arguments of the jitted functions, never
constants. Prints one JSON object per workload.

    pip install jax && python3 xtask/peers/jax_numerics.py [--secs S] [--filter a,b]
"""

import argparse
import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_platforms", "cpu")


def timed(name, secs, fn, *args):
    out = fn(*args)
    jax.block_until_ready(out)
    for _ in range(3):
        jax.block_until_ready(fn(*args))
    t = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - t < 0.25:
        jax.block_until_ready(fn(*args))
        n += 1
    per = (time.perf_counter() - t) / n
    iters = max(5, min(100_000, int(secs / per)))
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return {
        "name": name,
        "backend": "jax",
        "device": str(jax.devices()[0]),
        "median_ms": times[len(times) // 2],
        "min_ms": times[0],
        "iters": iters,
    }


def spd(rng, batch, n):
    m = rng.standard_normal((batch, n, n)).astype(np.float32)
    return (m @ np.swapaxes(m, -1, -2) / n + np.eye(n, dtype=np.float32)).astype(np.float32)


def gp_nll(theta, x, y):
    n = x.shape[0]
    s2, l2, n2 = jnp.exp(2 * theta[0]), jnp.exp(2 * theta[1]), jnp.exp(2 * theta[2])
    d2 = jnp.sum((x[:, None, :] - x[None, :, :]) ** 2, -1)
    k = s2 * jnp.exp(-d2 / (2 * l2)) + (n2 + 1e-4) * jnp.eye(n)
    l = jnp.linalg.cholesky(k)
    alpha = jax.scipy.linalg.cho_solve((l, True), y)
    return 0.5 * y @ alpha + jnp.sum(jnp.log(jnp.diag(l))) + 0.5 * n * math.log(2 * math.pi)


def workloads(rng):
    # The matmul rows that bound the matmul-shaped ones, for reference.
    for n in (512, 1024):
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        yield f"matmul_f32_{n}", jax.jit(jnp.matmul), a, b
    yield "cholesky_batched_16", jax.jit(jnp.linalg.cholesky), spd(rng, 1024, 16)
    yield "cholesky_1024", jax.jit(jnp.linalg.cholesky), spd(rng, 1, 1024)
    a = (rng.standard_normal((512, 512)) + 30 * np.eye(512)).astype(np.float32)
    yield "solve_512", jax.jit(jnp.linalg.solve), a, rng.standard_normal(512).astype(np.float32)
    x = (rng.random((512, 2)) * 4).astype(np.float32)
    y = (np.sin(1.5 * x[:, 0]) * np.cos(x[:, 1]) + 0.1 * rng.standard_normal(512)).astype(np.float32)
    theta = np.array([0.0, 0.0, -1.0], np.float32)
    yield "gp_nll_grad", jax.jit(jax.value_and_grad(gp_nll)), theta, x, y
    yield "sort_1m", jax.jit(jnp.sort), rng.standard_normal(1 << 20).astype(np.float32)
    u = rng.standard_normal(1 << 20).astype(np.float32)
    idx = ((np.arange(1 << 20) * 7919) % 1024).astype(np.int32)
    scatter = jax.jit(lambda z, i, u: z.at[i].add(u))
    yield "scatter_add_1m", scatter, np.zeros(1024, np.float32), idx, u
    q, k, v = (rng.standard_normal((8, 4, 128, 32)).astype(np.float32) for _ in range(3))

    def attend(q, k, v):
        s = jnp.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(32)
        return jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(s, -1), v)

    yield "einsum_attention", jax.jit(attend), q, k, v
    yield "rfft_64k", jax.jit(jnp.fft.rfft), rng.standard_normal(1 << 16).astype(np.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--secs", type=float, default=3.0)
    p.add_argument("--filter", default="")
    args = p.parse_args()
    keep = [f for f in args.filter.split(",") if f]
    rng = np.random.default_rng(0)
    for name, fn, *inputs in workloads(rng):
        if keep and not any(f in name for f in keep):
            continue
        print(json.dumps(timed(name, args.secs, fn, *inputs)), flush=True)


if __name__ == "__main__":
    main()
