//! Checkpoints: round trips of every dtype, files made by Python's safetensors, errors that
//! name the tensor and leave nothing half-loaded.

use wgrad::checkpoint;
use wgrad::prelude::*;

struct Layer {
    w: Tensor,
    b: Option<Tensor>,
}
wgrad::tree_struct!(Layer { w, b });

struct Model {
    layers: Vec<Layer>,
    steps: Tensor,
    mask: Tensor,
    /// f16 only where the adapter has `shader-f16` (not llvmpipe's GL).
    half: Option<Tensor>,
}
wgrad::tree_struct!(Model {
    layers,
    steps,
    mask,
    half
});

fn f16_ok() -> bool {
    wgrad::device_info().shader_f16
}

fn template() -> Model {
    Model {
        layers: vec![
            Layer {
                w: Tensor::zeros([2, 3]),
                b: Some(Tensor::zeros([3])),
            },
            Layer {
                w: Tensor::zeros([3, 1]),
                b: None,
            },
        ],
        steps: Tensor::from_slice(&[0i32, 0], [2]),
        mask: Tensor::from_slice(&[false; 3], [3]),
        half: f16_ok().then(|| Tensor::from_slice(&[half::f16::ZERO; 2], [2])),
    }
}

fn python_values() -> Model {
    Model {
        layers: vec![
            Layer {
                w: Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 1e-3, 3.5e8, -0.0], [2, 3]),
                b: Some(Tensor::from_vec(vec![0.25f32, -0.125, 7.0], [3])),
            },
            Layer {
                w: Tensor::from_vec(vec![1.0f32, 2.0, -3.0], [3, 1]),
                b: None,
            },
        ],
        steps: Tensor::from_slice(&[7i32, i32::MIN], [2]),
        mask: Tensor::from_slice(&[true, false, true], [3]),
        half: f16_ok().then(|| {
            Tensor::from_slice(
                &[half::f16::from_f32(1.5), half::f16::from_f32(-65504.0)],
                [2],
            )
        }),
    }
}

#[test]
fn a_file_made_by_python_loads() {
    let bytes = std::fs::read("tests/data/from_python.safetensors").unwrap();
    let (m, meta) = checkpoint::from_bytes(&bytes, &template()).unwrap();
    assert_eq!(meta["framework"], "numpy");
    assert_eq!(meta["epoch"], "12");
    let w: Vec<f32> = m.layers[0].w.to_vec();
    assert_eq!(w, vec![0.5, -1.0, 2.0, 1e-3, 3.5e8, -0.0]);
    assert!(w[5].is_sign_negative());
    assert_eq!(m.layers[1].w.to_vec::<f32>(), vec![1.0, 2.0, -3.0]);
    assert_eq!(m.steps.to_vec::<i32>(), vec![7, i32::MIN]);
    assert_eq!(m.mask.to_vec::<bool>(), vec![true, false, true]);
    if let Some(h) = &m.half {
        assert_eq!(
            h.to_vec::<half::f16>(),
            vec![half::f16::from_f32(1.5), half::f16::from_f32(-65504.0)]
        );
        assert_eq!(h.dtype(), DType::F16);
    } else {
        // Not a silent skip: without shader-f16 an f16 tensor is refused, by name.
        let e = Tensor::try_from_slice(&[half::f16::ZERO; 2], [2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("shader-f16"), "{e}");
    }
}

#[test]
fn what_wgrad_writes_is_byte_for_byte_what_python_writes() {
    // The reference file has no f16 tensor (not every adapter can hold one).
    let values = Model {
        half: None,
        ..python_values()
    };
    let ours = checkpoint::to_bytes(&values, &[]).unwrap();
    let theirs = std::fs::read("tests/data/from_python_plain.safetensors").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ours[..ours.len().min(400)]),
        String::from_utf8_lossy(&theirs[..theirs.len().min(400)])
    );
    assert_eq!(ours, theirs);
}

