# The JAX reference of tests/suite/while_loops.rs (newton_batched_over_starting_points_...):
# vmap of a while_loop Newton iteration for the cube root of 7 from six starting points.
# Run: python3 tests/data/make_newton_reference.py (jax 0.10.2 on CPU printed the numbers used).
import jax, jax.numpy as jnp
def cube_root(x0, a):
    def cond(c):
        x, a, n = c
        return jnp.abs(x*x*x - a) > a * 1e-3
    def body(c):
        x, a, n = c
        x2 = x*x
        return (x - (x2*x - a)/(x2*3.0), a, n + 1)
    x, _, n = jax.lax.while_loop(cond, body, (x0, a, jnp.int32(0)))
    return x, n
starts = jnp.array([0.5, 1.0, 2.0, 4.0, 9.0, 30.0], jnp.float32)
x, n = jax.vmap(cube_root, in_axes=(0, None))(starts, jnp.float32(7.0))
print("x", x.tolist()); print("n", n.tolist())
