// wgrad helper functions, included in every generated kernel that calls them.

// Numerically safe helpers of the unary and binary families (computed in f32).

// Whether x is NaN, from its bits (a float comparison may be folded by a compiler that assumes
// no NaN).
fn wg_isnan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// max and min that propagate NaN (as JAX; the built-ins may return the other operand).
fn wg_max(a: f32, b: f32) -> f32 {
    return select(select(max(a, b), b, wg_isnan(b)), a, wg_isnan(a));
}

fn wg_min(a: f32, b: f32) -> f32 {
    return select(select(min(a, b), b, wg_isnan(b)), a, wg_isnan(a));
}

// +inf, computed from x so that no constant expression is non-finite (WGSL lets a compiler
// assume that none is).
fn wg_inf(x: f32) -> f32 {
    return bitcast<f32>(0x7f800000u | (bitcast<u32>(x) & 0u));
}

// e^x to within 1 ulp (the built-in's error grows with |x|: 15 ulp at 30 on lavapipe).
// Cody–Waite reduction by ln 2 (the high part has 9 bits, so k·C1 is exact), Cephes' expf
// polynomial on [-ln2/2, ln2/2], and the scale 2^k from exponent bits in two factors (k reaches
// 150 at the denormal end). No branches: the edges are selected at the end.
fn wg_exp(x: f32) -> f32 {
    let xc = clamp(x, -104.0, 89.0);
    let k = floor(xc * 1.442695041 + 0.5);
    let r = (xc - k * 0.693359375) - k * -2.12194440e-4;
    let z = r * r;
    let p = ((((1.9875691500e-4 * r + 1.3981999507e-3) * r + 8.3334519073e-3) * r + 4.1665795894e-2) * r + 1.6666665459e-1) * r + 5.0000001201e-1;
    let y = p * z + r + 1.0;
    let ki = i32(k);
    let half = ki / 2;
    let s1 = bitcast<f32>(u32(half + 127) << 23u);
    let s2 = bitcast<f32>(u32(ki - half + 127) << 23u);
    var e = y * s1 * s2;
    e = select(e, wg_inf(x), x > 88.72283);
    e = select(e, 0.0, x < -103.97208);
    return select(e, x, wg_isnan(x));
}

// log(x) to within 1 ulp (the built-in loses digits near 1 on lavapipe: log(x)/(x-1) at
// 0.99999 came out 1.0033). frexp, then Cephes' logf polynomial on [sqrt(1/2) - 1, sqrt(2) - 1]
// with log 2 split in two.
fn wg_log(x: f32) -> f32 {
    if (!(x > 0.0) || x == wg_inf(x)) {
        // NaN below 0, -inf at 0, inf at inf and NaN through, as IEEE.
        return log(x);
    }
    let fe = frexp(x);
    var m = fe.fract;
    var e = f32(fe.exp);
    if (m < 0.70710678) {
        e = e - 1.0;
        m = m + m - 1.0;
    } else {
        m = m - 1.0;
    }
    let z = m * m;
    let p = ((((((((7.0376836292e-2 * m - 1.1514610310e-1) * m + 1.1676998740e-1) * m - 1.2420140846e-1) * m + 1.4249322787e-1) * m - 1.6668057665e-1) * m + 2.0000714765e-1) * m - 2.4999993993e-1) * m + 3.3333331174e-1);
    var y = m * z * p;
    y = y + e * -2.12194440e-4;
    y = y - 0.5 * z;
    return (m + y) + e * 0.693359375;
}

