//! A program's graph: each instruction applied to the values before it, adapting to their
//! shapes. The same function runs under every transform (its closures see per-example shapes
//! under `vmap`), so the graph it builds is whatever the transform makes of it.

use crate::program::{Bin, Cum, Mv, Op, Program, Red, Rng, Un, normal};
use wgrad::prelude::*;

/// The program's output for input `x`: the last value that depends on it.
pub fn build(p: &Program, x: &Tensor) -> Tensor {
    let (mut vals, depends) = values(p, x);
    let last = depends.iter().rposition(|&d| d).unwrap_or(0);
    vals.swap_remove(last)
}

/// Every value of the program (the input first), and whether each depends on the input.
pub fn values(p: &Program, x: &Tensor) -> (Vec<Tensor>, Vec<bool>) {
    let mut vals: Vec<Tensor> = vec![x.clone()];
    let mut depends = vec![true];
    for op in &p.ops {
        let n = vals.len();
        let get = |k: usize| vals[k % n].clone();
        let reads = operands(op);
        depends.push(reads.iter().any(|&k| depends[k % n]));
        let first = reads.first().map(|&k| get(k));
        let v = apply(op, &get, p.limit);
        // Values past the size limit fall back to a cheap function of the first operand.
        let v = match first {
            Some(a) if v.numel() > p.limit.max(a.numel()) || v.rank() > 4 => a.tanh(),
            _ => v,
        };
        vals.push(v);
    }
    (vals, depends)
}

