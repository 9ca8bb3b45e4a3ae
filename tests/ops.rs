//! Every op against hand-checked values, broadcasting and axis edge cases, odd and huge sizes,
//! dtypes, and the one-submit promise of `realize`.

mod common;

use common::assert_close;
use wgrad::MatmulKernel;
use wgrad::prelude::*;

fn t(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_slice(v, s)
}

#[test]
fn unary_ops_match_hand_values() {
    common::setup();
    let x = t(&[0.5, -1.0, 2.0], &[3]);
    let cases: Vec<(&str, Tensor, [f32; 3])> = vec![
        ("neg", x.neg(), [-0.5, 1.0, -2.0]),
        ("exp", x.exp(), [1.6487213, 0.36787945, 7.389056]),
        ("sin", x.sin(), [0.47942555, -0.84147096, 0.9092974]),
        ("cos", x.cos(), [0.87758255, 0.5403023, -0.41614684]),
        ("tanh", x.tanh(), [0.46211717, -0.7615942, 0.9640276]),
        ("abs", x.abs(), [0.5, 1.0, 2.0]),
        ("relu", x.relu(), [0.5, 0.0, 2.0]),
        ("sigmoid", x.sigmoid(), [0.62245935, 0.26894143, 0.8807971]),
        ("square", x.square(), [0.25, 1.0, 4.0]),
        ("sign", x.sign(), [1.0, -1.0, 1.0]),
    ];
    for (name, y, want) in cases {
        let got = y.to_vec::<f32>();
        assert!(
            common::close(&got, &want, 1e-5, 1e-6).is_ok(),
            "{name}: {got:?} vs {want:?}"
        );
    }
    let p = t(&[0.25, 1.0, 4.0], &[3]);
    assert_close(&p.log(), &[3], &[-1.3862944, 0.0, 1.3862944], 1e-5);
    assert_close(&p.sqrt(), &[3], &[0.5, 1.0, 2.0], 1e-6);
    // tanh and sigmoid do not overflow far out.
    assert_close(&t(&[-100.0, 100.0], &[2]).tanh(), &[2], &[-1.0, 1.0], 0.0);
    assert_close(
        &t(&[-100.0, 100.0], &[2]).sigmoid(),
        &[2],
        &[0.0, 1.0],
        1e-30,
    );
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    common::setup();
    let col = t(&[1.0, 2.0], &[2, 1]);
    let row = t(&[10.0, 20.0, 30.0], &[3]);
    assert_close(
        &(&col + &row),
        &[2, 3],
        &[11.0, 21.0, 31.0, 12.0, 22.0, 32.0],
        0.0,
    );
    assert_close(
        &(&col - &row),
        &[2, 3],
        &[-9.0, -19.0, -29.0, -8.0, -18.0, -28.0],
        0.0,
    );
    assert_close(
        &(&col * &row),
        &[2, 3],
        &[10.0, 20.0, 30.0, 20.0, 40.0, 60.0],
        0.0,
    );
    assert_close(
        &(&row / &col),
        &[2, 3],
        &[10.0, 20.0, 30.0, 5.0, 10.0, 15.0],
        1e-7,
    );
    assert_close(
        &col.pow(t(&[2.0, 0.5], &[2])),
        &[2, 2],
        &[1.0, 1.0, 4.0, std::f32::consts::SQRT_2],
        1e-6,
    );
    assert_close(
        &t(&[-2.0, -2.0, 0.0], &[3]).pow(t(&[3.0, 2.0, 2.0], &[3])),
        &[3],
        &[-8.0, 4.0, 0.0],
        1e-6,
    );
    assert_close(
        &t(&[1.0, 5.0], &[2]).maximum(Tensor::scalar(3.0)),
        &[2],
        &[3.0, 5.0],
        0.0,
    );
    assert_close(
        &t(&[1.0, 5.0], &[2]).minimum(Tensor::scalar(3.0)),
        &[2],
        &[1.0, 3.0],
        0.0,
    );
    // Operators with f32 on both sides.
    assert_close(&(2.0 - &row), &[3], &[-8.0, -18.0, -28.0], 0.0);
    assert_close(&(-(&row * 0.5)), &[3], &[-5.0, -10.0, -15.0], 0.0);
    // Rank mismatch in both directions and 0-d operands.
    let a = Tensor::ones([2, 1, 3]);
    let b = Tensor::ones([4, 1]);
    assert_eq!((&a + &b).shape(), &[2, 4, 3]);
    assert_eq!((&b + &a).shape(), &[2, 4, 3]);
    assert_eq!((Tensor::scalar(1.0) + Tensor::scalar(2.0)).item(), 3.0);
}