// tanh within about 1 ulp: Cephes' odd polynomial below 0.625 (the old (1 - e) / (1 + e) form
// cancelled near 0: tanh(x)/x came out 1.0133 at 1e-6), 1 - 2/(e^{2|x|} + 1) above (no
// overflow: e^{2|x|} = inf gives 1).
fn wg_tanh(x: f32) -> f32 {
    let a = abs(x);
    let z = x * x;
    let small = ((((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z + 1.33314422036e-1) * z - 3.33332819422e-1) * z * x + x;
    let big = sign(x) * (1.0 - 2.0 / (wg_exp(2.0 * a) + 1.0));
    return select(big, small, a < 0.625);
}

// 1 / (1 + e^-x), stable for large |x|, without branches.
fn wg_sigmoid(x: f32) -> f32 {
    let e = wg_exp(-abs(x));
    let s = 1.0 / (1.0 + e);
    return select(e * s, s, x >= 0.0);
}

fn wg_isinf(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

// x^y with IEEE 754 / C99's special cases (as JAX): y = 0 or x = 1 give 1 even with NaN; zeros,
// infinities and -1^±inf as specified; a negative base with an integer exponent gets the sign
// of its parity, with any other exponent NaN. Else e^(y log|x|) on wgrad's exp and log.
fn wg_pow(x: f32, y: f32) -> f32 {
    let inf = wg_inf(x);
    let ay = abs(y);
    let int_y = ay == floor(ay);
    // Odd only below 2^24: every larger f32 is an even integer.
    let odd_y = int_y && ay < 16777216.0 && (ay % 2.0) == 1.0;
    if (y == 0.0 || x == 1.0) {
        return 1.0;
    }
    if (wg_isnan(x) || wg_isnan(y)) {
        return x + y;
    }
    let ax = abs(x);
    if (x == 0.0) {
        let m = select(0.0, inf, y < 0.0);
        return select(m, select(m, -m, bitcast<u32>(x) != 0u), odd_y);
    }
    if (wg_isinf(y)) {
        if (ax == 1.0) {
            return 1.0;
        }
        return select(0.0, inf, (ax > 1.0) == (y > 0.0));
    }
    if (wg_isinf(x)) {
        let m = select(0.0, inf, y > 0.0);
        return select(m, -m, x < 0.0 && odd_y);
    }
    if (x < 0.0 && !int_y) {
        return bitcast<f32>(0x7fc00000u | (bitcast<u32>(x) & 0u)); // NaN
    }
    let m = wg_exp(y * wg_log(ax));
    return select(m, -m, x < 0.0 && odd_y);
}

fn wg_rotl(x: u32, r: u32) -> u32 {
    return (x << r) | (x >> (32u - r));
}

// Threefry-2x32 with 20 rounds (Salmon et al., Random123; the generator JAX uses): a
// counter-based generator, the same bits on every adapter; distinct keys give independent
// streams. Straight-line code (drivers compile loops with indexed rotations badly).
fn wg_threefry(key0: u32, key1: u32, c0: u32, c1: u32) -> vec2<u32> {
    let k0 = key0;
    let k1 = key1;
    let k2 = 0x1BD11BDAu ^ key0 ^ key1;
    var x0 = c0 + k0;
    var x1 = c1 + k1;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 13u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 15u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 26u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 6u) ^ x0;
    x0 = x0 + k1;
    x1 = x1 + k2 + 1u;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 17u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 29u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 16u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 24u) ^ x0;
    x0 = x0 + k2;
    x1 = x1 + k0 + 2u;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 13u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 15u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 26u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 6u) ^ x0;
    x0 = x0 + k0;
    x1 = x1 + k1 + 3u;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 17u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 29u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 16u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 24u) ^ x0;
    x0 = x0 + k1;
    x1 = x1 + k2 + 4u;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 13u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 15u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 26u) ^ x0;
    x0 = x0 + x1;
    x1 = wg_rotl(x1, 6u) ^ x0;
    x0 = x0 + k2;
    x1 = x1 + k0 + 5u;
    return vec2<u32>(x0, x1);
}

// Uniform in [0, 1) at flat index i of the stream keyed (k0, k1), bit for bit as JAX's
// `jax.random.uniform` (partitionable Threefry): the bits are the two halves of Threefry at
// counter (0, i) XORed, and their top 23 bits are a mantissa in [1, 2), minus 1.
fn wg_uniform(k0: u32, k1: u32, i: u32) -> f32 {
    let t = wg_threefry(k0, k1, 0u, i);
    return bitcast<f32>(((t.x ^ t.y) >> 9u) | 0x3f800000u) - 1.0;
}

// The inverse error function on (-1, 1), Giles' single-precision approximation (the one XLA
// uses for `lax.erf_inv`); ±inf at ±1, NaN outside.
fn wg_erfinv(x: f32) -> f32 {
    var w = -wg_log((1.0 - x) * (1.0 + x));
    var p: f32;
    if (w < 5.0) {
        w = w - 2.5;
        p = 2.81022636e-08;
        p = 3.43273939e-07 + p * w;
        p = -3.5233877e-06 + p * w;
        p = -4.39150654e-06 + p * w;
        p = 0.00021858087 + p * w;
        p = -0.00125372503 + p * w;
        p = -0.00417768164 + p * w;
        p = 0.246640727 + p * w;
        p = 1.50140941 + p * w;
    } else {
        w = sqrt(w) - 3.0;
        p = -0.000200214257;
        p = 0.000100950558 + p * w;
        p = 0.00134934322 + p * w;
        p = -0.00367342844 + p * w;
        p = 0.00573950773 + p * w;
        p = -0.0076224613 + p * w;
        p = 0.00943887047 + p * w;
        p = 1.00167406 + p * w;
        p = 2.83297682 + p * w;
    }
    let r = p * x;
    if (abs(x) == 1.0) {
        return x * wg_inf(x);
    }
    return r;
}


