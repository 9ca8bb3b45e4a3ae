//! A wgpu application that owns its GPU device and lets wgrad differentiate on it: the
//! application fills a buffer with its own compute pass, wraps it as a tensor (no copy), wgrad
//! computes a gradient on the same device, and the application reads wgrad's result through a
//! second pass of its own.
//!
//! Run: `cargo run --release --example native_app` (`WGRAD_BACKEND=gl` for GL).

use wgrad::prelude::*;

const N: usize = 1000;

/// The application's first pass: `x[i] = sin(0.01 i)`.
const FILL: &str = "
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x < arrayLength(&x)) { x[id.x] = sin(0.01 * f32(id.x)); }
}";

/// The application's second pass, over wgrad's result: `out[i] = 10 g[i]`.
const SCALE: &str = "
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x < arrayLength(&out)) { out[id.x] = 10.0 * g[id.x]; }
}";

fn backends() -> wgpu::Backends {
    match std::env::var("WGRAD_BACKEND").as_deref() {
        Ok("gl") => wgpu::Backends::GL,
        Ok("vulkan") => wgpu::Backends::VULKAN,
        _ => wgpu::Backends::all(),
    }
}

/// One dispatch of `source` over `buffers` (bound in order, from `offsets`), `N` threads.
fn dispatch(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    source: &str,
    buffers: &[(&wgpu::Buffer, u64, u64)],
) {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("app pass"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("app pass"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(k, (b, offset, size))| wgpu::BindGroupEntry {
            binding: k as u32,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: b,
                offset: *offset,
                size: std::num::NonZeroU64::new(*size),
            }),
        })
        .collect();
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(N.div_ceil(64) as u32, 1, 1);
    }
    queue.submit([enc.finish()]);
}

fn main() {
    // The application's own device.
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends();
    let instance = wgpu::Instance::new(desc);
    let adapter =
        pollster::block_on(instance.request_adapter(&Default::default())).unwrap_or_else(|e| {
            eprintln!("no adapter ({e}); install mesa-vulkan-drivers");
            std::process::exit(1);
        });
    let (device, queue) =
        pollster::block_on(adapter.request_device(&Default::default())).expect("a device");
    let ai = adapter.get_info();
    println!("application's adapter: {} ({:?})", ai.name, ai.backend);

    // 1. The application writes a buffer with its own pass.
    let bytes = (N * 4) as u64;
    let storage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let make = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("app"),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    let x_buf = make(storage);
    dispatch(&device, &queue, FILL, &[(&x_buf, 0, bytes)]);

    // 2. wgrad shares the device, wraps the buffer (no copy) and differentiates.
    let dev = wgrad::Device::from_wgpu(&adapter.get_info(), device.clone(), queue.clone());
    let x = Tensor::from_wgpu_buffer(&dev, &x_buf, 0, [N], DType::F32).expect("wrap");
    let energy = |x: &Tensor| (x.tanh().square() * 0.5).sum_all();
    let (e, g) = value_and_grad(energy)(&x);
    let g_buf = g.wgpu_buffer().expect("realized gradient");
    println!("energy on the application's device: {:.6}", e.item());

    // 3. The application reads wgrad's result with a pass of its own, then maps it.
    let out = make(storage);
    dispatch(
        &device,
        &queue,
        SCALE,
        &[(&g_buf.buffer, g_buf.offset, g_buf.size), (&out, 0, bytes)],
    );
    let staging = make(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(&out, 0, &staging, 0, bytes);
    queue.submit([enc.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    let got: Vec<f32> =
        bytemuck::pod_collect_to_vec(&staging.slice(..).get_mapped_range().unwrap());

    // d/dx ½ tanh²(x) = tanh(x) (1 − tanh²(x)).
    let worst = got
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let t = (0.01 * i as f32).sin().tanh();
            (v - 10.0 * t * (1.0 - t * t)).abs()
        })
        .fold(0.0f32, f32::max);
    println!("largest error of 10·grad read by the application's pass: {worst:.2e}");
    assert!(worst < 1e-4, "wrong gradient");
    println!("ok");
}