#[test]
fn comparisons_and_where() {
    common::setup();
    let x = t(&[1.0, 2.0, 3.0], &[3]);
    let y = t(&[2.0, 2.0, 2.0], &[3]);
    assert_eq!(x.greater(&y).to_vec::<bool>(), vec![false, false, true]);
    assert_eq!(x.less(&y).to_vec::<bool>(), vec![true, false, false]);
    assert_eq!(x.equal(&y).to_vec::<bool>(), vec![false, true, false]);
    assert_eq!(x.greater(&y).dtype(), DType::Bool);
    let w = where_(&x.greater(&y), &x, &(&y * 10.0));
    assert_close(&w, &[3], &[20.0, 20.0, 3.0], 0.0);
    // Broadcast of all three operands.
    let c = t(&[1.0, -1.0], &[2, 1]).greater(&Tensor::scalar(0.0));
    let w = where_(&c, &t(&[1.0, 2.0, 3.0], &[3]), &Tensor::scalar(0.0));
    assert_close(&w, &[2, 3], &[1.0, 2.0, 3.0, 0.0, 0.0, 0.0], 0.0);
}

#[test]
fn reductions_axes_keepdims_negative() {
    common::setup();
    let x = Tensor::arange(24).reshape([2, 3, 4]);
    assert_eq!(x.sum_all().item(), 276.0);
    assert_close(
        &x.sum_keepdim([0, 2]),
        &[1, 3, 1],
        &[60.0, 92.0, 124.0],
        0.0,
    );
    assert_close(
        &x.sum_axes(-1),
        &[2, 3],
        &[6.0, 22.0, 38.0, 54.0, 70.0, 86.0],
        0.0,
    );
    assert_close(&x.sum_axes([-2, -1]), &[2], &[66.0, 210.0], 0.0);
    assert_close(
        &x.mean_axes(1),
        &[2, 4],
        &[4.0, 5.0, 6.0, 7.0, 16.0, 17.0, 18.0, 19.0],
        1e-6,
    );
    assert_close(&x.mean_keepdim(None), &[1, 1, 1], &[11.5], 1e-6);
    assert_close(
        &x.max_axes(0),
        &[3, 4],
        &(12..24).map(|v| v as f32).collect::<Vec<_>>(),
        0.0,
    );
    assert_close(
        &x.max_keepdim([-1, -3]),
        &[1, 3, 1],
        &[15.0, 19.0, 23.0],
        0.0,
    );
    assert_close(&(-&x).max_all().expand_dims(0), &[1], &[0.0], 0.0);
    // Sum over an axis of size 1, and of a 0-d tensor.
    assert_close(
        &Tensor::ones([3, 1]).sum_axes(1),
        &[3],
        &[1.0, 1.0, 1.0],
        0.0,
    );
    assert_eq!(Tensor::scalar(5.0).sum_all().item(), 5.0);
}

#[test]
fn softmax_and_logsumexp_are_stable() {
    common::setup();
    let x = t(&[1000.0, 1001.0, 1002.0, -5.0, 0.0, 5.0], &[2, 3]);
    let p = x.softmax(-1).to_vec::<f32>();
    let e = [(-2.0f32).exp(), (-1.0f32).exp(), 1.0];
    let s: f32 = e.iter().sum();
    for k in 0..3 {
        assert!((p[k] - e[k] / s).abs() < 1e-6);
    }
    let l = x.logsumexp(1).to_vec::<f32>();
    assert!((l[0] - (1002.0 + s.ln())).abs() < 1e-3);
    assert!((l[1] - (5.0 + (1.0 + (-5.0f32).exp() + (-10.0f32).exp()).ln())).abs() < 1e-5);
    assert_close(&x.softmax(0).sum_axes(0), &[3], &[1.0, 1.0, 1.0], 1e-6);
}