// sin and cos to about 1 ulp on every adapter and over the whole f32 range: WGSL only promises
// an absolute error of 2^-11 for the built-ins (SwiftShader's reach 5e-5, lavapipe's sin(1e9)
// came out -117115). Cody–Waite reduction by pi/2 in three parts while each part times k stays
// exact (|x| below 2^13); Payne–Hanek beyond; then Cephes' minimax polynomials on [-pi/4, pi/4].
fn wg_sincos_reduce(x: f32) -> vec2<f32> {
    if (!(abs(x) < 8192.0)) {
        return wg_reduce_big(x);
    }
    let k = round(x * 0.63661977236758134);
    let r = ((x - k * 1.5703125) - k * 4.837512969970703125e-4) - k * 7.549789948768648e-8;
    return vec2<f32>(r, k);
}

// a × b as (low, high) 32-bit words, from 16-bit halves (WGSL has no 64-bit integers).
fn wg_mul64(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (p00 & 0xffffu) | (mid << 16u);
    let hi = a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

// Payne–Hanek reduction of |x| >= 2^13 (or inf/NaN): the mantissa times 192 bits of 2/pi, of
// which the 2 bits above the binary point give the quadrant and the 62 below the remainder
// (as a fraction of pi/2, rounded to the nearest quadrant). Returns (r, k) with
// x = k·pi/2 + r, |r| <= pi/4.
fn wg_reduce_big(x: f32) -> vec2<f32> {
    let ia = bitcast<u32>(x) & 0x7fffffffu;
    if (ia >= 0x7f800000u) {
        return vec2<f32>(bitcast<f32>(0x7fc00000u | (ia & 0u)), 0.0); // inf or NaN: NaN
    }
    // 2/pi, least significant word first.
    let t = array<u32, 6>(0x3c439041u, 0xdb629599u, 0xf534ddc0u, 0xfc2757d1u, 0x4e441529u, 0xa2f9836eu);
    let m = (ia << 8u) | 0x80000000u;
    var res = array<u32, 7>(0u, 0u, 0u, 0u, 0u, 0u, 0u);
    var carry = 0u;
    for (var j = 0u; j < 6u; j = j + 1u) {
        let p = wg_mul64(t[j], m);
        let lo = p.x + carry;
        carry = p.y + select(0u, 1u, lo < p.x);
        res[j] = lo;
    }
    res[6] = carry;
    let eb = (ia >> 23u) - 128u;
    let q = eb >> 5u;
    let e = eb & 31u;
    var hi = res[6u - q];
    var lo = res[5u - q];
    if (e != 0u) {
        hi = (hi << e) | (lo >> (32u - e));
        lo = (lo << e) | (res[4u - q] >> (32u - e));
    }
    var quadrant = hi >> 30u;
    hi = (hi << 2u) | (lo >> 30u);
    lo = lo << 2u;
    // A fraction of one half or more rounds up to the next quadrant (the remainder negative).
    let up = (hi & 0x80000000u) != 0u;
    if (up) {
        quadrant = quadrant + 1u;
        hi = ~hi;
        lo = ~lo;
    }
    // The fraction's 64 bits, normalized to a float in [0, 1/2), times pi/2.
    let z = countLeadingZeros(hi);
    var top = hi;
    if (z > 0u && z < 32u) {
        top = (hi << z) | (lo >> (32u - z));
    } else if (z == 32u) {
        top = lo;
    }
    let frac = f32(top) * exp2(-32.0 - f32(z));
    var r = frac * 1.5707963267948966;
    if (up) {
        r = -r;
    }
    var k = f32(quadrant & 3u);
    if (x < 0.0) {
        r = -r;
        k = -k;
    }
    return vec2<f32>(r, k);
}

fn wg_sin_poly(r: f32) -> f32 {
    let z = r * r;
    return r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
}

fn wg_cos_poly(r: f32) -> f32 {
    let z = r * r;
    return 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
}

// The value at the reduced argument `rk` (from wg_sincos_reduce) in quadrant k + shift:
// shift 0 gives sin, 1 gives cos.
fn wg_sincos_quadrant(rk: vec2<f32>, shift: i32) -> f32 {
    let q = (i32(rk.y) + shift) & 3;
    if (q == 0) {
        return wg_sin_poly(rk.x);
    }
    if (q == 1) {
        return wg_cos_poly(rk.x);
    }
    if (q == 2) {
        return -wg_sin_poly(rk.x);
    }
    return -wg_cos_poly(rk.x);
}

fn wg_sin(x: f32) -> f32 {
    return wg_sincos_quadrant(wg_sincos_reduce(x), 0);
}

fn wg_cos(x: f32) -> f32 {
    return wg_sincos_quadrant(wg_sincos_reduce(x), 1);
}

// log(1 + x) without cancellation: for small |x| through atanh, log1p(x) = 2 atanh(s) with
// s = x / (2 + x) (series to s^11, relative error below 1e-10); else log(u) corrected for the
// rounding of u = 1 + x.
fn wg_log1p(x: f32) -> f32 {
    if (abs(x) < 0.25) {
        let s = x / (2.0 + x);
        let z = s * s;
        return 2.0 * s * (1.0 + z * (0.33333333 + z * (0.2 + z * (0.14285714 + z * (0.11111111 + z * 0.09090909)))));
    }
    let u = 1.0 + x;
    if (u <= 0.0 || x > 1e30) {
        return wg_log(u);
    }
    return wg_log(u) - ((u - 1.0) - x) / u;
}

// exp(x) - 1 without cancellation: Taylor series (Horner, to x^9/9!) for |x| < 0.5.
fn wg_expm1(x: f32) -> f32 {
    let t = x * (1.0 + x * (0.5 + x * (1.6666666667e-1 + x * (4.1666666667e-2 + x * (8.3333333333e-3 + x * (1.3888888889e-3 + x * (1.9841269841e-4 + x * (2.4801587302e-5 + x * 2.7557319224e-6))))))));
    return select(wg_exp(x) - 1.0, t, abs(x) < 0.5);
}

// erf(x) for |x| < 1: x P(x^2), P fitted to float64 erf (weighted least squares, near-minimax).
fn wg_erf_small(x: f32) -> f32 {
    let z = x * x;
    return x * (1.128379107 + z * (-0.3761232793 + z * (0.1128018498 + z * (-0.0267114155 + z * (0.004917655606 + z * -0.0005631800159)))));
}

// erfc(a) for a >= 0.5: exp(-a^2) R(1 / (1 + a/2)), with a^2 split so that the exponent is
// exact (as fdlibm does); R fitted to float64 erfcx on [0.5, 10]; 0 from 10 on (erfc(10) is
// 2e-45). A few ulp while the result is a normal f32.
fn wg_erfc_tail(a: f32) -> f32 {
    if (a >= 10.0) {
        return 0.0;
    }
    let t = 1.0 / (1.0 + 0.5 * a);
    let p = 3.838992598e-06 + t * (0.2819769979 + t * (0.2836749256 + t * (0.2346452326 + t * (0.2360265404 + t * (-0.1094565317 + t * (0.4083232284 + t * (-0.6127693057 + t * (0.3522035778 + t * -0.07463666797))))))));
    let ah = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
    return wg_exp(-ah * ah) * wg_exp((ah - a) * (ah + a)) * p;
}

// The error function, to a few ulp.
fn wg_erf(x: f32) -> f32 {
    let a = abs(x);
    if (a < 1.0) {
        return wg_erf_small(x);
    }
    if (a >= 1.0) {
        return sign(x) * (1.0 - wg_erfc_tail(a));
    }
    return x; // NaN
}

// The complementary error function 1 - erf(x), accurate far into the tail; erfc(-x) = 2 - erfc(x).
fn wg_erfc(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.5) {
        return 1.0 - wg_erf_small(x);
    }
    if (a >= 0.5) {
        let r = wg_erfc_tail(a);
        return select(r, 2.0 - r, x < 0.0);
    }
    return x; // NaN
}

