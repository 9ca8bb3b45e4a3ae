//! Test helpers: a small JSON reader, the conformance expression language, and comparisons.
#![allow(dead_code)]

pub mod mlp;
pub mod set3;

use std::collections::HashMap;
use wgrad::prelude::*;

/// Checks that a real adapter exists: in CI a missing adapter is a failure, never a skip.
/// `WGRAD_EXPECT_BACKEND` (set by `.ci/run`) makes sure the intended backend was found.
pub fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let info =
            wgrad::init().expect("no GPU adapter: tests need one (install mesa-vulkan-drivers)");
        if let Ok(want) = std::env::var("WGRAD_EXPECT_BACKEND") {
            assert_eq!(info.backend, want, "expected backend {want}, got {info}");
        }
    });
}

pub fn close(got: &[f32], want: &[f32], rtol: f32, atol: f32) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("length {} != {}", got.len(), want.len()));
    }
    let mut worst = (0.0f32, 0usize);
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        let excess = if excess.is_nan() {
            f32::INFINITY
        } else {
            excess
        };
        if excess > worst.0 {
            worst = (excess, k);
        }
    }
    if worst.0 > 0.0 {
        let k = worst.1;
        return Err(format!(
            "index {k}: got {} want {} (and maybe more)",
            got[k], want[k]
        ));
    }
    Ok(())
}

#[track_caller]
pub fn assert_close(t: &Tensor, shape: &[usize], want: &[f32], tol: f32) {
    assert_eq!(t.shape(), shape, "shape");
    if let Err(e) = close(&t.to_f32_vec(), want, tol, tol) {
        panic!(
            "values differ: {e}\n got {:?}\nwant {want:?}",
            t.to_f32_vec()
        );
    }
}

// ---------------------------------------------------------------- JSON

#[derive(Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }
    pub fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            _ => panic!("not a number: {self:?}"),
        }
    }
    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(kv) => kv.iter().map(|(k, _)| k.as_str()).collect(),
            _ => vec![],
        }
    }
}

pub fn parse_json(s: &str) -> Json {
    let b = s.as_bytes();
    let mut i = 0;
    value(b, &mut i)
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && (b[*i] as char).is_whitespace() {
        *i += 1;
    }
}

fn value(b: &[u8], i: &mut usize) -> Json {
    ws(b, i);
    match b[*i] {
        b'{' => {
            *i += 1;
            let mut kv = vec![];
            loop {
                ws(b, i);
                if b[*i] == b'}' {
                    *i += 1;
                    return Json::Obj(kv);
                }
                let Json::Str(k) = value(b, i) else {
                    panic!("key")
                };
                ws(b, i);
                assert_eq!(b[*i], b':');
                *i += 1;
                kv.push((k, value(b, i)));
                ws(b, i);
                if b[*i] == b',' {
                    *i += 1;
                }
            }
        }
        b'[' => {
            *i += 1;
            let mut a = vec![];
            loop {
                ws(b, i);
                if b[*i] == b']' {
                    *i += 1;
                    return Json::Arr(a);
                }
                a.push(value(b, i));
                ws(b, i);
                if b[*i] == b',' {
                    *i += 1;
                }
            }
        }
        b'"' => {
            *i += 1;
            let mut s = String::new();
            while b[*i] != b'"' {
                if b[*i] == b'\\' {
                    *i += 1;
                    s.push(match b[*i] {
                        b'n' => '\n',
                        b't' => '\t',
                        c => c as char,
                    });
                } else {
                    s.push(b[*i] as char);
                }
                *i += 1;
            }
            *i += 1;
            Json::Str(s)
        }
        b't' => {
            *i += 4;
            Json::Bool(true)
        }
        b'f' => {
            *i += 5;
            Json::Bool(false)
        }
        b'n' => {
            *i += 4;
            Json::Null
        }
        _ => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                *i += 1;
            }
            let txt = std::str::from_utf8(&b[start..*i]).unwrap();
            Json::Num(txt.parse().unwrap_or_else(|_| panic!("bad number {txt:?}")))
        }
    }
}

/// A JSON tensor `{"shape": [...], "data": [...]}` as (shape, values).
pub fn json_tensor(j: &Json) -> (Vec<usize>, Vec<f32>) {
    let shape = j
        .get("shape")
        .unwrap()
        .arr()
        .iter()
        .map(|v| v.num() as usize)
        .collect();
    let data = j
        .get("data")
        .unwrap()
        .arr()
        .iter()
        .map(|v| v.num() as f32)
        .collect();
    (shape, data)
}

pub fn to_tensor(j: &Json) -> Tensor {
    let (shape, data) = json_tensor(j);
    Tensor::from_vec(data, shape)
}

// ---------------------------------------------------------------- expressions

#[derive(Debug, Clone)]
pub enum Sexp {
    Atom(String),
    List(Vec<Sexp>),
}