#[test]
fn movement_ops() {
    common::setup();
    let x = Tensor::arange(6).reshape([2, 3]);
    assert_close(
        &x.transpose([1, 0]),
        &[3, 2],
        &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0],
        0.0,
    );
    assert_close(
        &x.slice([0, 1], [2, 3]),
        &[2, 2],
        &[1.0, 2.0, 4.0, 5.0],
        0.0,
    );
    assert_close(
        &x.pad([1, 0], [0, 1]),
        &[3, 4],
        &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 5.0, 0.0],
        0.0,
    );
    assert_close(
        &t(&[1.0, 2.0], &[2]).broadcast_to([2, 2]),
        &[2, 2],
        &[1.0, 2.0, 1.0, 2.0],
        0.0,
    );
    assert_close(
        &concat(&[x.clone(), x.clone() * 10.0], 0),
        &[4, 3],
        &[
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0,
        ],
        0.0,
    );
    assert_close(
        &concat(&[x.clone(), x.slice([0, 0], [2, 1])], -1),
        &[2, 4],
        &[0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 5.0, 3.0],
        0.0,
    );
    let many: Vec<Tensor> = (0..9).map(|k| Tensor::full([1], k as f32)).collect();
    assert_close(
        &concat(&many, 0),
        &[9],
        &(0..9).map(|k| k as f32).collect::<Vec<_>>(),
        0.0,
    );
    let y = Tensor::arange(24).reshape([2, 3, 4]).transpose([2, 0, 1]);
    assert_eq!(y.shape(), &[4, 2, 3]);
    assert_eq!(y.to_vec::<f32>()[..4], [0.0, 4.0, 8.0, 12.0]);
    assert_eq!(y.moveaxis(0, -1).shape(), &[2, 3, 4]);
    assert_eq!(
        Tensor::zeros([3, 1]).squeeze(1).expand_dims(0).shape(),
        &[1, 3]
    );
}

#[test]
fn matmul_2d_batched_broadcast_and_vectors() {
    common::setup();
    // Both kernels, whatever the adapter (the choice is global: one test covers both).
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Direct] {
        wgrad::set_matmul_kernel(kernel);
        matmul_cases();
    }
    wgrad::set_matmul_kernel(MatmulKernel::Auto);
}

fn matmul_cases() {
    let a = Tensor::arange(6).reshape([2, 3]);
    let b = Tensor::arange(12).reshape([3, 4]);
    let want = [20.0, 23.0, 26.0, 29.0, 56.0, 68.0, 80.0, 92.0];
    assert_close(&a.matmul(&b), &[2, 4], &want, 0.0);
    // Batched with a broadcast batch axis; the transposed operand is folded into the loads.
    let ab = Tensor::arange(12).reshape([2, 2, 3]);
    let y = ab.matmul(&b);
    assert_eq!(y.shape(), &[2, 2, 4]);
    assert_eq!(y.to_vec::<f32>()[..8], want);
    let yt = b.mt().matmul(&a.mt());
    assert_close(
        &yt,
        &[4, 2],
        &[20.0, 56.0, 23.0, 68.0, 26.0, 80.0, 29.0, 92.0],
        0.0,
    );
    // 1-D operands.
    let v = t(&[1.0, 1.0, 1.0], &[3]);
    assert_close(&a.matmul(&v), &[2], &[3.0, 12.0], 0.0);
    assert_close(&v.matmul(&b), &[4], &[12.0, 15.0, 18.0, 21.0], 0.0);
    assert_eq!(v.matmul(&v).item(), 3.0);
    // Sizes that are not multiples of the 64×64 tile, checked against a host product.
    for (m, k, n) in [
        (67, 131, 45),
        (64, 128, 64),
        (5, 8, 12),
        (33, 4, 7),
        (300, 20, 9),
    ] {
        host_check(m, k, n);
    }
}

fn host_check(m: usize, k: usize, n: usize) {
    let av: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
        .collect();
    let bv: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let mut host = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            host[i * n + j] = (0..k).map(|q| av[i * k + q] * bv[q * n + j]).sum();
        }
    }
    assert_close(
        &t(&av, &[m, k]).matmul(&t(&bv, &[k, n])),
        &[m, n],
        &host,
        1e-4,
    );
}

