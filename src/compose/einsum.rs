//! `einsum`: Einstein summation over explicit specs, lowered to the library's own kernels.
//! Each operand first takes the diagonals its repeated letters name and sums the letters no
//! one else needs; then pairs are contracted greedily, the cheapest pair first (as
//! opt_einsum's greedy order), each pair as one batched matmul (batch letters × free letters ×
//! contracted letters) or, with nothing to contract, a broadcast product. Its derivatives are
//! those of the ops it is made of — again einsums of the same shapes.

use crate::base::error::{Result, or_panic, shape_err};
use crate::ir::tensor::Tensor;
use crate::prim::reduce::Axes;
use std::borrow::Borrow;
use std::collections::HashMap;

/// One operand during the contraction: its tensor and the letter of each axis.
struct Term {
    letters: Vec<char>,
    t: Tensor,
}

/// The parsed spec: one letter string per operand, the output's, and every letter's size.
struct Spec {
    inputs: Vec<Vec<char>>,
    output: Vec<char>,
    sizes: HashMap<char, usize>,
}

fn parse(spec: &str, shapes: &[&[usize]]) -> Result<Spec> {
    let err = |m: String| shape_err("einsum", format!("spec {spec:?}: {m}"));
    let Some((lhs, rhs)) = spec.split_once("->") else {
        return err("needs an explicit output after `->` (e.g. \"ij,jk->ik\")".into());
    };
    let letters = |s: &str| -> Result<Vec<char>> {
        let v: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
        match v.iter().find(|c| !c.is_ascii_alphabetic()) {
            Some(c) => shape_err(
                "einsum",
                format!("spec {spec:?}: {c:?} is not a letter (no `...` or digits)"),
            ),
            None => Ok(v),
        }
    };
    let inputs = lhs.split(',').map(letters).collect::<Result<Vec<_>>>()?;
    let output = letters(rhs)?;
    if inputs.len() != shapes.len() {
        return err(format!(
            "{} terms for {} operands",
            inputs.len(),
            shapes.len()
        ));
    }
    let mut sizes = HashMap::new();
    for (k, (term, shape)) in inputs.iter().zip(shapes).enumerate() {
        if term.len() != shape.len() {
            return err(format!(
                "term {k} ({:?}) has {} letters, operand {k} has shape {shape:?}",
                term.iter().collect::<String>(),
                term.len()
            ));
        }
        for (&c, &n) in term.iter().zip(shape.iter()) {
            match sizes.insert(c, n) {
                Some(m) if m != n => {
                    return err(format!("letter {c:?} has sizes {m} and {n}"));
                }
                _ => {}
            }
        }
    }
    for (k, c) in output.iter().enumerate() {
        if output[..k].contains(c) {
            return err(format!("output letter {c:?} appears twice"));
        }
        if !sizes.contains_key(c) {
            return err(format!("output letter {c:?} is in no input term"));
        }
    }
    Ok(Spec {
        inputs,
        output,
        sizes,
    })
}

/// `term` with each repeated letter reduced to its diagonal (the letter then appears once,
/// last), and the letters in none of `keep` summed away.
fn simplify(mut term: Term, keep: &[char], n_of: &HashMap<char, usize>) -> Result<Term> {
    while let Some((i, j)) = (0..term.letters.len()).find_map(|i| {
        (i + 1..term.letters.len())
            .find(|&j| term.letters[j] == term.letters[i])
            .map(|j| (i, j))
    }) {
        // Axes i and j to the end, times the identity, summed over the last.
        let c = term.letters[i];
        let mut perm: Vec<usize> = (0..term.letters.len())
            .filter(|&k| k != i && k != j)
            .collect();
        perm.extend([i, j]);
        let moved = term.t.try_transpose(&perm)?;
        let diag = moved.try_mul(Tensor::eye(n_of[&c]))?.try_sum_axes(-1)?;
        let mut letters: Vec<char> = perm[..perm.len() - 2]
            .iter()
            .map(|&k| term.letters[k])
            .collect();
        letters.push(c);
        term = Term { letters, t: diag };
    }
    let drop: Vec<isize> = (0..term.letters.len())
        .filter(|&k| !keep.contains(&term.letters[k]))
        .map(|k| k as isize)
        .collect();
    if !drop.is_empty() {
        term.t = term.t.try_sum_axes(Axes::List(drop))?;
        term.letters.retain(|c| keep.contains(c));
    }
    Ok(term)
}

/// The letters needed after terms `skip` are contracted: the output's and every other term's.
fn needed(terms: &[Term], skip: &[usize], output: &[char]) -> Vec<char> {
    let mut keep = output.to_vec();
    for (k, t) in terms.iter().enumerate() {
        if !skip.contains(&k) {
            keep.extend(&t.letters);
        }
    }
    keep
}

