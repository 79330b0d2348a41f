//! A small pickle virtual machine (protocols 2–5) for PyTorch's `data.pkl`.
//!
//! It builds a generic value tree and understands just enough of torch's reduction functions to
//! describe tensors ([`TensorRef`]); storages are resolved later by the `.pth` reader. Containers
//! live in an arena ([`Pickle::objs`]) and values refer to them by index, so shared objects (the
//! memo) are cheap to copy, cycles are harmless and dropping never recurses.

use std::rc::Rc;

pub use crate::dtype::StorageDtype;

/// A pickled value. Containers and objects are [`Value::Ref`]s into the arena.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Python `None`.
    None,
    /// Python `bool`.
    Bool(bool),
    /// Python `int` that fits in 64 bits.
    Int(i64),
    /// Python `int` wider than 64 bits (kept opaque).
    BigInt,
    /// Python `float`.
    Float(f64),
    /// Python `str`.
    Str(Rc<str>),
    /// Python `bytes` or `bytearray`.
    Bytes(Rc<[u8]>),
    /// An object in [`Pickle::objs`].
    Ref(usize),
}

/// A storage named by a persistent id `('storage', torch.XStorage, key, location, numel)`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// Element type.
    pub dtype: StorageDtype,
    /// Entry name under `<archive>/data/`.
    pub key: String,
    /// Number of elements the pickle declares.
    pub numel: u64,
}

/// A tensor view `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// The storage.
    pub storage: StorageRef,
    /// Offset in elements.
    pub offset: u64,
    /// Shape.
    pub size: Vec<u64>,
    /// Strides in elements.
    pub stride: Vec<u64>,
}

/// Objects of the arena.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    /// `tuple`.
    Tuple(Vec<Value>),
    /// `list`.
    List(Vec<Value>),
    /// `dict` or `collections.OrderedDict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A class or function named by `GLOBAL`/`STACK_GLOBAL`.
    Global {
        /// Module, for example `torch._utils`.
        module: String,
        /// Name, for example `_rebuild_tensor_v2`.
        name: String,
    },
    /// A torch storage.
    Storage(StorageRef),
    /// A torch tensor.
    Tensor(TensorRef),
    /// Anything else (an instance of a class we do not model), named by its class.
    Opaque(String),
}

/// The result of unpickling: the top value and the arena it refers into.
#[derive(Debug)]
pub struct Pickle {
    /// The value returned by `STOP`.
    pub top: Value,
    /// Every container and object.
    pub objs: Vec<Obj>,
}

impl Pickle {
    /// The object behind `v`, if it is a reference.
    pub fn obj(&self, v: &Value) -> Option<&Obj> {
        match v {
            Value::Ref(i) => self.objs.get(*i),
            _ => None,
        }
    }

    /// Entries of the dict behind `v`, if it is one.
    pub fn dict(&self, v: &Value) -> Option<&[(Value, Value)]> {
        match self.obj(v) {
            Some(Obj::Dict(items)) => Some(items),
            _ => None,
        }
    }

    /// The tensor behind `v`, if it is one.
    pub fn tensor(&self, v: &Value) -> Option<&TensorRef> {
        match self.obj(v) {
            Some(Obj::Tensor(t)) => Some(t),
            _ => None,
        }
    }
}

/// Runs the pickle program `data`. Errors are sentences naming the byte offset.
pub fn unpickle(data: &[u8]) -> Result<Pickle, String> {
    let mut vm = crate::pickle_vm::Vm::new(data);
    let top = vm.run()?;
    Ok(Pickle { top, objs: vm.objs })
}