#[test]
fn odd_and_huge_sizes() {
    common::setup();
    for n in [1usize, 255, 257, 1000, 65_537] {
        let x = Tensor::ones([n]);
        assert_eq!((&x * 2.0).sum_all().item(), 2.0 * n as f32, "n = {n}");
    }
    // More elements than one grid of 65535 workgroups × 256 invocations: the grid folds to 2-D.
    let n = 65_535 * 256 + 1000;
    let x = Tensor::arange(n);
    let y = (&x * 0.0 + 1.0).sum_all();
    assert_eq!(y.item(), n as f32);
    let tail = (&x + 1.0).slice([n - 3], [n]).to_vec::<f32>();
    let want: Vec<f32> = (n - 3..n).map(|k| k as f32 + 1.0).collect();
    assert_eq!(tail, want);
    // A long reduction along an axis, many short ones.
    let z = Tensor::ones([3, 100_000]).sum_axes(1);
    assert_close(&z, &[3], &[100_000.0; 3], 0.0);
    let w = Tensor::ones([100_000, 3]).sum_axes(1);
    assert_eq!(w.sum_all().item(), 300_000.0);
    // Empty tensors.
    assert_eq!(
        Tensor::zeros([0, 3]).exp().to_vec::<f32>(),
        Vec::<f32>::new()
    );
    assert_eq!(Tensor::zeros([0, 3]).sum_all().item(), 0.0);
}

#[test]
fn creation_and_dtypes() {
    common::setup();
    assert_close(
        &Tensor::eye(3),
        &[3, 3],
        &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        0.0,
    );
    assert_close(&Tensor::full([2], 2.5), &[2], &[2.5, 2.5], 0.0);
    let i = Tensor::from_slice(&[3i32, -4, 5], [3]);
    assert_eq!((&i + &i).to_vec::<i32>(), vec![6, -8, 10]);
    assert_eq!(i.abs().to_vec::<i32>(), vec![3, 4, 5]);
    assert_eq!(i.max_all().to_vec::<i32>(), vec![5]);
    assert_eq!(i.cast(DType::F32).to_vec::<f32>(), vec![3.0, -4.0, 5.0]);
    assert_eq!(
        Tensor::iota([3], 0, DType::I32).unwrap().to_vec::<i32>(),
        vec![0, 1, 2]
    );
    let u = Tensor::rand([10_000], 3).to_vec::<f32>();
    assert!(u.iter().all(|v| (0.0..1.0).contains(v)));
    let mean = u.iter().sum::<f32>() / u.len() as f32;
    assert!((mean - 0.5).abs() < 0.02, "uniform mean {mean}");
    assert_eq!(
        Tensor::rand([8], 3).to_vec::<f32>(),
        Tensor::rand([8], 3).to_vec::<f32>()
    );
    assert_ne!(
        Tensor::rand([8], 3).to_vec::<f32>(),
        Tensor::rand([8], 4).to_vec::<f32>()
    );
    let z = Tensor::randn([20_000], 9);
    let m = z.mean_all().item();
    let var = (&z - m).square().mean_all().item();
    assert!(
        m.abs() < 0.03 && (var - 1.0).abs() < 0.05,
        "normal mean {m} var {var}"
    );
    let h = wgrad::device_info().shader_f16;
    let f16 = Tensor::zeros([2]).try_cast(DType::F16);
    if h {
        let x = Tensor::from_vec(
            vec![half::f16::from_f32(1.5), half::f16::from_f32(-2.0)],
            [2],
        );
        assert_eq!((&x * &x).sum_all().cast(DType::F32).item(), 6.25);
    } else {
        let e = f16.unwrap_err().to_string();
        assert!(e.contains("shader-f16"), "{e}");
    }
}

#[test]
fn display_is_numpy_like() {
    common::setup();
    let s = format!("{}", Tensor::arange(4).reshape([2, 2]));
    assert_eq!(
        s,
        "tensor([[0., 1.],\n        [2., 3.]], shape=[2, 2], dtype=f32)"
    );
    let b = format!("{:?}", Tensor::ones([2]).greater(&Tensor::zeros([2])));
    assert_eq!(b, "tensor([true, true], shape=[2], dtype=bool)");
    let big = format!("{}", Tensor::arange(5000));
    assert!(big.contains("...") && big.contains("4999."), "{big}");
}

