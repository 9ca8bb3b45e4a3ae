//! The public transforms on structured arguments: grad, value_and_grad, vjp and jvp (vmap is
//! in `vectorize`).
//!
//! The spec's keyword parameters map to Rust as follows: `create_graph` and `realize` live in
//! [`GradOptions`]; `has_aux` is a separate function (`grad_aux`, `vjp_aux`, …) whose `f`
//! returns `(output, aux)` — a function without the pair does not compile; `argnums` selects
//! positional arguments in the `*_argnums` functions of [`crate::transforms::positional`]
//! (with a single structured argument, close over what you do not differentiate).

use crate::base::error::{Result, or_panic, transform_err};
use crate::ir::tensor::Tensor;
use crate::transforms::jvp::jvp_flat;
use crate::transforms::vjp::{FlatPullback, vjp_flat};
use crate::tree::Tree;
use std::marker::PhantomData;

/// Options of [`grad_with`] and [`value_and_grad_with`]; the defaults are the spec's.
///
/// ```
/// use wgrad::prelude::*;
/// let opts = GradOptions { create_graph: false, ..Default::default() };
/// let g = grad_with(|x: &Tensor| x.square().sum_all(), opts)(&Tensor::ones([2]));
/// assert!(g.is_realized()); // realize = true materializes a detached gradient
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradOptions {
    /// Keep the gradient differentiable (for higher-order derivatives). Default `true`.
    pub create_graph: bool,
    /// When `create_graph` is false, compute the gradient before returning. Default `true`.
    pub realize: bool,
}

impl Default for GradOptions {
    fn default() -> Self {
        GradOptions {
            create_graph: true,
            realize: true,
        }
    }
}

pub(crate) fn flat_fn<'a, A: Tree, O: Tree>(
    f: &'a dyn Fn(&A) -> O,
    template: &'a A,
    out: &'a std::cell::RefCell<Option<O>>,
) -> impl Fn(&[Tensor]) -> Vec<Tensor> + 'a {
    move |leaves: &[Tensor]| {
        let o = f(&template.rebuild(leaves.to_vec()));
        let flat = o.leaves();
        *out.borrow_mut() = Some(o);
        flat
    }
}

pub(crate) fn check_scalar(transform: &'static str, y: &Tensor) -> Result<()> {
    if y.numel() != 1 || y.rank() != 0 {
        return transform_err(
            transform,
            format!(
                "the function must return a scalar (shape []), got shape {:?}",
                y.shape()
            ),
        );
    }
    if !y.dtype().is_float() {
        return transform_err(
            transform,
            format!("the function must return a float scalar, got {}", y.dtype()),
        );
    }
    Ok(())
}

fn finish(value: &Tensor, grads: Vec<Tensor>, opts: GradOptions) {
    if !opts.create_graph && opts.realize {
        let mut all = grads;
        all.push(value.clone());
        crate::realize(&all);
    }
}

/// Fallible [`value_and_grad_aux`] with options: the base of every `grad` flavour.
///
/// ```
/// use wgrad::prelude::*;
/// let f = try_value_and_grad_aux(|x: &Tensor| (x.clone(), ()), GradOptions::default());
/// assert!(f(&Tensor::ones([3])).is_err()); // not a scalar
/// ```
pub fn try_value_and_grad_aux<A: Tree, X, F: Fn(&A) -> (Tensor, X)>(
    f: F,
    opts: GradOptions,
) -> impl Fn(&A) -> Result<(Tensor, A, X)> {
    move |args: &A| {
        let aux = std::cell::RefCell::new(None);
        let g = |a: &A| {
            let (y, x) = f(a);
            *aux.borrow_mut() = Some(x);
            y
        };
        let out = std::cell::RefCell::new(None);
        let flat = flat_fn(&g, args, &out);
        let (ys, pb) = vjp_flat(&flat, &args.leaves(), opts.create_graph);
        check_scalar("grad", &ys[0])?;
        let grads = pb.call(&[Some(ys[0].ones_like())])?;
        finish(&ys[0], grads.clone(), opts);
        let aux = aux.borrow_mut().take().expect("function ran");
        Ok((ys[0].clone(), args.rebuild(grads), aux))
    }
}

