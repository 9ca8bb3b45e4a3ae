//! [`Replicated`]: one copy of a tree per device of a data-parallel run.

use crate::base::error::Result;
use crate::device::Device;
use crate::ir::tensor::Tensor;
use crate::tree::Tree;

/// One copy of a tree (parameters, optimizer state, gradients) per device of a
/// [`DataParallel`](super::DataParallel), in the order of its devices.
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::parallel::DataParallel;
/// let dp = DataParallel::new(vec![wgrad::Device::open().unwrap(), wgrad::Device::open().unwrap()]).unwrap();
/// let w = dp.replicate(&Tensor::from_vec(vec![1.0f32, 2.0], [2])).unwrap();
/// assert_eq!(w.len(), 2);
/// assert_eq!(w[1].device(), dp.devices()[1]);
/// assert_eq!(w.first().to_vec::<f32>(), w[1].to_vec::<f32>());
/// ```
#[derive(Clone)]
pub struct Replicated<T> {
    pub(crate) copies: Vec<T>,
    pub(crate) devices: Vec<Device>,
}

impl<T> Replicated<T> {
    /// How many copies (one per device of this process).
    pub fn len(&self) -> usize {
        self.copies.len()
    }
    /// Whether there are no copies (never, for a value made by a `DataParallel`).
    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }
    /// The first device's copy: what to evaluate, print or save (every copy holds the same
    /// values).
    pub fn first(&self) -> &T {
        &self.copies[0]
    }
    /// The copies, in device order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.copies.iter()
    }
    /// The devices, in the copies' order.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }
    /// The copies, in device order.
    pub fn into_vec(self) -> Vec<T> {
        self.copies
    }
}

impl<T> std::fmt::Debug for Replicated<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Replicated({} copies on {:?})",
            self.copies.len(),
            self.devices
        )
    }
}

impl<T> std::ops::Index<usize> for Replicated<T> {
    type Output = T;
    fn index(&self, k: usize) -> &T {
        &self.copies[k]
    }
}

impl<T: Tree> Replicated<T> {
    /// Computes every copy's pending work, the devices concurrently (one thread each), and
    /// returns once all are done; the first error, naming its device, if any failed.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let dp = wgrad::parallel::DataParallel::new(vec![wgrad::Device::default()]).unwrap();
    /// let w = dp.map(|_, _| Tensor::ones([3]).exp());
    /// w.realize().unwrap();
    /// assert!(w.first().is_realized());
    /// ```
    pub fn realize(&self) -> Result<()> {
        let per_device: Vec<Vec<Tensor>> = self.copies.iter().map(Tree::leaves).collect();
        super::reduce::realize_concurrently(&self.devices, per_device)
    }
}
