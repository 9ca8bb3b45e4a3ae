//! take, take_along_axis, one_hot, argmax/argmin: values against host loops, the gradient's
//! scatter-add with repeated indices, index semantics on the device (wrap, clamp) and errors
//! for host indices.

use crate::common;

use common::assert_close;
use wgrad::prelude::*;

fn host(shape: &[usize], seed: u64) -> (Tensor, Vec<f32>) {
    let t = Tensor::rand(shape, seed) * 2.0 - 1.0;
    let v = t.to_vec::<f32>();
    (Tensor::from_vec(v.clone(), shape), v)
}

#[test]
fn take_matches_a_host_gather_on_every_axis() {
    common::setup();
    let (x, xv) = host(&[3, 4, 5], 1);
    let idx = [4i32, 0, 2, 2, -1, 1];
    for axis in 0..3usize {
        let n = x.shape()[axis] as i32;
        let idx: Vec<i32> = idx.iter().map(|&i| i.rem_euclid(n)).collect();
        let got = x.take(idx.clone(), axis as isize);
        let mut shape = x.shape().to_vec();
        shape[axis] = idx.len();
        let mut want = vec![];
        for a in 0..shape[0] {
            for b in 0..shape[1] {
                for c in 0..shape[2] {
                    let mut p = [a, b, c];
                    p[axis] = idx[p[axis]] as usize;
                    want.push(xv[p[0] * 20 + p[1] * 5 + p[2]]);
                }
            }
        }
        assert_close(&got, &shape, &want, 0.0);
    }
}

#[test]
fn take_with_an_index_tensor_places_its_axes() {
    common::setup();
    let x = Tensor::arange(12).reshape([3, 4]);
    let i = Tensor::from_slice(&[3u32, 0, 1, 1], [2, 2]);
    let y = x.take(&i, 1);
    assert_eq!(y.shape(), &[3, 2, 2]);
    assert_close(
        &y,
        &[3, 2, 2],
        &[3.0, 0.0, 1.0, 1.0, 7.0, 4.0, 5.0, 5.0, 11.0, 8.0, 9.0, 9.0],
        0.0,
    );
    // A 0-d index removes the axis.
    let s = x.take(Tensor::from_slice(&[2i32], []), 0);
    assert_close(&s, &[4], &[8.0, 9.0, 10.0, 11.0], 0.0);
}

#[test]
fn repeated_indices_add_up_in_the_gradient() {
    common::setup();
    // 10 000 lookups into 7 rows: the scatter-add loops over the gathered axis in chunks.
    let n = 10_000;
    let idx: Vec<i32> = (0..n).map(|k| ((k * 31 + k / 7) % 7) as i32).collect();
    let mut count = [0f32; 7];
    for &i in &idx {
        count[i as usize] += 1.0;
    }
    let table = Tensor::ones([7, 3]);
    let it = Tensor::from_vec(idx, [n]);
    let g = grad(|t: &Tensor| (t.take(&it, 0) * 2.0).sum_all())(&table);
    let want: Vec<f32> = count.iter().flat_map(|&c| [2.0 * c; 3]).collect();
    assert_close(&g, &[7, 3], &want, 0.0);
}

#[test]
fn device_indices_wrap_once_then_clamp_host_indices_are_checked() {
    common::setup();
    let x = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], [3]);
    let i = Tensor::from_slice(&[-1i32, -3, 7, -9], [4]);
    // -1 -> 2, -3 -> 0, 7 -> clamped to 2, -9 -> -6 -> clamped to 0.
    assert_close(&x.take(&i, 0), &[4], &[30.0, 10.0, 30.0, 10.0], 0.0);
    let e = x.try_take([0, 3], 0).unwrap_err().to_string();
    assert!(
        e.contains("take") && e.contains("index 3") && e.contains("[3]"),
        "{e}"
    );
    assert!(x.try_take([-4], 0).is_err());
    assert_close(&x.take([-1], 0), &[1], &[30.0], 0.0);
    let e = x
        .try_take(Tensor::from_vec(vec![1.0f32], [1]), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("i32 or u32") && e.contains("f32"), "{e}");
    // one_hot: out-of-range device indices give zero rows (as jax.nn.one_hot).
    let oh = one_hot(Tensor::from_slice(&[1i32, 5, -1], [3]), 3);
    assert_close(
        &oh,
        &[3, 3],
        &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        0.0,
    );
    assert!(try_one_hot([3], 3).is_err());
}

#[test]
fn take_along_axis_broadcasts_and_differentiates() {
    common::setup();
    let logp = Tensor::from_vec(vec![-0.1f32, -2.0, -3.0, -0.5, -1.5, -0.7], [2, 3]);
    let labels = Tensor::from_slice(&[2i32, 0], [2, 1]);
    assert_close(
        &logp.take_along_axis(&labels, 1),
        &[2, 1],
        &[-3.0, -0.5],
        0.0,
    );
    // Indices broadcast against the other axes: one row of indices for every row of x.
    let cols = Tensor::from_slice(&[1i32, 1, 0], [1, 3]);
    assert_close(
        &logp.take_along_axis(&cols, 1),
        &[2, 3],
        &[-2.0, -2.0, -0.1, -1.5, -1.5, -0.5],
        0.0,
    );
    let g = grad(|x: &Tensor| x.take_along_axis(&cols, 1).sum_all())(&logp);
    assert_close(&g, &[2, 3], &[1.0, 2.0, 0.0, 1.0, 2.0, 0.0], 0.0);
    // vmap over the examples, the indices unbatched.
    let per = vmap(|x: &Tensor| x.take([2, 0], 0), 0)(&logp);
    assert_close(&per, &[2, 2], &[-3.0, -0.1, -0.7, -0.5], 0.0);
}

#[test]
fn argmax_argmin_pick_the_first_extreme() {
    common::setup();
    let x = Tensor::from_vec(
        vec![
            1.0f32, 7.0, 7.0, -2.0, 0.0, -5.0, 3.0, -5.0, 2.0, 9.0, 1.0, 9.0,
        ],
        [2, 2, 3],
    );
    // Rows along the last axis: [1 7 7] [-2 0 -5] [3 -5 2] [9 1 9] (ties: the first).
    assert_eq!(x.argmax(-1).to_vec::<i32>(), vec![1, 1, 0, 0]);
    assert_eq!(x.argmin(-1).to_vec::<i32>(), vec![0, 2, 1, 1]);
    assert_eq!(x.argmax(0).to_vec::<i32>(), vec![1, 0, 0, 1, 1, 1]);
    assert_eq!(x.argmin(1).shape(), &[2, 3]);
    let per = vmap(|x: &Tensor| x.argmax(0), 1)(&x);
    assert_eq!(per.to_vec::<i32>(), vec![1, 0, 0, 1, 1, 1]);
    assert!(x.try_argmax(3).is_err());
}
