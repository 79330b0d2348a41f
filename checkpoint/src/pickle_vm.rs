//! The opcode interpreter behind [`crate::pickle::unpickle`].

use std::collections::HashMap;
use std::rc::Rc;

use crate::pickle::{Obj, Value};

mod torch;

type R<T> = Result<T, String>;

pub(crate) struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    /// Position of the opcode being executed, for messages.
    op_pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    pub(crate) objs: Vec<Obj>,
}

impl<'a> Vm<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Vm {
            data,
            pos: 0,
            op_pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            objs: Vec::new(),
        }
    }

    fn err<T>(&self, msg: impl std::fmt::Display) -> R<T> {
        Err(format!("pickle byte {}: {msg}", self.op_pos))
    }

    fn take(&mut self, n: u64) -> R<&'a [u8]> {
        let rest = self.data.len() - self.pos;
        if n > rest as u64 {
            return self.err(format!("needs {n} more bytes, {rest} left (truncated data.pkl?)"));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> R<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64)?);
        Ok(a)
    }

    fn line(&mut self) -> R<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|b| *b == b'\n') else {
            return self.err("unterminated text argument");
        };
        self.pos += n + 1;
        match std::str::from_utf8(&rest[..n]) {
            Ok(s) => Ok(s),
            Err(_) => self.err("text argument is not UTF-8"),
        }
    }

    fn alloc(&mut self, o: Obj) -> Value {
        self.objs.push(o);
        Value::Ref(self.objs.len() - 1)
    }

    fn pop(&mut self) -> R<Value> {
        match self.stack.pop() {
            Some(v) if self.marks.last().is_none_or(|m| self.stack.len() >= *m) => Ok(v),
            _ => self.err("stack underflow"),
        }
    }

    fn top(&self) -> R<&Value> {
        match self.stack.last() {
            Some(v) if self.marks.last().is_none_or(|m| self.stack.len() > *m) => Ok(v),
            _ => self.err("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> R<Vec<Value>> {
        let Some(m) = self.marks.pop() else { return self.err("no MARK on the stack") };
        Ok(self.stack.split_off(m))
    }

    fn str_of(&self, v: &Value, what: &str) -> R<String> {
        match v {
            Value::Str(s) => Ok(s.to_string()),
            _ => self.err(format!("{what} is not a string")),
        }
    }

    fn memo_put(&mut self, idx: u32) -> R<()> {
        let v = self.top()?.clone();
        self.memo.insert(idx, v);
        Ok(())
    }

    fn memo_get(&mut self, idx: u32) -> R<()> {
        match self.memo.get(&idx) {
            Some(v) => {
                self.stack.push(v.clone());
                Ok(())
            }
            None => self.err(format!("memo key {idx} was never stored")),
        }
    }

    fn push_str(&mut self, bytes: &[u8]) -> R<()> {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                self.stack.push(Value::Str(Rc::from(s)));
                Ok(())
            }
            Err(_) => self.err("string is not valid UTF-8"),
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        self.stack.push(Value::Bytes(Rc::from(bytes)));
    }

    fn push_long(&mut self, bytes: &[u8]) {
        let v = if bytes.is_empty() {
            Value::Int(0)
        } else if bytes.len() <= 8 {
            let fill = if bytes[bytes.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
            let mut a = [fill; 8];
            a[..bytes.len()].copy_from_slice(bytes);
            Value::Int(i64::from_le_bytes(a))
        } else {
            Value::BigInt
        };
        self.stack.push(v);
    }

    /// Executes opcodes until `STOP`; returns the value it pops.
    pub(crate) fn run(&mut self) -> R<Value> {
        loop {
            self.op_pos = self.pos;
            if self.pos >= self.data.len() {
                return self.err("data.pkl ended before the STOP opcode (truncated?)");
            }
            let op = self.u8()?;
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return self.err(format!("pickle protocol {p} is newer than 5"));
                    }
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'}' => {
                    let v = self.alloc(Obj::Dict(Vec::new()));
                    self.stack.push(v);
                }
                b']' => {
                    let v = self.alloc(Obj::List(Vec::new()));
                    self.stack.push(v);
                }
                b')' => {
                    let v = self.alloc(Obj::Tuple(Vec::new()));
                    self.stack.push(v);
                }
                0x8f => {
                    let v = self.alloc(Obj::Opaque("builtins.set".into()));
                    self.stack.push(v);
                }
                0x91 => {
                    self.pop_mark()?;
                    let v = self.alloc(Obj::Opaque("builtins.frozenset".into()));
                    self.stack.push(v);
                }
                0x90 => {
                    self.pop_mark()?;
                    self.top()?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    let v = self.alloc(Obj::Dict(pairs));
                    self.stack.push(v);
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::List(items));
                    self.stack.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::Tuple(items));
                    self.stack.push(v);
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let v = self.alloc(Obj::Tuple(items));
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    let v = self.alloc(Obj::Global { module, name });
                    self.stack.push(v);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let name = self.str_of(&name, "STACK_GLOBAL name")?;
                    let module = self.str_of(&module, "STACK_GLOBAL module")?;
                    let v = self.alloc(Obj::Global { module, name });
                    self.stack.push(v);
                }
                b'q' => {
                    let i = self.u8()?;
                    self.memo_put(u32::from(i))?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).unwrap_or(u32::MAX);
                    self.memo_put(i)?;
                }
                b'p' => {
                    let line = self.line()?;
                    let Ok(i) = line.parse::<u32>() else { return self.err("bad PUT index") };
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()?;
                    self.memo_get(u32::from(i))?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.memo_get(i)?;
                }
                b'g' => {
                    let line = self.line()?;
                    let Ok(i) = line.parse::<u32>() else { return self.err("bad GET index") };
                    self.memo_get(i)?;
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.le()?);
                    let s = self.take(u64::from(n))?;
                    self.push_str(s)?;
                }
                0x8c => {
                    let n = self.u8()?;
                    let s = self.take(u64::from(n))?;
                    self.push_str(s)?;
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.le()?);
                    let s = self.take(n)?;
                    self.push_str(s)?;
                }
                b'T' => {
                    let n = i32::from_le_bytes(self.le()?);
                    let Ok(n) = u64::try_from(n) else { return self.err("negative length") };
                    let s = self.take(n)?;
                    self.push_bytes(s);
                }
                b'U' | b'C' => {
                    let n = self.u8()?;
                    let s = self.take(u64::from(n))?;
                    self.push_bytes(s);
                }
                b'B' => {
                    let n = u32::from_le_bytes(self.le()?);
                    let s = self.take(u64::from(n))?;
                    self.push_bytes(s);
                }
                0x8e | 0x96 => {
                    let n = u64::from_le_bytes(self.le()?);
                    let s = self.take(n)?;
                    self.push_bytes(s);
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    let n = self.u8()?;
                    let b = self.take(u64::from(n))?;
                    self.push_long(b);
                }
                0x8b => {
                    let n = i32::from_le_bytes(self.le()?);
                    let Ok(n) = u64::try_from(n) else { return self.err("negative length") };
                    let b = self.take(n)?;
                    self.push_long(b);
                }
                b'I' | b'L' => {
                    let line = self.line()?;
                    let v = match line {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        _ => match line.trim_end_matches('L').parse::<i64>() {
                            Ok(i) => Value::Int(i),
                            Err(_) => Value::BigInt,
                        },
                    };
                    self.stack.push(v);
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.stack.push(Value::Float(v));
                }
                b'F' => {
                    let line = self.line()?;
                    let Ok(v) = line.parse::<f64>() else { return self.err("bad FLOAT") };
                    self.stack.push(Value::Float(v));
                }
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'N' => self.stack.push(Value::None),
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let args = self.tuple_items(&args, "REDUCE arguments")?;
                    let v = self.call(&func, args)?;
                    self.stack.push(v);
                }
                0x81 | 0x92 => {
                    if op == 0x92 {
                        self.pop()?;
                    }
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let args = self.tuple_items(&args, "NEWOBJ arguments")?;
                    let v = self.call(&cls, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    self.pop()?;
                    self.top()?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.set_items(pairs)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(&pid)?;
                    self.stack.push(v);
                }
                _ => {
                    return self.err(format!(
                        "unsupported pickle opcode 0x{op:02x} ({:?})",
                        char::from(op)
                    ));
                }
            }
        }
    }

    fn pairs(&self, items: Vec<Value>) -> R<Vec<(Value, Value)>> {
        if !items.len().is_multiple_of(2) {
            return self.err("odd number of items for a dict");
        }
        let mut it = items.into_iter();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        Ok(out)
    }

    fn target(&self) -> R<usize> {
        match self.top()? {
            Value::Ref(i) => Ok(*i),
            v => self.err(format!("cannot add items to {v:?}")),
        }
    }

    fn set_items(&mut self, pairs: Vec<(Value, Value)>) -> R<()> {
        let i = self.target()?;
        match &mut self.objs[i] {
            Obj::Dict(d) => {
                for (k, v) in pairs {
                    match d.iter_mut().find(|(k2, _)| *k2 == k) {
                        Some(slot) => slot.1 = v,
                        None => d.push((k, v)),
                    }
                }
                Ok(())
            }
            Obj::Opaque(_) => Ok(()),
            _ => self.err("SETITEM(S) on an object that is not a dict"),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> R<()> {
        let i = self.target()?;
        match &mut self.objs[i] {
            Obj::List(l) => {
                l.extend(items);
                Ok(())
            }
            Obj::Opaque(_) => Ok(()),
            _ => self.err("APPEND(S) on an object that is not a list"),
        }
    }
}