pub fn parse_sexp(s: &str) -> Sexp {
    let tokens: Vec<String> = s
        .replace('(', " ( ")
        .replace(')', " ) ")
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut i = 0;
    let e = sexp(&tokens, &mut i);
    assert_eq!(i, tokens.len(), "trailing tokens in {s}");
    e
}

fn sexp(t: &[String], i: &mut usize) -> Sexp {
    if t[*i] == "(" {
        *i += 1;
        let mut items = vec![];
        while t[*i] != ")" {
            items.push(sexp(t, i));
        }
        *i += 1;
        Sexp::List(items)
    } else {
        *i += 1;
        Sexp::Atom(t[*i - 1].clone())
    }
}

pub fn ints(e: &Sexp) -> Vec<isize> {
    match e {
        Sexp::List(v) => v
            .iter()
            .map(|a| match a {
                Sexp::Atom(s) => s.parse().unwrap(),
                _ => panic!("expected integer"),
            })
            .collect(),
        Sexp::Atom(s) => vec![s.parse().unwrap()],
    }
}

pub fn uints(e: &Sexp) -> Vec<usize> {
    ints(e).into_iter().map(|v| v as usize).collect()
}

pub fn pair(e: &Sexp) -> [usize; 2] {
    let v = uints(e);
    [v[0], v[1]]
}

pub fn float(e: &Sexp) -> f32 {
    match e {
        Sexp::Atom(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("expected a number, got {s}")),
        _ => panic!("expected a number"),
    }
}

