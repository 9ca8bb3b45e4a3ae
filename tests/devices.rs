//! Devices as values: two devices in one process, an application's own wgpu device and
//! buffers, and devices from several threads at once: a long submit on one thread while another compiles
//! and runs new kernels (on GL, wgpu-hal's context lock gives up after 6 s and aborts the
//! process unless wgrad serializes its own device access and never waits on the GPU while
//! holding that lock).

mod common;

use std::time::Instant;
use wgrad::prelude::*;

/// `c ← c·I + 1`, `steps` times, in one loop node (one submit): every element ends at
/// `c0 + steps`, exactly, and each step is a `n × n` matmul of real work.
fn long_loop(n: usize, steps: usize) -> Tensor {
    let eye = Tensor::eye(n);
    let c0 = Tensor::zeros([n, n]);
    fori_loop(0, steps as i32, |_, c: &Tensor| c.matmul(&eye) + 1.0, &c0)
}

/// A chain of unary ops picked by the bits of `k`: a kernel no other `k` shares.
fn distinct_chain(x: &Tensor, k: usize) -> Tensor {
    let mut y = x.clone();
    for bit in 0..6 {
        y = if k >> bit & 1 == 1 {
            (y.sin() * 0.5).tanh()
        } else {
            y.cos() * 0.75 + 0.1
        };
    }
    y
}

fn distinct_chain_host(x: f32, k: usize) -> f32 {
    let mut y = x;
    for bit in 0..6 {
        y = if k >> bit & 1 == 1 {
            (y.sin() * 0.5).tanh()
        } else {
            y.cos() * 0.75 + 0.1
        };
    }
    y
}

#[test]
fn a_long_submit_does_not_starve_another_threads_kernels() {
    common::setup();
    let n = 384;
    // Size the loop so that its one submit takes at least ~12 s on this adapter: a short run
    // first (its time only chooses the step count; nothing is asserted about time).
    let probe_steps = 8;
    long_loop(n, probe_steps).realize();
    let started = Instant::now();
    let v = long_loop(n, probe_steps).to_vec::<f32>();
    let per_step = started.elapsed().as_secs_f64() / probe_steps as f64;
    assert!(v.iter().all(|&x| x == probe_steps as f32));
    let steps = ((12.0 / per_step.max(1e-6)) as usize).clamp(16, 20_000);

    let (tx, rx) = std::sync::mpsc::channel();
    let long = std::thread::spawn(move || {
        let c = long_loop(n, steps);
        tx.send(()).unwrap();
        let started = Instant::now();
        let v = c.to_vec::<f32>();
        (v, started.elapsed())
    });
    rx.recv().unwrap();
    // Meanwhile: new kernels (each compiles a pipeline), run and read back.
    let xs: Vec<f32> = (0..257).map(|i| i as f32 / 64.0 - 2.0).collect();
    let x = Tensor::from_slice(&xs, [xs.len()]);
    for k in 0..64 {
        let got = distinct_chain(&x, k).to_vec::<f32>();
        let want: Vec<f32> = xs.iter().map(|&v| distinct_chain_host(v, k)).collect();
        common::close(&got, &want, 1e-5, 1e-5).unwrap_or_else(|e| panic!("chain {k}: {e}"));
    }
    let (v, took) = long.join().expect("the long submit's thread panicked");
    eprintln!(
        "long loop: {steps} steps of a {n}x{n} matmul in one submit, {:.1} s",
        took.as_secs_f64()
    );
    assert_eq!(v.len(), n * n);
    assert!(
        v.iter().all(|&x| x == steps as f32),
        "loop result wrong: {:?}",
        &v[..4]
    );
}

fn app_buffer(device: &wgpu::Device, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app"),
        size: bytes,
        usage,
        mapped_at_creation: false,
    })
}

