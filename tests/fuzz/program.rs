//! Random programs for differential testing: a list of instructions, each naming earlier values
//! by number (taken modulo how many values exist when it runs), so that deleting any
//! instruction leaves a valid program — shrinking is greedy deletion. Every instruction adapts
//! to its operands' shapes (an operand that does not broadcast becomes its mean, a scalar), and
//! every function is kept inside its domain (`log(1 + x²)`, `x / (1 + y²)`, `exp(tanh x)`), so
//! any program is a smooth-enough function of its input with finite values.

use wgrad::prelude::*;

/// SplitMix64: small, seedable, good enough to draw programs and data from.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    /// A standard normal number (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let v = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

/// Host data of `shape` drawn from `seed`: standard normal values.
pub fn normal_data(shape: &[usize], seed: u64) -> Vec<f32> {
    let mut r = Rng(seed ^ 0x5EED_DA7A);
    (0..shape.iter().product::<usize>())
        .map(|_| r.normal())
        .collect()
}

/// A host-data tensor (a realized leaf, so the reference reads it as it is).
pub fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(normal_data(shape, seed), shape)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Un {
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    ExpTanh,
    LogSquare,
    SqrtSquare,
    Abs,
    Neg,
    Square,
    Erf,
    Atan,
    Asinh,
    Softplus,
    Relu,
    Reciprocal,
    Gelu,
    Silu,
    CustomSin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    Pow,
    Atan2,
    LogAddExp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Red {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    LogSumExp,
    Var,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cum {
    Sum,
    Prod,
    Max,
    LogSumExp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mv {
    Transpose,
    Reshape,
    Slice,
    Pad,
    Flip,
    Broadcast,
    Squeeze,
}

/// One instruction. Operands are numbers of earlier values (value 0 is the input), taken
/// modulo the number of values so far.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A constant of host data (a leaf of the graph).
    Const(Vec<usize>, u64),
    Un(Un, usize),
    Bin(Bin, usize, usize),
    /// `where(a > b, a, c)`.
    Select(usize, usize, usize),
    Reduce(Red, usize, u8, bool),
    Matmul(usize, usize),
    Move(Mv, usize, u8),
    Concat(usize, usize, u8),
    Take(usize, u8, u64),
    ScatterAdd(usize, usize, u8, u64),
    Cum(Cum, usize, u8, bool),
    Sort(usize),
    Softmax(usize, u8),
    /// A scan over the leading axis of the second operand, carrying the first, with the third
    /// captured by the body; the bool runs it in reverse.
    Scan(usize, usize, usize, bool),
    /// `fori_loop` of a few steps of a contraction.
    Fori(usize, u8),
    /// `cond(sum(p) > 0, ...)` of two branches over the other operands.
    Cond(usize, usize, usize),
    Cholesky(usize),
    Solve(usize, usize),
    /// A 3×3 convolution of the operand's last two axes (as an image) with a constant kernel
    /// scaled by the second operand; the byte picks stride, padding and output channels.
    Conv(usize, usize, u8),
    /// An einsum of one or two operands, the spec chosen from their shapes by the byte.
    Einsum(usize, usize, u8),
    /// The power spectrum of `rfft` along the last axis, or `re + im` of `fft`.
    Fft(usize, bool),
    /// `segment_sum` of the leading axis into a few segments.
    Segment(usize, u64),
    /// A `while_loop` contracting the first operand while its mean square exceeds a bound
    /// from the second (at most this many steps): a trip count that depends on values.
    While(usize, usize, u8),
}

impl Op {
    /// Whether reverse mode through the instruction is refused (as JAX refuses it).
    pub fn forward_only(&self) -> bool {
        matches!(self, Op::While(..))
    }
}

/// A program: the input's shape, the instructions, and the size past which a value falls back
/// to a cheaper instruction (so values never grow without bound).
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub input: Vec<usize>,
    pub ops: Vec<Op>,
    pub limit: usize,
}

impl Program {
    /// Whether only forward-mode checks apply (an instruction refuses reverse mode).
    pub fn forward_only(&self) -> bool {
        self.ops.iter().any(Op::forward_only)
    }
    /// A program literal that a regression test can paste.
    pub fn to_rust(&self) -> String {
        let ops: Vec<String> = self.ops.iter().map(op_rust).collect();
        format!(
            "Program {{ input: vec!{:?}, limit: {}, ops: vec![\n        {},\n    ] }}",
            self.input,
            self.limit,
            ops.join(",\n        ")
        )
    }
}

fn op_rust(op: &Op) -> String {
    match op {
        Op::Const(s, seed) => format!("Op::Const(vec!{s:?}, {seed})"),
        Op::Un(u, a) => format!("Op::Un(Un::{u:?}, {a})"),
        Op::Bin(b, x, y) => format!("Op::Bin(Bin::{b:?}, {x}, {y})"),
        Op::Reduce(r, a, ax, k) => format!("Op::Reduce(Red::{r:?}, {a}, {ax}, {k})"),
        Op::Move(m, a, p) => format!("Op::Move(Mv::{m:?}, {a}, {p})"),
        Op::Cum(c, a, ax, rev) => format!("Op::Cum(Cum::{c:?}, {a}, {ax}, {rev})"),
        other => format!("Op::{other:?}"),
    }
}

/// Shapes that cross the kernels' edges: workgroup sizes, the driver's loop cap, odd sizes.
const DIMS: [usize; 9] = [1, 2, 3, 4, 5, 7, 8, 13, 33];

/// Draws a program: `size` 0 is small (Jacobians are checked), 1 medium, 2 large (an axis
/// crossing the 65,535-iteration cap of software drivers, or a workgroup edge), 3 long (a
/// chain of 40 to 90 elementwise instructions and constants: past the fusion depth and the
/// device's binding limit in one kernel).
pub fn generate(seed: u64, size: u8) -> Program {
    let mut r = Rng(seed);
    let input: Vec<usize> = match size {
        0 => (0..1 + r.below(2)).map(|_| r.pick(&[1, 2, 3, 4])).collect(),
        1 | 3 => (0..1 + r.below(3)).map(|_| r.pick(&DIMS)).collect(),
        _ => match r.below(4) {
            0 => vec![70_001],
            1 => vec![3, 257],
            2 => vec![65, 63],
            _ => vec![2, 1025],
        },
    };
    let limit = match size {
        0 => 64,
        1 | 3 => 4096,
        _ => 2 * input.iter().product::<usize>(),
    };
    let n_ops = match size {
        2 => 4 + r.below(8),
        3 => 40 + r.below(50),
        _ => 4 + r.below(14),
    };
    let mut ops = Vec::new();
    // Shapes as the generator expects them (only to draw sensible constants).
    let mut shapes: Vec<Vec<usize>> = vec![input.clone()];
    for _ in 0..n_ops {
        let n = shapes.len();
        // Mostly the most recent values, so that chains form.
        let pick = |r: &mut Rng| {
            if r.chance(0.6) {
                n - 1 - r.below(2.min(n))
            } else {
                r.below(n)
            }
        };
        let a = pick(&mut r);
        let b = pick(&mut r);
        let c = pick(&mut r);
        // Long chains: constants, unary and binary instructions and selects only.
        let kind = if size == 3 {
            r.pick(&[0, 0, 0, 2, 3, 6, 7, 8, 10])
        } else {
            r.below(26)
        };
        let op = match kind {
            0 | 1 => {
                let like = &shapes[r.below(n)];
                let mut s: Vec<usize> = like[r.below(like.len() + 1)..].to_vec();
                if !s.is_empty() && r.chance(0.3) {
                    let k = r.below(s.len());
                    s[k] = 1;
                }
                Op::Const(s, r.next() % 1000)
            }
            2..=5 => Op::Un(
                r.pick(&[
                    Un::Sin,
                    Un::Cos,
                    Un::Tanh,
                    Un::Sigmoid,
                    Un::ExpTanh,
                    Un::LogSquare,
                    Un::SqrtSquare,
                    Un::Abs,
                    Un::Neg,
                    Un::Square,
                    Un::Erf,
                    Un::Atan,
                    Un::Asinh,
                    Un::Softplus,
                    Un::Relu,
                    Un::Reciprocal,
                    Un::Gelu,
                    Un::Silu,
                    Un::CustomSin,
                ]),
                a,
            ),
            6..=9 => Op::Bin(
                r.pick(&[
                    Bin::Add,
                    Bin::Sub,
                    Bin::Mul,
                    Bin::Div,
                    Bin::Maximum,
                    Bin::Minimum,
                    Bin::Pow,
                    Bin::Atan2,
                    Bin::LogAddExp,
                ]),
                a,
                b,
            ),
            10 => Op::Select(a, b, c),
            11 | 12 => Op::Reduce(
                r.pick(&[
                    Red::Sum,
                    Red::Mean,
                    Red::Max,
                    Red::Min,
                    Red::Prod,
                    Red::LogSumExp,
                    Red::Var,
                ]),
                a,
                r.below(4) as u8,
                r.chance(0.5),
            ),
            13 => Op::Matmul(a, b),
            14 | 15 => Op::Move(
                r.pick(&[
                    Mv::Transpose,
                    Mv::Reshape,
                    Mv::Slice,
                    Mv::Pad,
                    Mv::Flip,
                    Mv::Broadcast,
                    Mv::Squeeze,
                ]),
                a,
                r.below(256) as u8,
            ),
            16 => Op::Concat(a, b, r.below(4) as u8),
            17 => {
                if r.chance(0.5) {
                    Op::Take(a, r.below(4) as u8, r.next() % 1000)
                } else {
                    Op::ScatterAdd(a, b, r.below(4) as u8, r.next() % 1000)
                }
            }
            18 => Op::Cum(
                r.pick(&[Cum::Sum, Cum::Prod, Cum::Max, Cum::LogSumExp]),
                a,
                r.below(4) as u8,
                r.chance(0.2),
            ),
            19 => {
                if r.chance(0.5) {
                    Op::Sort(a)
                } else {
                    Op::Softmax(a, r.below(8) as u8)
                }
            }
            20 => Op::Scan(a, b, c, r.chance(0.3)),
            21 => {
                if r.chance(0.5) {
                    Op::Fori(a, 1 + r.below(4) as u8)
                } else {
                    Op::Cond(a, b, c)
                }
            }
            24 => Op::While(a, b, 1 + r.below(6) as u8),
            22 => match r.below(4) {
                0 => Op::Conv(a, b, r.below(256) as u8),
                1 => Op::Einsum(a, b, r.below(256) as u8),
                2 => Op::Fft(a, r.chance(0.5)),
                _ => Op::Segment(a, r.next() % 1000),
            },
            _ => {
                if r.chance(0.5) {
                    Op::Cholesky(a)
                } else {
                    Op::Solve(a, b)
                }
            }
        };
        // The shapes are only a guide for constants: the tensors decide.
        let guess = shapes[a].clone();
        let shape = match &op {
            Op::Const(s, _) => s.clone(),
            Op::Reduce(_, _, ax, keep) if !guess.is_empty() => {
                let mut s = guess.clone();
                let k = *ax as usize % s.len();
                if *keep {
                    s[k] = 1
                } else {
                    s.remove(k);
                }
                s
            }
            _ => guess,
        };
        shapes.push(shape);
        ops.push(op);
    }
    Program { input, ops, limit }
}