thread_local! {
    /// Whether `(fori N INIT BODY)` runs as a `while_loop` (i < N) instead of a `fori_loop`.
    pub static FORI_AS_WHILE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Evaluates an expression with tensor ops; `args` binds names to tensors.
pub fn eval(e: &Sexp, args: &HashMap<String, Tensor>) -> Tensor {
    match e {
        Sexp::Atom(a) => match args.get(a) {
            Some(t) => t.clone(),
            None => Tensor::scalar(
                a.parse::<f32>()
                    .unwrap_or_else(|_| panic!("unknown name {a}")),
            ),
        },
        Sexp::List(items) => {
            let Sexp::Atom(op) = &items[0] else {
                panic!("operator must be an atom")
            };
            if op == "fori" {
                // (fori N INIT BODY): `carry` in BODY is the current value; wgrad's
                // fori_loop, so the oracle checks it under every transform.
                let Sexp::Atom(n) = &items[1] else {
                    panic!("fori count must be a literal")
                };
                let n: i32 = n.parse().expect("fori count");
                let init = eval(&items[2], args);
                let body = |_i: &Tensor, c: &Tensor| {
                    let mut env = args.clone();
                    env.insert("carry".into(), c.clone());
                    eval(&items[3], &env)
                };
                if FORI_AS_WHILE.with(|w| w.get()) {
                    // The same loop as a while_loop over (i, carry) while i < N.
                    let int = |v: i32| Tensor::from_vec(vec![v], Vec::<usize>::new());
                    let (hi, one) = (int(n), int(1));
                    let (_, c) = wgrad::while_loop(
                        |(i, _): &(Tensor, Tensor)| i.less(&hi),
                        |(i, c): &(Tensor, Tensor)| (i + &one, body(i, c)),
                        &(int(0), init),
                    );
                    return c;
                }
                return wgrad::fori_loop(0, n, body, &init);
            }
            let mut operands = vec![];
            let mut kw: HashMap<String, Sexp> = HashMap::new();
            let mut k = 1;
            while k < items.len() {
                match &items[k] {
                    Sexp::Atom(a) if a.starts_with(':') => {
                        kw.insert(a[1..].to_string(), items[k + 1].clone());
                        k += 2;
                    }
                    other => {
                        operands.push(eval(other, args));
                        k += 1;
                    }
                }
            }
            let x = &operands
                .first()
                .cloned()
                .unwrap_or_else(|| Tensor::scalar(0.0));
            let axes = || {
                kw.get("axes")
                    .map(|a| Axes::List(ints(a)))
                    .unwrap_or(Axes::All)
            };
            let keepdims = || matches!(kw.get("keepdims"), Some(Sexp::Atom(b)) if b == "true");
            let axis = || ints(&kw["axis"])[0];
            let indices = || {
                ints(&kw["indices"])
                    .into_iter()
                    .map(|v| v as i32)
                    .collect::<Vec<_>>()
            };
            let conv = || {
                let mut o = Conv2dOptions::default();
                if let Some(v) = kw.get("stride") {
                    o = o.stride(pair(v));
                }
                if let Some(v) = kw.get("padding") {
                    o = o.padding(pair(v));
                }
                if let Some(v) = kw.get("dilation") {
                    o = o.dilation(pair(v));
                }
                if let Some(v) = kw.get("groups") {
                    o = o.groups(uints(v)[0]);
                }
                o
            };
            match op.as_str() {
                "neg" => x.neg(),
                "exp" => x.exp(),
                "log" => x.log(),
                "sin" => x.sin(),
                "cos" => x.cos(),
                "tanh" => x.tanh(),
                "sqrt" => x.sqrt(),
                "abs" => x.abs(),
                "relu" => x.relu(),
                "sigmoid" => x.sigmoid(),
                "square" => x.square(),
                "add" => x.add(&operands[1]),
                "sub" => x.sub(&operands[1]),
                "mul" => x.mul(&operands[1]),
                "div" => x.div(&operands[1]),
                "pow" => x.pow(&operands[1]),
                "maximum" => x.maximum(&operands[1]),
                "minimum" => x.minimum(&operands[1]),
                "greater" => x.greater(&operands[1]),
                "less" => x.less(&operands[1]),
                "equal" => x.equal(&operands[1]),
                "where" => where_(x, &operands[1], &operands[2]),
                "sum" => {
                    if keepdims() {
                        x.sum_keepdim(axes())
                    } else {
                        x.sum_axes(axes())
                    }
                }
                "mean" => {
                    if keepdims() {
                        x.mean_keepdim(axes())
                    } else {
                        x.mean_axes(axes())
                    }
                }
                "max" => {
                    if keepdims() {
                        x.max_keepdim(axes())
                    } else {
                        x.max_axes(axes())
                    }
                }
                "reshape" => x.reshape(uints(&kw["shape"])),
                "transpose" => x.transpose(uints(&kw["perm"])),
                "broadcast_to" => x.broadcast_to(uints(&kw["shape"])),
                "slice" => x.slice(uints(&kw["start"]), uints(&kw["stop"])),
                "concat" => concat(&operands, axis()),
                "matmul" => x.matmul(&operands[1]),
                "softmax" => x.softmax(axis()),
                "logsumexp" => x.logsumexp(axis()),
                // Set 2
                "log1p" => x.log1p(),
                "expm1" => x.expm1(),
                "erf" => x.erf(),
                "softplus" => x.softplus(),
                "silu" => x.silu(),
                "rsqrt" => x.rsqrt(),
                "reciprocal" => x.reciprocal(),
                "gelu" => x.gelu(),
                "gelu_tanh" => x.gelu_tanh(),
                "floor" => x.floor(),
                "round" => x.round(),
                "sign" => x.sign(),
                "clip" => x.clip(float(&kw["min"]), float(&kw["max"])),
                "min" => {
                    if keepdims() {
                        x.min_keepdim(axes())
                    } else {
                        x.min_axes(axes())
                    }
                }
                "prod" => {
                    if keepdims() {
                        x.prod_keepdim(axes())
                    } else {
                        x.prod_axes(axes())
                    }
                }
                "var" => {
                    if keepdims() {
                        x.var_keepdim(axes())
                    } else {
                        x.var_axes(axes())
                    }
                }
                "std" => {
                    if keepdims() {
                        x.std_keepdim(axes())
                    } else {
                        x.std_axes(axes())
                    }
                }
                "argmax" => x.argmax(axis()),
                "argmin" => x.argmin(axis()),
                "cumsum" => x.cumsum(axis()),
                "log_softmax" => x.log_softmax(axis()),
                "take" => x.take(indices(), axis()),
                "take_along_axis" => {
                    // The index list reshaped row-major to x's shape, with `axis` resized.
                    let idx = indices();
                    let a = if axis() < 0 {
                        axis() + x.rank() as isize
                    } else {
                        axis()
                    } as usize;
                    let others: usize = (0..x.rank())
                        .filter(|&k| k != a)
                        .map(|k| x.shape()[k])
                        .product();
                    let mut shape = x.shape().to_vec();
                    shape[a] = idx.len() / others;
                    x.take_along_axis(Tensor::from_vec(idx, shape), axis())
                }
                "one_hot" => one_hot(indices(), uints(&kw["num"])[0]),
                "pad" => x.pad(uints(&kw["lo"]), uints(&kw["hi"])),
                "flip" => x.flip(Axes::List(ints(&kw["axes"]))),
                "stack" => stack(&operands, axis()),
                "expand_dims" => x.expand_dims(axis()),
                "squeeze" => x.squeeze(Axes::List(ints(&kw["axes"]))),
                "tril" => x.tril(kw.get("k").map(|k| ints(k)[0]).unwrap_or(0)),
                "triu" => x.triu(kw.get("k").map(|k| ints(k)[0]).unwrap_or(0)),
                "conv2d" => x.conv2d(&operands[1], conv()),
                "max_pool2d" => x.max_pool2d(pair(&kw["window"]), kw.get("stride").map(pair)),
                "avg_pool2d" => x.avg_pool2d(pair(&kw["window"]), kw.get("stride").map(pair)),
                other => {
                    set3::op(other, &operands, &kw).unwrap_or_else(|| panic!("unknown op {other}"))
                }
            }
        }
    }
}

/// A conformance case as a function of its positional arguments.
pub struct Case {
    pub name: String,
    pub expr: Sexp,
    pub args: Vec<String>,
    pub json: Json,
    pub rtol: f32,
    pub atol: f32,
}

impl Case {
    pub fn from_json(j: &Json) -> Case {
        Case {
            name: j.get("name").unwrap().str().to_string(),
            expr: parse_sexp(j.get("expr").unwrap().str()),
            args: j
                .get("args")
                .unwrap()
                .arr()
                .iter()
                .map(|a| a.str().to_string())
                .collect(),
            rtol: j.get("rtol").map(|v| v.num() as f32).unwrap_or(1e-4),
            atol: j.get("atol").map(|v| v.num() as f32).unwrap_or(1e-5),
            json: j.clone(),
        }
    }
    pub fn call(&self, xs: &[Tensor]) -> Tensor {
        let env: HashMap<String, Tensor> =
            self.args.iter().cloned().zip(xs.iter().cloned()).collect();
        eval(&self.expr, &env)
    }
    pub fn inputs(&self) -> Vec<Tensor> {
        let inputs = self.json.get("inputs").unwrap();
        self.args
            .iter()
            .map(|a| to_tensor(inputs.get(a).unwrap()))
            .collect()
    }
    /// The batch axes and the batched inputs of a `vmap` check.
    pub fn vmap_args(&self, check: &Json) -> (Vec<Option<isize>>, Vec<Tensor>) {
        let inputs = check.get("inputs").unwrap();
        let xs = self
            .args
            .iter()
            .map(|a| to_tensor(inputs.get(a).unwrap()))
            .collect();
        (vmap_axes(check), xs)
    }
    pub fn check(&self, got: &Tensor, want: &Json) -> Result<(), String> {
        let (shape, data) = json_tensor(want);
        if got.shape() != shape.as_slice() {
            return Err(format!("shape {:?} != expected {:?}", got.shape(), shape));
        }
        if let Some(d) = want.get("dtype") {
            // Integer results are compared exactly, dtype included.
            assert_eq!(d.str(), "int32", "unknown dtype in the oracle");
            if got.dtype() != DType::I32 {
                return Err(format!("dtype {} != expected int32", got.dtype()));
            }
            let got = got.to_vec::<i32>();
            let want: Vec<i32> = data.iter().map(|&v| v as i32).collect();
            return if got == want {
                Ok(())
            } else {
                Err(format!("got {got:?} want {want:?}"))
            };
        }
        close(&got.to_f32_vec(), &data, self.rtol, self.atol)
    }
}

pub fn load_cases() -> Vec<Case> {
    let dir = std::env::var("WGRAD_CONFORMANCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance")
        });
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read conformance dir {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.json in {}", dir.display());
    let mut cases = vec![];
    for f in files {
        let j = parse_json(&std::fs::read_to_string(&f).unwrap());
        for c in j.get("cases").unwrap().arr() {
            cases.push(Case::from_json(c));
        }
    }
    cases
}

