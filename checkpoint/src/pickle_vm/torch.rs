//! The callables and persistent ids of torch's pickles: tensors, parameters, storages.

use std::rc::Rc;

use super::{R, Vm};
use crate::pickle::{Obj, StorageDtype, StorageRef, TensorRef, Value};

impl Vm<'_> {
    pub(super) fn tuple_items(&self, v: &Value, what: &str) -> R<Vec<Value>> {
        match v {
            Value::Ref(i) => match &self.objs[*i] {
                Obj::Tuple(items) => Ok(items.clone()),
                _ => self.err(format!("{what} are not a tuple")),
            },
            _ => self.err(format!("{what} are not a tuple")),
        }
    }

    fn int_of(&self, v: &Value, what: &str) -> R<u64> {
        match v {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            _ => self.err(format!("{what} is not a non-negative integer: {v:?}")),
        }
    }

    fn ints_of(&self, v: &Value, what: &str) -> R<Vec<u64>> {
        let items = self.tuple_items(v, what)?;
        items.iter().map(|x| self.int_of(x, what)).collect()
    }

    fn global_of(&self, v: &Value) -> Option<(&str, &str)> {
        match v {
            Value::Ref(i) => match &self.objs[*i] {
                Obj::Global { module, name } => Some((module, name)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Applies a callable (REDUCE) or instantiates a class (NEWOBJ).
    pub(super) fn call(&mut self, func: &Value, args: Vec<Value>) -> R<Value> {
        let Some((module, name)) = self.global_of(func) else {
            return self.err("REDUCE/NEWOBJ of something that is not a global");
        };
        let (module, name) = (module.to_string(), name.to_string());
        match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") | ("builtins" | "__builtin__", "dict") => {
                Ok(self.alloc(Obj::Dict(Vec::new())))
            }
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
                if args.len() < 4 {
                    return self.err(format!("{name} with {} arguments", args.len()));
                }
                let storage = match &args[0] {
                    Value::Ref(i) => match &self.objs[*i] {
                        Obj::Storage(s) => s.clone(),
                        _ => return self.err(format!("{name}: first argument is not a storage")),
                    },
                    _ => return self.err(format!("{name}: first argument is not a storage")),
                };
                let offset = self.int_of(&args[1], "storage offset")?;
                let size = self.ints_of(&args[2], "tensor size")?;
                let stride = self.ints_of(&args[3], "tensor stride")?;
                if size.len() != stride.len() {
                    return self.err(format!("size {size:?} and stride {stride:?} differ in rank"));
                }
                Ok(self.alloc(Obj::Tensor(TensorRef { storage, offset, size, stride })))
            }
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                match args.into_iter().next() {
                    Some(data) => Ok(data),
                    None => self.err(format!("{name} without arguments")),
                }
            }
            ("torch._tensor", "_rebuild_from_type_v2" | "_rebuild_from_type") => {
                // (func, new_type, args, state): the tensor subclass is dropped.
                if args.len() < 3 {
                    return self.err(format!("{name} with {} arguments", args.len()));
                }
                let inner = self.tuple_items(&args[2], "_rebuild_from_type_v2 arguments")?;
                self.call(&args[0], inner)
            }
            (m, n) if m.starts_with("torch") && n.starts_with("_rebuild") => self.err(format!(
                "unsupported tensor kind `{m}.{n}` (quantized, sparse, nested or non-CPU tensors \
                 are not read; convert to a dense float tensor before saving)"
            )),
            (m, n) => Ok(self.alloc(Obj::Opaque(format!("{m}.{n}")))),
        }
    }

    /// `('storage', torch.XStorage, key, location, numel)`.
    pub(super) fn persistent_load(&mut self, pid: &Value) -> R<Value> {
        let items = self.tuple_items(pid, "persistent id items")?;
        if items.len() != 5 || items[0] != Value::Str(Rc::from("storage")) {
            return self.err(format!(
                "unsupported persistent id (expected ('storage', type, key, location, numel)), \
                 got {} items",
                items.len()
            ));
        }
        let dtype = match self.global_of(&items[1]) {
            Some(("torch", class)) => match StorageDtype::from_storage_class(class) {
                Some(d) => d,
                None => return self.err(format!("unsupported storage type torch.{class}")),
            },
            Some((m, n)) => return self.err(format!("unsupported storage type {m}.{n}")),
            None => return self.err("storage type is not a global"),
        };
        let key = self.str_of(&items[2], "storage key")?;
        let numel = self.int_of(&items[4], "storage size")?;
        Ok(self.alloc(Obj::Storage(StorageRef { dtype, key, numel })))
    }
}