/// The gradient of a scalar function of a structured argument, as a function: the result has
/// the argument's structure.
///
/// ```
/// use wgrad::prelude::*;
/// let f = |x: &Tensor| (x.sin() * x).sum_all();
/// let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0], [3]);
/// let g = grad(f)(&x).to_vec::<f32>();
/// let want: Vec<f32> = [0.5f32, -1.0, 2.0].iter().map(|v| v.cos() * v + v.sin()).collect();
/// assert!(g.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5));
/// ```
pub fn grad<A: Tree, F: Fn(&A) -> Tensor>(f: F) -> impl Fn(&A) -> A {
    grad_with(f, GradOptions::default())
}

/// [`grad`] with options.
///
/// ```
/// use wgrad::prelude::*;
/// let opts = GradOptions { create_graph: false, realize: false };
/// let g = grad_with(|x: &Tensor| x.exp().sum_all(), opts)(&Tensor::zeros([2]));
/// assert_eq!(g.to_vec::<f32>(), vec![1.0, 1.0]);
/// ```
pub fn grad_with<A: Tree, F: Fn(&A) -> Tensor>(f: F, opts: GradOptions) -> impl Fn(&A) -> A {
    let vg = try_value_and_grad_aux(move |a: &A| (f(a), ()), opts);
    move |a: &A| or_panic(vg(a)).1
}

/// The value and the gradient, from one shared forward pass.
///
/// ```
/// use wgrad::prelude::*;
/// let (v, g) = value_and_grad(|x: &Tensor| x.square().sum_all())(&Tensor::from_vec(vec![3.0f32], [1]));
/// assert_eq!((v.item(), g.item()), (9.0, 6.0));
/// ```
pub fn value_and_grad<A: Tree, F: Fn(&A) -> Tensor>(f: F) -> impl Fn(&A) -> (Tensor, A) {
    value_and_grad_with(f, GradOptions::default())
}

/// [`value_and_grad`] with options.
///
/// ```
/// use wgrad::prelude::*;
/// let opts = GradOptions { create_graph: false, ..Default::default() };
/// let (v, g) = value_and_grad_with(|x: &Tensor| x.sum_all(), opts)(&Tensor::ones([2]));
/// assert!(v.is_realized() && g.is_realized());
/// ```
pub fn value_and_grad_with<A: Tree, F: Fn(&A) -> Tensor>(
    f: F,
    opts: GradOptions,
) -> impl Fn(&A) -> (Tensor, A) {
    let vg = try_value_and_grad_aux(move |a: &A| (f(a), ()), opts);
    move |a: &A| {
        let (v, g, _) = or_panic(vg(a));
        (v, g)
    }
}

/// `grad` with `has_aux`: `f` returns `(scalar, aux)`; the aux is returned, not differentiated.
///
/// ```
/// use wgrad::prelude::*;
/// let (g, aux) = grad_aux(|x: &Tensor| (x.sum_all(), x.shape().to_vec()))(&Tensor::ones([2]));
/// assert_eq!(aux, vec![2]);
/// assert_eq!(g.to_vec::<f32>(), vec![1.0, 1.0]);
/// ```
pub fn grad_aux<A: Tree, X, F: Fn(&A) -> (Tensor, X)>(f: F) -> impl Fn(&A) -> (A, X) {
    let vg = try_value_and_grad_aux(f, GradOptions::default());
    move |a: &A| {
        let (_, g, x) = or_panic(vg(a));
        (g, x)
    }
}

/// `value_and_grad` with `has_aux`: returns `(value, gradient, aux)`.
///
/// ```
/// use wgrad::prelude::*;
/// let (v, g, n) = value_and_grad_aux(|x: &Tensor| (x.sum_all(), 7))(&Tensor::ones([2]));
/// assert_eq!((v.item(), n), (2.0, 7));
/// assert_eq!(g.to_vec::<f32>(), vec![1.0, 1.0]);
/// ```
pub fn value_and_grad_aux<A: Tree, X, F: Fn(&A) -> (Tensor, X)>(
    f: F,
) -> impl Fn(&A) -> (Tensor, A, X) {
    let vg = try_value_and_grad_aux(f, GradOptions::default());
    move |a: &A| or_panic(vg(a))
}

