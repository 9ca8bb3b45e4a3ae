//! Checkpoints in the [safetensors](https://github.com/huggingface/safetensors) format: any tree
//! is saved with one tensor per leaf, named by its path ([`crate::tree::named_leaves`]:
//! `layers.0.w`), in its own dtype; loading fills a tree of the same structure. Files written
//! here load in Python (`safetensors.numpy.load_file`, PyTorch, JAX) and the other way round.
//!
//! ```
//! use wgrad::prelude::*;
//! use wgrad::checkpoint;
//!
//! struct Params { w: Tensor, b: Tensor }
//! wgrad::tree_struct!(Params { w, b });
//!
//! let p = Params { w: Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]), b: Tensor::zeros([2]) };
//! let bytes = checkpoint::to_bytes(&p, &[("epoch", "3")]).unwrap();
//! let template = Params { w: Tensor::zeros([2, 2]), b: Tensor::zeros([2]) };
//! let (q, meta) = checkpoint::from_bytes(&bytes, &template).unwrap();
//! assert_eq!(q.w.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
//! assert_eq!(meta["epoch"], "3");
//! ```
//!
//! Loading is all or nothing: a missing tensor, or one whose shape or dtype differs from the
//! template's, is an error naming it, and no tensor of the result is made. Tensors in the file
//! that the template lacks are ignored (a file may hold more than one tree's worth).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};

use crate::base::dtype::DType;
use crate::base::error::{Error, Result};
use crate::ir::tensor::Tensor;
use crate::tree::Tree;

struct HostTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn err<T>(source: &str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Checkpoint {
        source: source.to_string(),
        msg: msg.into(),
    })
}

fn file_dtype(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::I32 => Dtype::I32,
        DType::U32 => Dtype::U32,
        DType::Bool => Dtype::BOOL,
    }
}

fn host_bytes(t: &Tensor) -> Result<Vec<u8>> {
    fn le<T: crate::ir::tensor::Element>(t: &Tensor, f: impl Fn(T) -> Vec<u8>) -> Result<Vec<u8>> {
        Ok(t.try_to_vec::<T>()?.into_iter().flat_map(f).collect())
    }
    match t.dtype() {
        DType::F32 => le(t, |v: f32| v.to_le_bytes().to_vec()),
        DType::F16 => le(t, |v: half::f16| v.to_le_bytes().to_vec()),
        DType::I32 => le(t, |v: i32| v.to_le_bytes().to_vec()),
        DType::U32 => le(t, |v: u32| v.to_le_bytes().to_vec()),
        DType::Bool => le(t, |v: bool| vec![v as u8]),
    }
}

/// The tree as safetensors bytes, with string `metadata` in the header.
///
/// ```
/// use wgrad::prelude::*;
/// let bytes = wgrad::checkpoint::to_bytes(&vec![Tensor::ones([3])], &[]).unwrap();
/// assert_eq!(wgrad::checkpoint::names(&bytes).unwrap(), ["0"]);
/// ```
pub fn to_bytes<T: Tree>(tree: &T, metadata: &[(&str, &str)]) -> Result<Vec<u8>> {
    let named = crate::tree::named_leaves(tree);
    let mut seen = std::collections::HashSet::new();
    for (name, _) in &named {
        if !seen.insert(name.as_str()) {
            return err("bytes", format!("two leaves are both named `{name}`"));
        }
    }
    crate::runtime::read::try_realize(&named.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>())?;
    let mut host = Vec::with_capacity(named.len());
    for (name, t) in &named {
        host.push((
            name.clone(),
            HostTensor {
                dtype: file_dtype(t.dtype()),
                shape: t.shape().to_vec(),
                bytes: host_bytes(t)?,
            },
        ));
    }
    let info = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>()
    });
    safetensors::serialize(host.iter().map(|(n, t)| (n.as_str(), t)), info)
        .or_else(|e| err("bytes", e.to_string()))
}

/// Writes the tree to `path` as safetensors (see [`to_bytes`]); the file is written whole
/// or not at all (a temporary file, flushed to disk, renamed into place), so a process killed
/// while saving leaves the previous file as it was.
///
/// ```no_run
/// use wgrad::prelude::*;
/// wgrad::checkpoint::save("model.safetensors", &(Tensor::ones([2]), Tensor::zeros([3])), &[("step", "100")]).unwrap();
/// ```
pub fn save<T: Tree>(path: impl AsRef<Path>, tree: &T, metadata: &[(&str, &str)]) -> Result<()> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let bytes = to_bytes(tree, metadata).or_else(|e| match e {
        Error::Checkpoint { msg, .. } => err(&source, msg),
        e => Err(e),
    })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    // On disk before the rename, so that a crash after it cannot leave a short file in
    // place of the previous good one.
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()
    });
    written.or_else(|e| err(&source, format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, path).or_else(|e| err(&source, format!("cannot write: {e}")))
}

