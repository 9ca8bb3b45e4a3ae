//! Generated kernels of every primitive family on the real device (each pipeline is validated
//! by naga before the device compiles it; an invalid one would fail these ops). Every kernel
//! variant is also rendered and validated without a device by the `validation` unit tests.

use crate::common;

use wgrad::prelude::*;

#[test]
fn generated_kernels_of_every_family_validate_and_run() {
    common::setup();
    let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.25, 1.5, -0.5], [2, 3]);
    let i = Tensor::from_slice(&[1i32, -2, 3], [3]);
    let outs = [
        x.exp()
            .sin()
            .tanh()
            .sigmoid()
            .abs()
            .sqrt()
            .log()
            .neg()
            .sign(),
        x.pow(Tensor::scalar(2.0)).maximum(&x).minimum(x.cos()),
        where_(&x.greater(&x.cos()), &x, &x.less(&x).cast(DType::F32)),
        x.transpose([1, 0])
            .slice([1, 0], [3, 2])
            .pad([1, 0], [0, 1])
            .broadcast_to([2, 3, 3]),
        concat(&[x.clone(), x.clone()], 1).reshape([3, 4]),
        x.sum_axes(0).expand_dims(0) + x.max_keepdim(1),
        Tensor::ones([3, 100_000]).sum_axes(1).expand_dims(0),
        x.matmul(&x.mt()),
        Tensor::rand([2, 3], 1) + Tensor::eye(3).slice([0, 0], [2, 3]),
        (&i * &i).max_all().cast(DType::F32).broadcast_to([1, 1]),
    ];
    wgrad::realize(&outs);
    for o in &outs {
        assert!(o.to_f32_vec().iter().all(|v| v.is_finite()));
    }
}