// NaN, computed from x (WGSL lets a compiler assume that no constant expression is NaN).
fn wg_nan(x: f32) -> f32 {
    return bitcast<f32>(0x7fc00000u | (bitcast<u32>(x) & 0u));
}

// |m| with the sign bit of s (C's copysign; keeps -0).
fn wg_copysign(m: f32, s: f32) -> f32 {
    return bitcast<f32>((bitcast<u32>(m) & 0x7fffffffu) | (bitcast<u32>(s) & 0x80000000u));
}

// tan from one reduction shared by sin and cos (about 2 ulp over the whole range).
fn wg_tan(x: f32) -> f32 {
    let rk = wg_sincos_reduce(x);
    return wg_sincos_quadrant(rk, 0) / wg_sincos_quadrant(rk, 1);
}

// atan to about 2 ulp: Cephes' atanf (reduction by tan(pi/8) and tan(3pi/8), then an odd
// polynomial); the sign of x kept, -0 included.
fn wg_atan(x: f32) -> f32 {
    let a = abs(x);
    var y = 0.0;
    var t = a;
    if (a > 2.414213562373095) {
        y = 1.5707963267948966;
        t = -1.0 / a;
    } else if (a > 0.4142135623730950) {
        y = 0.7853981633974483;
        t = (a - 1.0) / (a + 1.0);
    }
    let z = t * t;
    let p = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * t + t;
    return wg_copysign(y + p, x);
}