#[test]
fn fusion_splits_when_a_kernel_would_bind_too_many_buffers() {
    common::setup();
    // 40 distinct buffers summed elementwise: more than any adapter binds in one kernel
    // (lavapipe 32, llvmpipe GL 16, browsers 8-10), so the fused group must be split.
    let xs: Vec<Tensor> = (0..40)
        .map(|k| Tensor::from_vec(vec![k as f32; 5], [5]))
        .collect();
    let total = xs.iter().skip(1).fold(xs[0].clone(), |acc, x| acc + x);
    assert_close(&total, &[5], &[780.0; 5], 0.0);
    let limit = wgrad::device_info().max_storage_buffers_per_shader_stage;
    assert!(limit < 40, "test needs more buffers than the limit {limit}");
}

#[test]
fn long_chains_fuse_in_bounded_kernels_and_drop_without_recursion() {
    common::setup();
    // 5000 elementwise steps without a realize: an explicit Euler integrator of dx/dt = -x,
    // each step reading the last once (one long chain, nothing shared).
    let mut x = Tensor::ones([4]);
    for _ in 0..5000 {
        x = x * (1.0 - 0.0001);
    }
    let want = (1.0f32 - 0.0001).powi(5000);
    assert_close(&x, &[4], &[want; 4], 1e-4);
    // A deep graph that is never realized drops without overflowing the stack.
    let mut y = Tensor::ones([2]);
    for _ in 0..200_000 {
        y = y.exp();
    }
    drop(y);
}

#[test]
fn tensors_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tensor>();
    common::setup();
    let x = Tensor::arange(4);
    let y = std::thread::spawn(move || (&x * 2.0).sum_all().item())
        .join()
        .unwrap();
    assert_eq!(y, 12.0);
}

#[test]
#[allow(deprecated)]
fn the_deprecated_two_argument_reductions_equal_the_new_forms() {
    common::setup();
    let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.5, 4.0, 0.5, -6.0], [2, 3]);
    type Old = fn(&Tensor, Axes, bool) -> Tensor;
    type New = fn(&Tensor) -> Tensor;
    let cases: Vec<(&str, Old, New, New, New)> = vec![
        (
            "sum",
            |x, a, k| x.sum(a, k),
            |x| x.sum_all(),
            |x| x.sum_axes(-1),
            |x| x.sum_keepdim(0),
        ),
        (
            "mean",
            |x, a, k| x.mean(a, k),
            |x| x.mean_all(),
            |x| x.mean_axes(-1),
            |x| x.mean_keepdim(0),
        ),
        (
            "max",
            |x, a, k| x.max(a, k),
            |x| x.max_all(),
            |x| x.max_axes(-1),
            |x| x.max_keepdim(0),
        ),
        (
            "min",
            |x, a, k| x.min(a, k),
            |x| x.min_all(),
            |x| x.min_axes(-1),
            |x| x.min_keepdim(0),
        ),
        (
            "prod",
            |x, a, k| x.prod(a, k),
            |x| x.prod_all(),
            |x| x.prod_axes(-1),
            |x| x.prod_keepdim(0),
        ),
        (
            "var",
            |x, a, k| x.var(a, k),
            |x| x.var_all(),
            |x| x.var_axes(-1),
            |x| x.var_keepdim(0),
        ),
        (
            "std",
            |x, a, k| x.std(a, k),
            |x| x.std_all(),
            |x| x.std_axes(-1),
            |x| x.std_keepdim(0),
        ),
    ];
    for (name, old, all, axes, keep) in cases {
        for (new, (a, k)) in [
            (all(&x), (Axes::All, false)),
            (axes(&x), (Axes::from(-1), false)),
            (keep(&x), (Axes::from(0), true)),
        ] {
            let want = old(&x, a, k);
            assert_eq!(new.shape(), want.shape(), "{name}");
            assert_eq!(new.to_vec::<f32>(), want.to_vec::<f32>(), "{name}");
        }
    }
    // Shapes: all axes dropped, one dropped, one kept.
    assert_eq!(x.sum_all().shape(), &[] as &[usize]);
    assert_eq!(x.sum_axes(-1).to_vec::<f32>(), vec![2.5, -1.5]);
    assert_eq!(x.sum_keepdim(0).shape(), &[1, 3]);
}