/// The batch axes of a conformance `vmap` check (`null` = not batched).
pub fn vmap_axes(check: &Json) -> Vec<Option<isize>> {
    check
        .get("in_axes")
        .unwrap()
        .arr()
        .iter()
        .map(|a| {
            if let Json::Num(n) = a {
                Some(*n as isize)
            } else {
                None
            }
        })
        .collect()
}

/// A two-layer perceptron whose parameters are a struct (a tree).
#[derive(Clone)]
pub struct Mlp {
    pub w1: Tensor,
    pub b1: Tensor,
    pub w2: Tensor,
}
wgrad::tree_struct!(Mlp { w1, b1, w2 });

impl Mlp {
    /// Mean squared error of `tanh(x·w1 + b1)·w2` against `y`.
    pub fn loss(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let h = (x.matmul(&self.w1) + &self.b1).tanh();
        (h.matmul(&self.w2) - y).square().mean_all()
    }
}

/// ψ(x) in float64: the recurrence up to 20, then the asymptotic series (to 1/x^14).
pub fn digamma64(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 20.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let r2 = 1.0 / (x * x);
    let b = [
        1.0 / 12.0,
        -1.0 / 120.0,
        1.0 / 252.0,
        -1.0 / 240.0,
        1.0 / 132.0,
        -691.0 / 32760.0,
        1.0 / 12.0,
    ];
    let mut s = 0.0;
    let mut p = r2;
    for c in b {
        s += c * p;
        p *= r2;
    }
    acc + x.ln() - 0.5 / x - s
}