/// The pullback returned by [`vjp`]: call it with a cotangent of the output's structure, as
/// often as you like.
pub struct Pullback<A, O> {
    flat: FlatPullback,
    primals: A,
    out: O,
    _o: PhantomData<O>,
}

impl<A: Tree, O: Tree> Pullback<A, O> {
    /// The cotangents of the primals (structure of the primals).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
    /// let (_, pb) = vjp(|x: &Tensor| x * 3.0, &x);
    /// assert_eq!(pb.call(&Tensor::ones([2])).to_vec::<f32>(), vec![3.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn call(&self, cotangent: &O) -> A {
        or_panic(self.try_call(cotangent))
    }
    /// Fallible [`Pullback::call`]: a cotangent of the wrong shape is an error.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let (_, pb) = vjp(|x: &Tensor| x * 3.0, &Tensor::ones([2]));
    /// assert!(pb.try_call(&Tensor::ones([5])).is_err());
    /// ```
    pub fn try_call(&self, cotangent: &O) -> Result<A> {
        let cts = cotangent.leaves();
        let n = self.out.leaves().len();
        if cts.len() != n {
            return transform_err(
                "vjp",
                format!("the cotangent has {} leaves, the output {n}", cts.len()),
            );
        }
        let cts: Vec<Option<Tensor>> = cts.into_iter().map(Some).collect();
        Ok(self.primals.rebuild(self.flat.call(&cts)?))
    }
}

/// Options of [`vjp_with`]; the default keeps results differentiable.
///
/// ```
/// let o = wgrad::AdOptions::default();
/// assert!(o.create_graph);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdOptions {
    /// Keep the results differentiable (for higher-order derivatives). Default `true`.
    pub create_graph: bool,
}

impl Default for AdOptions {
    fn default() -> Self {
        AdOptions { create_graph: true }
    }
}

/// `f(primals)` and its pullback (reverse mode).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
/// let (y, pb) = vjp(|x: &Tensor| x.square(), &x);
/// assert_eq!(y.to_vec::<f32>(), vec![1.0, 4.0]);
/// assert_eq!(pb.call(&Tensor::ones([2])).to_vec::<f32>(), vec![2.0, 4.0]);
/// ```
pub fn vjp<A: Tree + Clone, O: Tree + Clone>(
    f: impl Fn(&A) -> O,
    primals: &A,
) -> (O, Pullback<A, O>) {
    vjp_with(f, primals, AdOptions::default())
}

/// [`vjp`] with options.
///
/// ```
/// use wgrad::prelude::*;
/// let (_, pb) = vjp_with(|x: &Tensor| x.exp(), &Tensor::zeros([1]), AdOptions { create_graph: false });
/// assert_eq!(pb.call(&Tensor::ones([1])).item(), 1.0);
/// ```
pub fn vjp_with<A: Tree + Clone, O: Tree + Clone>(
    f: impl Fn(&A) -> O,
    primals: &A,
    opts: AdOptions,
) -> (O, Pullback<A, O>) {
    let (o, pb, ()) = vjp_aux_with(|a: &A| (f(a), ()), primals, opts);
    (o, pb)
}

/// `vjp` with `has_aux`: `f` returns `(output, aux)`; returns `(output, pullback, aux)`.
///
/// ```
/// use wgrad::prelude::*;
/// let (y, pb, aux) = vjp_aux(|x: &Tensor| (x * 2.0, "note"), &Tensor::ones([1]));
/// assert_eq!(aux, "note");
/// assert_eq!(pb.call(&Tensor::ones([1])).item(), 2.0);
/// ```
pub fn vjp_aux<A: Tree + Clone, O: Tree + Clone, X>(
    f: impl Fn(&A) -> (O, X),
    primals: &A,
) -> (O, Pullback<A, O>, X) {
    vjp_aux_with(f, primals, AdOptions::default())
}