/// `a` and `b` contracted over their shared letters that `keep` lacks, shared letters in
/// `keep` as batch axes: one batched matmul `[batch, free_a, k] × [batch, k, free_b]`.
fn contract(a: Term, b: Term, keep: &[char], n_of: &HashMap<char, usize>) -> Result<Term> {
    let shared = |c: &char| b.letters.contains(c);
    let batch: Vec<char> = a
        .letters
        .iter()
        .copied()
        .filter(|c| shared(c) && keep.contains(c))
        .collect();
    let summed: Vec<char> = a
        .letters
        .iter()
        .copied()
        .filter(|c| shared(c) && !keep.contains(c))
        .collect();
    let free_a: Vec<char> = a.letters.iter().copied().filter(|c| !shared(c)).collect();
    let free_b: Vec<char> = b
        .letters
        .iter()
        .copied()
        .filter(|c| !a.letters.contains(c))
        .collect();
    let size = |cs: &[char]| cs.iter().map(|c| n_of[c]).product::<usize>();
    let arrange = |t: &Term, order: &[&[char]]| -> Result<Tensor> {
        let perm: Vec<usize> = order
            .iter()
            .flat_map(|cs| cs.iter())
            .map(|c| t.letters.iter().position(|l| l == c).unwrap_or(0))
            .collect();
        t.t.try_transpose(&perm)
    };
    let (nb, m, k, n) = (size(&batch), size(&free_a), size(&summed), size(&free_b));
    let ta = arrange(&a, &[&batch, &free_a, &summed])?.try_reshape([nb, m, k])?;
    let tb = arrange(&b, &[&batch, &summed, &free_b])?.try_reshape([nb, k, n])?;
    let prod = if summed.is_empty() {
        ta.try_mul(&tb)?
    } else {
        ta.try_matmul(&tb)?
    };
    let letters: Vec<char> = [batch, free_a, free_b].concat();
    let shape: Vec<usize> = letters.iter().map(|c| n_of[c]).collect();
    Ok(Term {
        t: prod.try_reshape(shape)?,
        letters,
    })
}

/// Fallible [`einsum`]: an error quotes the spec when it does not parse or does not match the
/// operands' shapes.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::ones([2, 3]);
/// let e = wgrad::try_einsum("ij,jk->ik", &[&a, &a]).unwrap_err();
/// assert!(e.to_string().contains("ij,jk->ik"));
/// assert!(wgrad::try_einsum("ij,jk", &[&a, &a]).is_err());
/// ```
pub fn try_einsum<T: Borrow<Tensor>>(spec: &str, operands: &[T]) -> Result<Tensor> {
    let shapes: Vec<&[usize]> = operands.iter().map(|t| t.borrow().shape()).collect();
    let s = parse(spec, &shapes)?;
    let mut terms = vec![];
    for (k, (letters, t)) in s.inputs.iter().zip(operands).enumerate() {
        let term = Term {
            letters: letters.clone(),
            t: t.borrow().clone(),
        };
        // Letters this operand alone has, and the output lacks, are summed right away.
        let mut keep = s.output.clone();
        for (j, other) in s.inputs.iter().enumerate() {
            if j != k {
                keep.extend(other);
            }
        }
        terms.push(simplify(term, &keep, &s.sizes)?);
    }
    while terms.len() > 1 {
        // The pair whose contraction touches the fewest elements goes first.
        let cost = |i: usize, j: usize| {
            let mut all = terms[i].letters.clone();
            all.extend(&terms[j].letters);
            all.sort_unstable();
            all.dedup();
            all.iter().map(|c| s.sizes[c] as u128).product::<u128>()
        };
        let mut best = (0, 1);
        for i in 0..terms.len() {
            for j in i + 1..terms.len() {
                if cost(i, j) < cost(best.0, best.1) {
                    best = (i, j);
                }
            }
        }
        let keep = needed(&terms, &[best.0, best.1], &s.output);
        let b = terms.remove(best.1);
        let a = terms.remove(best.0);
        let ab = contract(a, b, &keep, &s.sizes)?;
        terms.push(simplify(ab, &keep, &s.sizes)?);
    }
    let last = simplify(terms.remove(0), &s.output, &s.sizes)?;
    let perm: Vec<usize> = s
        .output
        .iter()
        .map(|c| last.letters.iter().position(|l| l == c).unwrap_or(0))
        .collect();
    last.t.try_transpose(&perm)
}

/// Einstein summation (`jnp.einsum` with an explicit output): one letter per axis of each
/// operand, the result indexed by the letters after `->`, everything else summed. A letter
/// repeated within one term takes that operand's diagonal. Contractions run as batched
/// matmuls, pairs in the cheapest order, and the whole is differentiable and batchable.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
/// let b = Tensor::from_vec(vec![5.0f32, 6.0, 7.0, 8.0], [2, 2]);
/// assert_eq!(wgrad::einsum("ij,jk->ik", &[&a, &b]).to_vec::<f32>(), a.matmul(&b).to_vec::<f32>());
/// assert_eq!(wgrad::einsum("ii->", &[&a]).item(), 5.0); // the trace
/// assert_eq!(wgrad::einsum("ij->ji", &[&a]).to_vec::<f32>(), vec![1.0, 3.0, 2.0, 4.0]);
/// ```
#[track_caller]
pub fn einsum<T: Borrow<Tensor>>(spec: &str, operands: &[T]) -> Tensor {
    or_panic(try_einsum(spec, operands))
}