/// The values an instruction reads (unreduced numbers).
fn operands(op: &Op) -> Vec<usize> {
    match *op {
        Op::Const(..) => vec![],
        Op::Un(_, a)
        | Op::Reduce(_, a, ..)
        | Op::Move(_, a, _)
        | Op::Take(a, ..)
        | Op::Cum(_, a, ..)
        | Op::Sort(a)
        | Op::Softmax(a, _)
        | Op::Fori(a, _)
        | Op::Cholesky(a)
        | Op::Fft(a, _)
        | Op::Segment(a, _) => vec![a],
        Op::Bin(_, a, b)
        | Op::Matmul(a, b)
        | Op::Concat(a, b, _)
        | Op::ScatterAdd(a, b, ..)
        | Op::Solve(a, b)
        | Op::Conv(a, b, _)
        | Op::Einsum(a, b, _)
        | Op::While(a, b, _) => vec![a, b],
        Op::Select(a, b, c) | Op::Scan(a, b, c, _) | Op::Cond(a, b, c) => vec![a, b, c],
    }
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// The shape `a` and `b` broadcast to, if they do.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for k in 0..r {
        let da = if k + a.len() >= r {
            a[k + a.len() - r]
        } else {
            1
        };
        let db = if k + b.len() >= r {
            b[k + b.len() - r]
        } else {
            1
        };
        out[k] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// `a / √(1 + a²/64)`: the same near zero, never past ±8, smooth. Periodic functions take
/// their arguments through it: `cos(29332.9)` with float32's error in its argument (a few
/// hundredths) is off by 0.5 %, which says nothing about the kernels.
fn bounded(a: &Tensor) -> Tensor {
    a / &(a.square() * (1.0 / 64.0) + 1.0).sqrt()
}

/// `sin` and `cos` of bounded arguments.
trait Periodic {
    fn psin(&self) -> Tensor;
    fn pcos(&self) -> Tensor;
}

impl Periodic for Tensor {
    fn psin(&self) -> Tensor {
        bounded(self).sin()
    }
    fn pcos(&self) -> Tensor {
        bounded(self).cos()
    }
}

/// The mean of every element: a scalar that broadcasts anywhere.
fn mean_all(t: &Tensor) -> Tensor {
    t.sum_all() * (1.0 / t.numel().max(1) as f32)
}

/// `b` as something that broadcasts into `a`'s shape exactly (itself, else its mean).
fn into_shape_of(b: &Tensor, a: &Tensor) -> Tensor {
    match broadcast(a.shape(), b.shape()) {
        Some(s) if s == a.shape() => b.clone(),
        _ => mean_all(b),
    }
}

fn axis_of(t: &Tensor, ax: u8) -> usize {
    ax as usize % t.rank().max(1)
}

fn apply(op: &Op, get: &dyn Fn(usize) -> Tensor, limit: usize) -> Tensor {
    match *op {
        Op::Const(ref s, seed) => normal(s, seed),
        Op::Un(u, a) => unary(u, &get(a)),
        Op::Bin(b, x, y) => {
            let (x, y) = (get(x), get(y));
            let y = match broadcast(x.shape(), y.shape()) {
                Some(s) if numel(&s) <= 4 * x.numel().max(y.numel()) => y,
                _ => mean_all(&y),
            };
            binary(b, &x, &y)
        }
        Op::Select(a, b, c) => {
            let a = get(a);
            let (b, c) = (into_shape_of(&get(b), &a), into_shape_of(&get(c), &a));
            where_(&a.greater(&b), &a, &(&c * 2.0))
        }
        Op::Reduce(r, a, ax, keep) => reduce(r, &get(a), ax, keep),
        Op::Matmul(a, b) => matmul(&get(a), &get(b), limit),
        Op::Move(m, a, p) => movement(m, &get(a), p),
        Op::Concat(a, b, ax) => {
            let (a, b) = (get(a), get(b));
            if a.rank() == 0 {
                return stack(&[a.clone(), b.sum_all()], 0);
            }
            let k = axis_of(&a, ax);
            let fits = a.rank() == b.rank()
                && (0..a.rank()).all(|d| d == k || a.shape()[d] == b.shape()[d]);
            let b = if fits { b } else { a.flip([k as isize]).psin() };
            concat(&[a, b], k as isize)
        }
        Op::Take(a, ax, seed) => {
            let a = get(a);
            if a.rank() == 0 {
                return a.psin();
            }
            let k = axis_of(&a, ax);
            a.take(indices(a.shape()[k], seed), k as isize)
        }
        Op::ScatterAdd(a, b, ax, seed) => {
            let (a, b) = (get(a), get(b));
            if a.rank() == 0 {
                return a.pcos();
            }
            let k = axis_of(&a, ax);
            let idx = indices(a.shape()[k], seed);
            let mut s = a.shape().to_vec();
            s[k] = idx.numel();
            let upd = if b.shape() == s.as_slice() {
                b
            } else {
                mean_all(&b).broadcast_to(&s)
            };
            a.scatter_add(idx, &upd, k as isize)
        }
        Op::Cum(c, a, ax, rev) => {
            let a = get(a);
            if a.rank() == 0 {
                return a.exp();
            }
            let k = axis_of(&a, ax) as isize;
            let a = if rev { a.flip([k]) } else { a };
            let c = match c {
                Cum::Prod if a.shape()[k as usize] > LONGEST_PRODUCT => Cum::Sum,
                c => c,
            };
            match c {
                Cum::Sum => a.cumsum(k),
                Cum::Prod => near_one(&a, k as usize).cumprod(k),
                Cum::Max => a.cummax(k),
                Cum::LogSumExp => a.logcumsumexp(k),
            }
        }
        Op::Sort(a) => {
            let a = get(a);
            match a.rank() {
                0 => a.pcos(),
                // In rows of thousands some values lie within an ulp of each other, where
                // float32 and float64 (and so the device and the reference) may order them
                // differently: the sorted values agree, their derivatives' order does not.
                r if a.shape()[r - 1] > LONGEST_SORT => a.cumsum(-1),
                _ => a.sort(-1),
            }
        }
        Op::Softmax(a, p) => {
            let a = get(a);
            if a.rank() == 0 {
                return a.sigmoid();
            }
            let k = axis_of(&a, p >> 1) as isize;
            if p & 1 == 0 {
                a.softmax(k)
            } else {
                a.log_softmax(k)
            }
        }
        Op::Scan(a, b, c, reverse) => scan_op(&get(a), &get(b), &get(c), reverse),
        Op::Fori(a, steps) => fori_loop(
            0,
            steps as i32,
            |i, c: &Tensor| c * 0.8 + c.psin() * 0.3 + i.cast(DType::F32) * 0.05,
            &get(a),
        ),
        Op::Cond(p, a, b) => {
            let (p, a, b) = (get(p), get(a), get(b));
            let b = into_shape_of(&b, &a);
            cond(
                &p.sum_all().greater(&Tensor::scalar(0.0)),
                |(a, b): &(Tensor, Tensor)| a.psin() * b,
                |(a, b): &(Tensor, Tensor)| a.pcos() + b,
                &(a, b),
            )
        }
        Op::Cholesky(a) => match spd(&get(a)) {
            Some(m) => wgrad::linalg::cholesky(&m),
            None => get(a).tanh(),
        },
        Op::Solve(a, b) => {
            let (a, b) = (get(a), get(b));
            match spd(&a) {
                Some(m) => wgrad::linalg::solve(&m, &(&a + &into_shape_of(&b, &a))),
                None => a.tanh(),
            }
        }
        Op::Conv(a, b, p) => conv(&get(a), &get(b), p),
        Op::While(a, b, most) => contract_while(&get(a), &get(b), most),
        Op::Einsum(a, b, p) => einsum_op(&get(a), &get(b), p),
        Op::Fft(a, real) => {
            let a = get(a);
            if a.rank() == 0 {
                return a.square();
            }
            if real {
                let (re, im) = wgrad::fft::rfft(&a);
                (re.square() + im.square()) * (1.0 / a.shape()[a.rank() - 1] as f32)
            } else {
                let (re, im) = wgrad::fft::fft(&a, &a.pcos());
                (re + im) * (1.0 / (a.shape()[a.rank() - 1] as f32).sqrt())
            }
        }
        Op::Segment(a, seed) => {
            let a = get(a);
            if a.rank() == 0 {
                return a.psin();
            }
            let mut r = Rng(seed);
            let segments = 1 + r.below(4);
            let ids: Vec<i32> = (0..a.shape()[0])
                .map(|_| r.below(segments) as i32)
                .collect();
            let n = ids.len();
            segment_sum(&a, Tensor::from_vec(ids, [n]), segments)
        }
    }
}

/// `a`'s last two axes as an image (its third-last as channels, if any) convolved with a
/// constant 3×3 kernel scaled by `b`'s mean; too small an image is left as it is.
fn conv(a: &Tensor, b: &Tensor, p: u8) -> Tensor {
    let r = a.rank();
    if r < 2 || a.shape()[r - 1] < 3 || a.shape()[r - 2] < 3 {
        return a.psin();
    }
    let (h, w) = (a.shape()[r - 2], a.shape()[r - 1]);
    let c = if r >= 3 { a.shape()[r - 3] } else { 1 };
    let batch = a.numel() / (c * h * w);
    let img = a.reshape([batch, c, h, w]);
    let out_c = 1 + (p as usize & 1);
    let kernel =
        normal(&[out_c, c, 3, 3], p as u64) * (mean_all(b).sigmoid() * (1.0 / (3 * c) as f32));
    let opts = Conv2dOptions::default()
        .stride(1 + (p as usize >> 1 & 1))
        .padding((p as usize >> 2) % 2);
    img.conv2d(&kernel, opts)
}

/// An einsum chosen from the shapes: a contraction of two operands of the same shape, or a
/// transpose, diagonal or sum of one.
fn einsum_op(a: &Tensor, b: &Tensor, p: u8) -> Tensor {
    let letters = ["", "i", "ij", "ijk", "ijkl"];
    let r = a.rank();
    let s = letters[r];
    if r >= 1 && a.shape() == b.shape() {
        // Contract one axis, keep the others.
        let k = p as usize % r;
        let kept: String = s
            .chars()
            .enumerate()
            .filter(|&(n, _)| n != k)
            .map(|(_, c)| c)
            .collect();
        return einsum(&format!("{s},{s}->{kept}"), &[a, b]);
    }
    match r {
        2 if a.shape()[0] == a.shape()[1] && p & 1 == 0 => einsum("ii->i", &[a]),
        2 => einsum("ij->ji", &[a]),
        3 => einsum("ijk->kj", &[a]),
        _ => a.pcos(),
    }
}

fn unary(u: Un, a: &Tensor) -> Tensor {
    match u {
        Un::Sin => a.psin(),
        Un::Cos => a.pcos(),
        Un::Tanh => a.tanh(),
        Un::Sigmoid => a.sigmoid(),
        Un::ExpTanh => a.tanh().exp(),
        Un::LogSquare => (a.square() + 1.0).log(),
        Un::SqrtSquare => (a.square() + 0.1).sqrt(),
        Un::Abs => a.abs(),
        Un::Neg => -a,
        Un::Square => a.square(),
        Un::Erf => a.erf(),
        Un::Atan => a.atan(),
        Un::Asinh => a.asinh(),
        Un::Softplus => a.softplus(),
        Un::Relu => a.relu(),
        Un::Reciprocal => (a.square() + 1.0).reciprocal(),
        Un::Gelu => a.gelu(),
        Un::Silu => a.silu(),
        Un::CustomSin => {
            // A custom rule (the exact derivative, so the differences agree with it).
            let f = custom_vjp(
                |x: &Tensor| (x.sin(), x.clone()),
                |x: &Tensor, ct: &Tensor| ct * x.cos(),
            );
            f(&bounded(a))
        }
    }
}

fn binary(b: Bin, x: &Tensor, y: &Tensor) -> Tensor {
    match b {
        Bin::Add => x + y,
        Bin::Sub => x - y,
        Bin::Mul => x * y,
        Bin::Div => x / &(y.square() + 1.0),
        Bin::Maximum => x.maximum(y),
        Bin::Minimum => x.minimum(y),
        Bin::Pow => (x.square() + 0.5).pow(y.tanh()),
        Bin::Atan2 => x.atan2(&(y.square() + 0.5)),
        Bin::LogAddExp => x.logaddexp(y),
    }
}

/// Factors near one whose products along `axis` stay between e^-½ and e^½.
fn near_one(a: &Tensor, axis: usize) -> Tensor {
    a.tanh() * (0.5 / a.shape()[axis] as f32) + 1.0
}

/// Rows longer than this are not sorted (see `Op::Sort`): about n²/2 pairs among ~10⁷ float32
/// values in a unit range makes near-ties likely past a few hundred.
const LONGEST_SORT: usize = 256;

/// Products of more factors than this are not drawn: a float32 product of 70,001 factors near
/// one is off by ~5e-4 even computed one factor at a time on the host (rounding of the running
/// product), so no tolerance could judge it.
const LONGEST_PRODUCT: usize = 4096;

fn reduce(r: Red, a: &Tensor, ax: u8, keep: bool) -> Tensor {
    if a.rank() == 0 {
        return a.tanh();
    }
    let k = axis_of(a, ax) as isize;
    let ax = [k];
    let r = match r {
        Red::Prod if a.shape()[k as usize] > LONGEST_PRODUCT => Red::Sum,
        r => r,
    };
    match (r, keep) {
        (Red::Sum, false) => a.sum_axes(ax),
        (Red::Sum, true) => a.sum_keepdim(ax),
        (Red::Mean, false) => a.mean_axes(ax),
        (Red::Mean, true) => a.mean_keepdim(ax),
        (Red::Max, false) => a.max_axes(ax),
        (Red::Max, true) => a.max_keepdim(ax),
        (Red::Min, false) => a.min_axes(ax),
        (Red::Min, true) => a.min_keepdim(ax),
        (Red::Prod, false) => near_one(a, k as usize).prod_axes(ax),
        (Red::Prod, true) => near_one(a, k as usize).prod_keepdim(ax),
        (Red::LogSumExp, false) => a.logsumexp(k),
        (Red::LogSumExp, true) => a.logsumexp(k).expand_dims(k),
        (Red::Var, false) => a.var_axes(ax),
        (Red::Var, true) => a.var_keepdim(ax),
    }
}

fn matmul(a: &Tensor, b: &Tensor, limit: usize) -> Tensor {
    match a.rank() {
        0 => a * &mean_all(b),
        1 if a.numel() * a.numel() > limit => a * &mean_all(b),
        1 => {
            // The outer product with itself.
            let n = a.shape()[0];
            a.expand_dims(-1).matmul(&a.expand_dims(0)) * (1.0 / (n as f32).sqrt())
        }
        r => {
            let k = a.shape()[r - 1];
            let ok = b.rank() >= 2
                && b.shape()[b.rank() - 2] == k
                && broadcast(&a.shape()[..r - 2], &b.shape()[..b.rank() - 2]).is_some();
            let m = a.shape()[r - 2];
            let y = if ok {
                let n = b.shape()[b.rank() - 1];
                if a.numel() / k * n > limit {
                    return a * &mean_all(b);
                }
                a.matmul(b)
            } else {
                if a.numel() / k * m > limit {
                    return a * &mean_all(b);
                }
                a.matmul(&a.mt())
            };
            y * (1.0 / (k as f32).sqrt())
        }
    }
}

fn movement(m: Mv, a: &Tensor, p: u8) -> Tensor {
    let r = a.rank();
    let s = a.shape().to_vec();
    if r == 0 {
        return a.expand_dims(0);
    }
    let k = p as usize % r;
    match m {
        Mv::Transpose => {
            let mut perm: Vec<usize> = (0..r).collect();
            perm.rotate_left(1 + p as usize % r);
            if p & 0x80 != 0 && r >= 2 {
                perm.swap(0, r - 1);
            }
            a.transpose(perm)
        }
        Mv::Reshape => {
            if r > 1 {
                let mut t = s.clone();
                let merged = t.remove(k % (r - 1)) * t[k % (r - 1)];
                t[k % (r - 1)] = merged;
                a.reshape(t)
            } else {
                let n = s[0];
                let d = (2..=n).find(|d| n % d == 0).unwrap_or(1);
                a.reshape([d, n / d])
            }
        }
        Mv::Slice => {
            let n = s[k];
            let range = match (p >> 4) % 3 {
                0 => 1.min(n - 1)..n,
                1 => 0..(n - 1).max(1),
                _ => n / 3..n - n / 3,
            };
            a.slice_axis(k as isize, range)
        }
        Mv::Pad => {
            let (mut lo, mut hi) = (vec![0; r], vec![0; r]);
            lo[k] = (p as usize >> 4) % 3;
            hi[k] = (p as usize >> 6) % 3;
            a.pad(lo, hi)
        }
        Mv::Flip => a.flip([k as isize]),
        Mv::Broadcast => {
            let mut t = s.clone();
            t.insert(0, 2 + (p as usize >> 4) % 2);
            a.expand_dims(0).broadcast_to(t)
        }
        Mv::Squeeze => match s.iter().position(|&d| d == 1) {
            Some(d) => a.squeeze([d as isize]),
            None => a.expand_dims((p as usize % (r + 1)) as isize),
        },
    }
}

/// Indices along an axis of length `n`: a few, negative ones included (they wrap once).
fn indices(n: usize, seed: u64) -> Tensor {
    let mut r = Rng(seed);
    let len = 1 + r.below(5);
    let v: Vec<i32> = (0..len).map(|_| r.below(2 * n) as i32 - n as i32).collect();
    Tensor::from_vec(v, [len])
}

/// A well-conditioned symmetric positive definite matrix from `a`'s last two axes (at most
/// 16 rows), or `None` where there are not two axes.
fn spd(a: &Tensor) -> Option<Tensor> {
    let r = a.rank();
    if r < 2 || a.shape()[r - 2] > 16 {
        return None;
    }
    let (m, k) = (a.shape()[r - 2], a.shape()[r - 1]);
    Some(a.matmul(&a.mt()) * (1.0 / k as f32) + Tensor::eye(m))
}

/// A scan over `b`'s leading axis (at most 6 steps) carrying `a`, with `c`'s mean captured.
fn scan_op(a: &Tensor, b: &Tensor, c: &Tensor, reverse: bool) -> Tensor {
    let xs = if b.rank() == 0 {
        b.expand_dims(0).broadcast_to([3])
    } else {
        b.slice_axis(0, 0..b.shape()[0].min(6))
    };
    let k = mean_all(c).sigmoid();
    let (carry, ys) = scan(
        |h: &Tensor, s: &Tensor| {
            let n = (h * &k + &into_shape_of(s, h)).tanh();
            (n.clone(), n.sum_all())
        },
        a,
        &xs,
        reverse,
    );
    carry + ys.sum_all() * 0.1
}

/// `a` contracted (`0.6·c + 0.2·tanh c`) while its mean square exceeds `0.2·(mean(b²) + 0.1)`,
/// at most `most` steps: a `while_loop` whose trip count depends on the values.
fn contract_while(a: &Tensor, b: &Tensor, most: u8) -> Tensor {
    let bound = (mean_all(&b.square()) + 0.1) * 0.2;
    let int = |v: i32| Tensor::from_vec(vec![v], Vec::<usize>::new());
    let (hi, one) = (int(most as i32), int(1));
    let (c, _) = while_loop(
        |(c, i): &(Tensor, Tensor)| {
            let big = mean_all(&c.square()).greater(&bound).cast(DType::F32);
            let more = i.less(&hi).cast(DType::F32);
            (big * more).greater(&Tensor::scalar(0.5))
        },
        |(c, i): &(Tensor, Tensor)| (c * 0.6 + c.tanh() * 0.2, i + &one),
        &(a.clone(), int(0)),
    );
    c
}