fn vjp_aux_with<A: Tree + Clone, O: Tree + Clone, X>(
    f: impl Fn(&A) -> (O, X),
    primals: &A,
    opts: AdOptions,
) -> (O, Pullback<A, O>, X) {
    let aux = std::cell::RefCell::new(None);
    let g = |a: &A| {
        let (o, x) = f(a);
        *aux.borrow_mut() = Some(x);
        o
    };
    let out = std::cell::RefCell::new(None);
    let flat = flat_fn(&g, primals, &out);
    let (_, pb) = vjp_flat(&flat, &primals.leaves(), opts.create_graph);
    let o = out.borrow_mut().take().expect("function ran");
    let pullback = Pullback {
        flat: pb,
        primals: primals.clone(),
        out: o.clone(),
        _o: PhantomData,
    };
    let aux = aux.borrow_mut().take().expect("function ran");
    (o, pullback, aux)
}

/// `(f(primals), J·tangents)` (forward mode); tangents have the primals' structure and shapes.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![0.0f32, 1.0], [2]);
/// let (y, t) = jvp(|x: &Tensor| x.exp(), &x, &Tensor::ones([2]));
/// assert_eq!(t.to_vec::<f32>(), y.to_vec::<f32>());
/// ```
#[track_caller]
pub fn jvp<A: Tree, O: Tree>(f: impl Fn(&A) -> O, primals: &A, tangents: &A) -> (O, O) {
    or_panic(try_jvp(f, primals, tangents, AdOptions::default()))
}

/// Fallible [`jvp`] with options: tangents that do not match the primals are an error.
///
/// ```
/// use wgrad::prelude::*;
/// let e = try_jvp(|x: &Tensor| x.exp(), &Tensor::ones([2]), &Tensor::ones([3]), AdOptions::default());
/// assert!(e.is_err());
/// ```
pub fn try_jvp<A: Tree, O: Tree>(
    f: impl Fn(&A) -> O,
    primals: &A,
    tangents: &A,
    opts: AdOptions,
) -> Result<(O, O)> {
    let (o, t, ()) = try_jvp_aux(|a: &A| (f(a), ()), primals, tangents, opts)?;
    Ok((o, t))
}

/// `jvp` with `has_aux`: returns `(output, tangent_out, aux)`.
///
/// ```
/// use wgrad::prelude::*;
/// let (_, t, aux) = jvp_aux(|x: &Tensor| (x * 5.0, 1), &Tensor::ones([1]), &Tensor::ones([1]));
/// assert_eq!((t.item(), aux), (5.0, 1));
/// ```
#[track_caller]
pub fn jvp_aux<A: Tree, O: Tree, X>(
    f: impl Fn(&A) -> (O, X),
    primals: &A,
    tangents: &A,
) -> (O, O, X) {
    or_panic(try_jvp_aux(f, primals, tangents, AdOptions::default()))
}

/// Fallible [`jvp_aux`] with options.
///
/// ```
/// use wgrad::prelude::*;
/// let r = try_jvp_aux(|x: &Tensor| (x.sin(), ()), &Tensor::zeros([1]), &Tensor::ones([1]), AdOptions::default());
/// assert_eq!(r.unwrap().1.item(), 1.0);
/// ```
pub fn try_jvp_aux<A: Tree, O: Tree, X>(
    f: impl Fn(&A) -> (O, X),
    primals: &A,
    tangents: &A,
    opts: AdOptions,
) -> Result<(O, O, X)> {
    let (p, t) = (primals.leaves(), tangents.leaves());
    if p.len() != t.len() {
        return transform_err(
            "jvp",
            format!(
                "{} tangents for {} primals: they must have the same structure",
                t.len(),
                p.len()
            ),
        );
    }
    let aux = std::cell::RefCell::new(None);
    let g = |a: &A| {
        let (o, x) = f(a);
        *aux.borrow_mut() = Some(x);
        o
    };
    let out = std::cell::RefCell::new(None);
    let flat = flat_fn(&g, primals, &out);
    let t: Vec<Option<Tensor>> = t.into_iter().map(Some).collect();
    let (_, touts) = jvp_flat(&flat, &p, &t, opts.create_graph)?;
    let o = out.borrow_mut().take().expect("function ran");
    let tout = o.rebuild(touts);
    let aux = aux.borrow_mut().take().expect("function ran");
    Ok((o, tout, aux))
}