// atan2(y, x) in [-pi, pi] with C's special cases: signed zeros pick the half-plane
// (atan2(±0, -0) = ±pi), infinities the limiting angle, NaN through. The atan is taken of a
// ratio in [0, 1], so no quotient overflows.
fn wg_atan2(y: f32, x: f32) -> f32 {
    let ax = abs(x);
    let ay = abs(y);
    let swap = ay > ax;
    var t = wg_atan(select(ay / ax, ax / ay, swap));
    t = select(t, 0.0, ax == 0.0 && ay == 0.0);
    t = select(t, 0.7853981633974483, wg_isinf(ax) && wg_isinf(ay));
    t = select(t, 1.5707963267948966 - t, swap);
    t = select(t, 3.141592653589793 - t, (bitcast<u32>(x) >> 31u) == 1u);
    return select(wg_copysign(t, y), x + y, wg_isnan(x) || wg_isnan(y));
}

// asin of a in [0, 1], Cephes' asinf: an odd polynomial below 1/2; above it
// asin a = pi/2 - 2 asin(sqrt((1 - a) / 2)), where 1 - a is exact.
fn wg_asin_core(a: f32) -> f32 {
    let big = a > 0.5;
    let z = select(a * a, 0.5 * (1.0 - a), big);
    let s = select(a, sqrt(z), big);
    let p = ((((4.2163199048e-2 * z + 2.4181311049e-2) * z + 4.5470025998e-2) * z + 7.4953002686e-2) * z + 1.6666752422e-1) * z * s + s;
    return select(p, 1.5707963267948966 - 2.0 * p, big);
}

// asin to about 2 ulp; NaN outside [-1, 1].
fn wg_asin(x: f32) -> f32 {
    let a = abs(x);
    return select(wg_copysign(wg_asin_core(a), x), wg_nan(x), a > 1.0);
}

// acos to about 2 ulp from asin's core: 2 asin(sqrt((1 - x) / 2)) above 1/2 (no cancellation
// near 1), pi minus that mirrored below -1/2, pi/2 - asin x between; NaN outside [-1, 1].
fn wg_acos(x: f32) -> f32 {
    var r = 1.5707963267948966 - wg_copysign(wg_asin_core(abs(x)), x);
    r = select(r, 2.0 * wg_asin_core(sqrt(0.5 * (1.0 - x))), x > 0.5);
    r = select(r, 3.141592653589793 - 2.0 * wg_asin_core(sqrt(0.5 * (1.0 + x))), x < -0.5);
    return select(r, wg_nan(x), abs(x) > 1.0);
}

// sinh without cancellation: (E + E / (E + 1)) / 2 with E = expm1(|x|); past 88, where e^|x|
// overflows before sinh does, e^(|x|/2) squared in two steps.
fn wg_sinh(x: f32) -> f32 {
    let a = abs(x);
    let e = wg_expm1(a);
    let h = wg_exp(0.5 * a);
    return wg_copysign(select(0.5 * (e + e / (e + 1.0)), (0.5 * h) * h, a > 88.0), x);
}