/// A tree of `template`'s structure whose leaves are the tensors of the same names in the
/// safetensors `bytes`, and the file's metadata.
///
/// ```
/// use wgrad::prelude::*;
/// let bytes = wgrad::checkpoint::to_bytes(&Tensor::from_vec(vec![7.0f32], [1]), &[]).unwrap();
/// let e = wgrad::checkpoint::from_bytes(&bytes, &Tensor::zeros([2])).unwrap_err();
/// assert!(e.to_string().contains("shape [1]") && e.to_string().contains("[2]"));
/// ```
pub fn from_bytes<T: Tree>(bytes: &[u8], template: &T) -> Result<(T, HashMap<String, String>)> {
    read(bytes, template, "bytes")
}

/// [`from_bytes`] on the file at `path`.
///
/// ```no_run
/// use wgrad::prelude::*;
/// let template = (Tensor::zeros([2]), Tensor::zeros([3]));
/// let (params, metadata) = wgrad::checkpoint::load("model.safetensors", &template).unwrap();
/// ```
pub fn load<T: Tree>(path: impl AsRef<Path>, template: &T) -> Result<(T, HashMap<String, String>)> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let bytes = std::fs::read(path).or_else(|e| err(&source, format!("cannot read: {e}")))?;
    read(&bytes, template, &source)
}

/// The names of the tensors in safetensors `bytes`, sorted.
///
/// ```
/// use wgrad::prelude::*;
/// let b = wgrad::checkpoint::to_bytes(&(Tensor::ones([1]), Tensor::ones([1])), &[]).unwrap();
/// assert_eq!(wgrad::checkpoint::names(&b).unwrap(), ["0", "1"]);
/// ```
pub fn names(bytes: &[u8]) -> Result<Vec<String>> {
    let st = SafeTensors::deserialize(bytes)
        .or_else(|e| err("bytes", format!("not a safetensors file: {e}")))?;
    let mut v: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    v.sort();
    Ok(v)
}

fn make<E: crate::ir::tensor::Element>(v: Vec<E>, shape: &[usize]) -> Result<Tensor> {
    Tensor::try_from_slice(&v, shape)
}

fn read<T: Tree>(bytes: &[u8], template: &T, source: &str) -> Result<(T, HashMap<String, String>)> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .or_else(|e| err(source, format!("not a safetensors file: {e}")))?;
    let st = SafeTensors::deserialize(bytes)
        .or_else(|e| err(source, format!("not a safetensors file: {e}")))?;
    let named = crate::tree::named_leaves(template);
    // Check everything before making any tensor.
    let mut views = Vec::with_capacity(named.len());
    for (name, t) in &named {
        let v = match st.tensor(name) {
            Ok(v) => v,
            Err(_) => {
                let mut have = names(bytes)?;
                have.truncate(8);
                return err(
                    source,
                    format!("no tensor `{name}` (the file has {})", have.join(", ")),
                );
            }
        };
        if v.shape() != t.shape() {
            return err(
                source,
                format!(
                    "tensor `{name}` has shape {:?}, the template {:?}",
                    v.shape(),
                    t.shape()
                ),
            );
        }
        if v.dtype() != file_dtype(t.dtype()) {
            return err(
                source,
                format!(
                    "tensor `{name}` is {:?}, the template {}",
                    v.dtype(),
                    t.dtype()
                ),
            );
        }
        views.push(v);
    }
    let mut leaves = Vec::with_capacity(named.len());
    for ((_, t), v) in named.iter().zip(&views) {
        let d = v.data();
        let shape = t.shape();
        let made = match t.dtype() {
            DType::F32 => make(
                d.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                shape,
            ),
            DType::F16 => make(
                d.chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                    .collect(),
                shape,
            ),
            DType::I32 => make(
                d.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                shape,
            ),
            DType::U32 => make(
                d.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                shape,
            ),
            DType::Bool => make(d.iter().map(|b| *b != 0).collect(), shape),
        }?;
        leaves.push(made);
    }
    let metadata = meta.metadata().clone().unwrap_or_default();
    Ok((template.rebuild(leaves), metadata))
}