#[test]
fn save_and_load_a_trained_tree_with_metadata() {
    let dir = std::env::temp_dir().join(format!("wgrad-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    // Lazy leaves are realized on save.
    let m = python_values();
    let lazy = Model {
        layers: vec![
            Layer {
                w: m.layers[0].w.exp(),
                b: m.layers[0].b.clone(),
            },
            Layer {
                w: &m.layers[1].w * 2.0,
                b: None,
            },
        ],
        ..m
    };
    checkpoint::save(&path, &lazy, &[("step", "41")]).unwrap();
    let (back, meta) = checkpoint::load(&path, &template()).unwrap();
    assert_eq!(meta["step"], "41");
    assert_eq!(back.layers[1].w.to_vec::<f32>(), vec![2.0, 4.0, -6.0]);
    assert_eq!(
        back.layers[0].w.to_vec::<f32>(),
        lazy.layers[0].w.to_vec::<f32>()
    );
    assert!(!dir.join("model.safetensors.partial").exists());
    // The optimizer state is a tree too.
    let opt = wgrad::optim::adam(0.1);
    let p = (Tensor::ones([2]), Tensor::ones([3]));
    let mut s = opt.init(&p);
    let g = (Tensor::ones([2]), Tensor::full([3], 2.0));
    let _ = opt.update(&g, &mut s, &p);
    let bytes = checkpoint::to_bytes(&s, &[]).unwrap();
    assert_eq!(
        checkpoint::names(&bytes).unwrap(),
        ["0.adam.mu.0", "0.adam.mu.1", "0.adam.nu.0", "0.adam.nu.1"]
    );
    let (s2, _) = checkpoint::from_bytes(&bytes, &opt.init(&p)).unwrap();
    assert_eq!(
        s2.slot("adam", "nu").unwrap()[1].to_vec::<f32>(),
        s.slot("adam", "nu").unwrap()[1].to_vec::<f32>()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_files_are_clear_errors_and_nothing_is_half_loaded() {
    let bytes = std::fs::read("tests/data/from_python.safetensors").unwrap();
    // A missing tensor.
    struct Extra {
        w: Tensor,
        gamma: Tensor,
    }
    wgrad::tree_struct!(Extra { w, gamma });
    let t = Extra {
        w: Tensor::zeros([2]),
        gamma: Tensor::zeros([2]),
    };
    let e = match checkpoint::from_bytes(&bytes, &t) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("loaded a file that lacks `w`"),
    };
    assert!(
        e.contains("no tensor `w`") && e.contains("layers.0.w"),
        "{e}"
    );
    // A shape mismatch on a later leaf: the error names it.
    let mut tm = template();
    tm.mask = Tensor::from_slice(&[false; 4], [4]);
    let e = match checkpoint::from_bytes(&bytes, &tm) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("loaded a mismatched shape"),
    };
    assert!(
        e.contains("`mask`") && e.contains("[3]") && e.contains("[4]"),
        "{e}"
    );
    // A dtype mismatch.
    let mut tm = template();
    tm.steps = Tensor::zeros([2]);
    let e = match checkpoint::from_bytes(&bytes, &tm) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("loaded i32 into f32"),
    };
    assert!(
        e.contains("`steps`") && e.contains("I32") && e.contains("f32"),
        "{e}"
    );
    // Truncated and garbage files.
    for bad in [
        &bytes[..bytes.len() - 3],
        &b"not a checkpoint at all"[..],
        &[][..],
    ] {
        let e = match checkpoint::from_bytes(bad, &template()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("loaded a broken file"),
        };
        assert!(e.starts_with("checkpoint bytes:"), "{e}");
    }
    // A missing file names the path.
    let e = match checkpoint::load("/nonexistent/dir/m.safetensors", &template()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!(),
    };
    assert!(
        e.contains("/nonexistent/dir/m.safetensors") && e.contains("cannot read"),
        "{e}"
    );
    // The template is untouched by failures.
    assert_eq!(template().layers[0].w.to_vec::<f32>(), vec![0.0; 6]);
}