// cosh = (e + 1/e) / 2 with e = e^|x| (no cancellation); past 88 as sinh.
fn wg_cosh(x: f32) -> f32 {
    let a = abs(x);
    let e = wg_exp(a);
    let h = wg_exp(0.5 * a);
    return select(0.5 * (e + 1.0 / e), (0.5 * h) * h, a > 88.0);
}

// asinh |x| = log1p(a + a^2 / (1 + sqrt(1 + a^2))) (no cancellation at any size); log a + log 2
// once a^2 would overflow.
fn wg_asinh(x: f32) -> f32 {
    let a = abs(x);
    let r = wg_log1p(a + a * a / (1.0 + sqrt(1.0 + a * a)));
    return wg_copysign(select(r, wg_log(a) + 0.6931471805599453, a > 1e18), x);
}

// acosh x = log1p(t + sqrt(t (t + 2))) with t = x - 1 (exact near 1, where acosh ~ sqrt(2t));
// log x + log 2 for huge x; NaN below 1.
fn wg_acosh(x: f32) -> f32 {
    let t = x - 1.0;
    let r = wg_log1p(t + sqrt(t * (t + 2.0)));
    return select(select(r, wg_log(x) + 0.6931471805599453, x > 1e18), wg_nan(x), x < 1.0);
}

// atanh |x| = log1p(2a / (1 - a)) / 2; ±inf at ±1, NaN beyond.
fn wg_atanh(x: f32) -> f32 {
    let a = abs(x);
    var r = 0.5 * wg_log1p(2.0 * a / (1.0 - a));
    r = select(r, wg_inf(x), a == 1.0);
    return select(wg_copysign(r, x), wg_nan(x), a > 1.0);
}

// log Γ(2 + e) for |e| <= 1/2: its Taylor series (1 - γ) e + Σ_k (-1)^k (ζ(k) - 1) / k e^k to
// k = 14 (the terms fall as 4^-k).
fn wg_lgamma_near2(e: f32) -> f32 {
    return e * (0.42278433509846713 + e * (0.32246703342409805 + e * (-0.06735230105319737 + e * (0.020580808427784526 + e * (-0.007385551028673986 + e * (0.002890510330741523 + e * (-0.00119275391170326 + e * (0.0005096695247430426 + e * (-0.00022315475845357936 + e * (9.945751278180861e-05 + e * (-4.492623673813315e-05 + e * (2.0507212775670674e-05 + e * (-9.439488275268395e-06 + e * 4.374866789907486e-06)))))))))))));
}

// log Γ(x) for x > 0: the series about 2 on [1.5, 2.5]; on [0.5, 1.5) Γ(x) = Γ(x + 1) / x
// (x - 1 is exact, and log1p keeps the zero at 1); below 1/2 Γ(x) = Γ(x + 2) / (x (x + 1)); up
// to 8 the recurrence down into [1.5, 2.5]; from 8 on Stirling's series to 1/x^5.
fn wg_lgamma_pos(x: f32) -> f32 {
    if (x < 0.5) {
        return wg_lgamma_near2(x) - wg_log1p(x) - wg_log(x);
    }
    if (x < 1.5) {
        return wg_lgamma_near2(x - 1.0) - wg_log1p(x - 1.0);
    }
    if (x < 8.0) {
        var y = x;
        var p = 1.0;
        for (var k = 0; k < 6; k++) {
            if (y >= 2.5) {
                y = y - 1.0;
                p = p * y;
            }
        }
        return wg_lgamma_near2(y - 2.0) + wg_log(p);
    }
    let r = 1.0 / x;
    let r2 = r * r;
    let s = r * (8.3333333333333333e-2 + r2 * (-2.7777777777777778e-3 + r2 * 7.9365079365079365e-4));
    return select((x - 0.5) * (wg_log(x) - 1.0) + (s - 0.5 + 0.91893853320467274), x, x == wg_inf(x));
}

// |sin(pi x)| from the distance to the nearest integer (exact), so zeros land on integers.
fn wg_abs_sinpi(x: f32) -> f32 {
    return abs(wg_sin(3.141592653589793 * (x - round(x))));
}

// log |Γ(x)| (as jax.scipy.special.gammaln): wg_lgamma_pos for x > 0, the reflection
// log(pi / |sin(pi x)|) - log Γ(1 - x) below; +inf at 0, -1, -2, ...; NaN through.
fn wg_lgamma(x: f32) -> f32 {
    if (x > 0.0) {
        return wg_lgamma_pos(x);
    }
    let r = 1.1447298858494002 - wg_log(wg_abs_sinpi(x)) - wg_lgamma_pos(1.0 - x);
    return select(r, wg_inf(x), x == round(x));
}

