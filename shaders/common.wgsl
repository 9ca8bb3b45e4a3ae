// wgrad helper functions, included in every generated kernel that calls them.

// Numerically safe helpers of the unary and binary families (computed in f32).
fn wg_tanh(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

fn wg_sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

fn wg_pow(x: f32, y: f32) -> f32 {
    if (y == 0.0) {
        return 1.0;
    }
    if (x == 0.0) {
        if (y > 0.0) {
            return 0.0;
        }
        return bitcast<f32>(0x7f800000u | (bitcast<u32>(x) & 0u)); // +inf, kept out of constant evaluation
    }
    if (x < 0.0) {
        if (y == floor(y)) {
            let m = exp2(y * log2(-x));
            if (abs(y % 2.0) == 1.0) {
                return -m;
            }
            return m;
        }
        return bitcast<f32>(0x7fc00000u | (bitcast<u32>(x) & 0u)); // NaN
    }
    return exp2(y * log2(x));
}

fn wg_uniform(seed: u32, i: u32) -> f32 {
    // PCG hash of (seed, index): a counter-based generator, the same on every adapter.
    var s = i * 747796405u + 2891336453u + seed * 2654435769u;
    s = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    s = (s >> 22u) ^ s;
    s = s * 747796405u + 2891336453u;
    s = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    s = (s >> 22u) ^ s;
    return f32(s >> 8u) * (1.0 / 16777216.0);
}