/// Reads `bytes` of `buffer` from `offset` with the application's own copy and map.
fn app_read(dev: &wgrad::Device, buffer: &wgpu::Buffer, offset: u64, bytes: u64) -> Vec<f32> {
    let (device, queue) = dev.wgpu().unwrap();
    let staging = app_buffer(
        &device,
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
    queue.submit([enc.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.unwrap());
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let v = bytemuck::pod_collect_to_vec(&staging.slice(..).get_mapped_range().unwrap());
    staging.unmap();
    v
}

#[test]
fn two_devices_compute_side_by_side_and_refuse_to_mix() {
    common::setup();
    let other = wgrad::Device::open().unwrap();
    assert_ne!(other, wgrad::Device::default());
    let xs = [0.5f32, -1.0, 2.0];
    let a = Tensor::from_slice(&xs, [3]);
    let b = wgrad::with_device(&other, || Tensor::from_slice(&xs, [3]));
    assert_eq!(b.device(), other);
    // Constants made outside every `with_device` join whichever device they meet.
    let f = |x: &Tensor| (x.sin() * x * 2.0).sum_all();
    let (ga, gb) = (grad(f)(&a), grad(f)(&b));
    assert_eq!(gb.device(), other);
    assert_eq!(ga.device(), wgrad::Device::default());
    let want: Vec<f32> = xs.iter().map(|&x| 2.0 * (x.sin() + x * x.cos())).collect();
    common::close(&ga.to_vec::<f32>(), &want, 1e-5, 1e-5).unwrap();
    common::close(&gb.to_vec::<f32>(), &want, 1e-5, 1e-5).unwrap();

    // Mixing is an error naming both devices, as the op is built or realized.
    let e = a.try_add(&b).unwrap_err();
    assert!(
        matches!(e, wgrad::Error::DeviceMismatch { op: "add", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{:?}", wgrad::Device::default())),
        "{msg}"
    );
    assert!(msg.contains(&format!("{other:?}")), "{msg}");
    // A lazy node built from two floating tensors that were then placed on two devices.
    let p = Tensor::from_slice(&xs, [3]);
    let q = Tensor::from_slice(&xs, [3]);
    let sum = &p + &q;
    p.realize();
    wgrad::with_device(&other, || q.realize());
    assert_eq!(q.device(), other);
    let e = sum.try_realize().unwrap_err();
    assert!(matches!(e, wgrad::Error::DeviceMismatch { .. }), "{e}");
    assert!(!sum.is_realized(), "a failed realize changes nothing");
    // Printing it never panics: it shows the error instead of values.
    let shown = format!("{sum:?}");
    assert!(
        shown.contains("two devices") && shown.contains("shape=[3]"),
        "{shown}"
    );
    // Moving is explicit.
    let moved = q.to_device(&wgrad::Device::default());
    assert_eq!((&p + &moved).to_vec::<f32>(), vec![1.0, -2.0, 4.0]);
    assert_eq!(b.to_device(&other).id(), b.id());
}

#[test]
fn an_applications_own_device_and_buffers_are_used_without_copies() {
    common::setup();
    // The application's device, not wgrad's.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let info = wgrad::device_info();
    let adapter = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .find(|a| {
            a.get_info().name == info.name
                && format!("{:?}", a.get_info().backend).to_lowercase() == info.backend
        })
        .expect("the adapter wgrad uses");
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default())).unwrap();
    let dev = wgrad::Device::from_wgpu(&adapter.get_info(), device.clone(), queue.clone());
    assert_eq!(dev.info().unwrap().name, info.name);

    // A buffer of the application's, its tensor 256 bytes in.
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let buffer = app_buffer(&device, 512, usage);
    let xs: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
    queue.write_buffer(&buffer, 256, bytemuck::cast_slice(&xs));
    let x = Tensor::from_wgpu_buffer(&dev, &buffer, 256, [2, 3], DType::F32).unwrap();
    assert!(x.is_realized());
    assert_eq!(x.device(), dev);
    let f = |x: &Tensor| (x.tanh() * x).sum_all();
    let g = grad(f)(&x);
    let want: Vec<f32> = xs
        .iter()
        .map(|&v| v.tanh() + v * (1.0 - v.tanh().powi(2)))
        .collect();
    common::close(&g.to_vec::<f32>(), &want, 1e-5, 1e-5).unwrap();
    // A loop whose carry starts as the buffer: the buffer itself is never written.
    let y = fori_loop(0, 5, |_, c: &Tensor| c * 2.0 + 1.0, &x);
    let want_y: Vec<f32> = xs
        .iter()
        .map(|&v| (0..5).fold(v, |c, _| c * 2.0 + 1.0))
        .collect();
    assert_eq!(y.to_vec::<f32>(), want_y);
    assert_eq!(app_read(&dev, &buffer, 256, 24), xs);

    // wgrad's result read by the application's own copy.
    let out = g.wgpu_buffer().unwrap();
    assert_eq!(out.size, 24);
    assert_eq!(
        app_read(&dev, &out.buffer, out.offset, out.size),
        g.to_vec::<f32>()
    );

    // The application changes the buffer; a new computation from the tensor sees it.
    queue.write_buffer(&buffer, 256, bytemuck::cast_slice(&[3.0f32; 6]));
    assert_eq!((&x * 1.0).to_vec::<f32>(), vec![3.0; 6]);

    // Buffers that cannot hold the tensor are refused, naming what is wrong.
    let no_storage = app_buffer(
        &device,
        64,
        wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    );
    let e = Tensor::from_wgpu_buffer(&dev, &no_storage, 0, [4], DType::F32).unwrap_err();
    assert!(
        matches!(e, wgrad::Error::Buffer { .. }) && e.to_string().contains("STORAGE"),
        "{e}"
    );
    let e = Tensor::from_wgpu_buffer(&dev, &buffer, 4, [4], DType::F32).unwrap_err();
    assert!(e.to_string().contains("alignment"), "{e}");
    let e = Tensor::from_wgpu_buffer(&dev, &buffer, 256, [65], DType::F32).unwrap_err();
    assert!(
        e.to_string().contains("260 bytes") && e.to_string().contains("512"),
        "{e}"
    );
    // The default device's tensors do not mix with the application's device's.
    assert!(matches!(
        x.try_add(Tensor::ones([2, 3]).realize().clone()),
        Err(wgrad::Error::DeviceMismatch { .. })
    ));
}

#[test]
fn a_scoped_policy_holds_for_its_closure_on_its_thread_only() {
    common::setup();
    let global = wgrad::policy();
    let other = match global.matmul {
        wgrad::MatmulKernel::Tiled => wgrad::MatmulKernel::Direct,
        _ => wgrad::MatmulKernel::Tiled,
    };
    let a = Tensor::from_vec((0..12).map(|i| i as f32).collect(), [3, 4]);
    let b = Tensor::from_vec((0..8).map(|i| 1.0 - i as f32).collect(), [4, 2]);
    let plain = a.matmul(&b).to_vec::<f32>();
    let scoped = wgrad::with_policy(
        wgrad::Policy {
            matmul: other,
            ..global.clone()
        },
        || {
            assert_eq!(wgrad::policy().matmul, other);
            // Nested scopes and other threads.
            wgrad::with_policy(global.clone(), || assert_eq!(wgrad::policy(), global));
            let elsewhere = std::thread::spawn(wgrad::policy).join().unwrap();
            assert_eq!(elsewhere, global);
            (&a + 0.0).matmul(&b).to_vec::<f32>()
        },
    );
    assert_eq!(wgrad::policy(), global);
    assert_eq!(plain, scoped);
}

#[test]
fn a_jitted_function_serves_each_device_it_is_called_under() {
    common::setup();
    // Traced under device a, the constants of the trace (the 0.5 and the 3) are placed on a;
    // a call under device b traces again instead of mixing the two.
    let f = jit(|x: &Tensor| (x * 0.5 + 3.0).exp());
    let (a, b) = (Device::open().unwrap(), Device::open().unwrap());
    for d in [&a, &b, &a] {
        let y = wgrad::with_device(d, || f(&Tensor::from_vec(vec![0.0f32, 2.0], [2])));
        assert_eq!(y.device(), *d);
        let v = y.to_vec::<f32>();
        common::close(&v, &[3f32.exp(), 4f32.exp()], 1e-6, 0.0).unwrap();
    }
}