// ψ(x) = d/dx log Γ(x): the recurrence ψ(x) = ψ(x + 1) - 1/x up to 6, then the asymptotic
// series to 1/x^10; the reflection ψ(x) = ψ(1 - x) - pi cot(pi x) below 0; NaN at the poles
// 0, -1, -2, ... (as JAX).
fn wg_digamma(x: f32) -> f32 {
    var acc = 0.0;
    var y = x;
    if (x <= 0.0) {
        acc = -3.141592653589793 / wg_tan(3.141592653589793 * (x - round(x)));
        y = 1.0 - x;
    }
    for (var k = 0; k < 6; k++) {
        if (y < 6.0) {
            acc = acc - 1.0 / y;
            y = y + 1.0;
        }
    }
    let r = 1.0 / y;
    let r2 = r * r;
    let s = r2 * (8.3333333333333333e-2 + r2 * (-8.3333333333333333e-3 + r2 * (3.9682539682539683e-3 + r2 * (-4.1666666666666667e-3 + r2 * 7.5757575757575758e-3))));
    let v = acc + wg_log(y) - 0.5 * r - s;
    return select(v, wg_nan(x), x <= 0.0 && x == round(x));
}

// The polygamma function ψ^(n)(x) = (-1)^(n+1) n! Σ_k 1/(x + k)^(n+1), n >= 1, for x > 0
// (NaN at and below 0): the terms below 10 summed, the rest by Euler–Maclaurin to B10.
fn wg_polygamma(n: i32, x: f32) -> f32 {
    let s = f32(n + 1);
    var acc = 0.0;
    var y = x;
    for (var k = 0; k < 10; k++) {
        if (y < 10.0) {
            var p = 1.0;
            for (var j = 0; j <= n; j++) {
                p = p / y;
            }
            acc = acc + p;
            y = y + 1.0;
        }
    }
    let r = 1.0 / y;
    var pn = 1.0;
    var fact = 1.0;
    for (var j = 1; j <= n; j++) {
        pn = pn * r;
        fact = fact * f32(j);
    }
    // ∫ + f/2, then B2j/(2j)! s (s+1) ... (s+2j-2) / y^(s+2j-1) for j = 1..5.
    var tail = pn / f32(n) + 0.5 * pn * r;
    let r2 = r * r;
    var c = s;
    var yp = pn * r2;
    tail = tail + 8.3333333333333333e-2 * c * yp;
    c = c * (s + 1.0) * (s + 2.0);
    yp = yp * r2;
    tail = tail - 1.3888888888888889e-3 * c * yp;
    c = c * (s + 3.0) * (s + 4.0);
    yp = yp * r2;
    tail = tail + 3.3068783068783069e-5 * c * yp;
    c = c * (s + 5.0) * (s + 6.0);
    yp = yp * r2;
    tail = tail - 8.2671957671957672e-7 * c * yp;
    c = c * (s + 7.0) * (s + 8.0);
    yp = yp * r2;
    tail = tail + 2.0876756987868099e-8 * c * yp;
    let v = select(-fact, fact, (n & 1) == 1) * (acc + tail);
    return select(v, wg_nan(x), !(x > 0.0));
}

// log(e^a + e^b) without overflow: max + log1p(e^-|a - b|); equal infinities give themselves
// (-inf for two -infs, as JAX), NaN through.
fn wg_logaddexp(a: f32, b: f32) -> f32 {
    let m = wg_max(a, b);
    let d = a - b;
    return select(m + wg_log1p(wg_exp(-abs(d))), a + b, wg_isnan(d));
}

// x log y, 0 where x = 0 (as jax.scipy.special.xlogy, whatever y is).
fn wg_xlogy(x: f32, y: f32) -> f32 {
    return select(x * wg_log(y), 0.0, x == 0.0);
}

// The total order of sort's (value, index) pairs: values ascending, NaN last, ties by index
// (so the bitonic network is stable).
fn wg_sort_before(av: f32, ai: f32, bv: f32, bi: f32) -> bool {
    let an = wg_isnan(av);
    let bn = wg_isnan(bv);
    var lt = ai < bi;
    if (!an && !bn && av != bv) {
        lt = av < bv;
    }
    if (an != bn) {
        lt = bn;
    }
    return lt;
}
