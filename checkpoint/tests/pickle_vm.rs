//! The pickle VM against Python's own `pickle` on plain values, protocols 2 to 5.

mod common;

use fer_checkpoint::pickle::{Obj, Pickle, Value, unpickle};
use serde_json::json;

/// Pickles one object per protocol to `p<N>.pkl` and prints the JSON it should decode to
/// (tuples as lists, bytes as `{"bytes": [...]}`, ints beyond 64 bits as `"bigint"`).
const WRITE_PICKLES: &str = r#"
import collections, os, pickle
def obj(proto):
    o = {"ints": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**63 - 1, -2**63, 2**64, -2**70],
         "floats": [1.5, -0.0, 1e300, float("inf")], "str": "ünï ✓" * 3, "long_str": "x" * 300,
         "none": None, "bools": [True, False], "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
         "nested": {"a": [{"b": (None,)}], 7: "int key"},
         "ordered": collections.OrderedDict([("z", 1), ("a", 2)])}
    shared = [1, 2]
    o["shared"] = [shared, shared]
    if proto >= 3:
        o["bytes"] = b"\x00\xff" * 3
    return o
def conv(x):
    if isinstance(x, bool) or x is None or isinstance(x, (float, str)):
        return x
    if isinstance(x, int):
        return x if -2**63 <= x < 2**63 else "bigint"
    if isinstance(x, bytes):
        return {"bytes": list(x)}
    if isinstance(x, (list, tuple)):
        return [conv(v) for v in x]
    return {str(k): conv(v) for k, v in x.items()}
out = {}
for proto in range(2, 6):
    o = obj(proto)
    with open(os.path.join(sys.argv[1], f"p{proto}.pkl"), "wb") as f:
        pickle.dump(o, f, protocol=proto)
    out[str(proto)] = conv(o)
print(json.dumps(out).replace("Infinity", "\"inf\""))
"#;

fn to_json(p: &Pickle, v: &Value) -> serde_json::Value {
    match v {
        Value::None => serde_json::Value::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::BigInt => json!("bigint"),
        Value::Float(f) if f.is_infinite() => json!("inf"),
        Value::Float(f) => json!(f),
        Value::Str(s) => json!(&**s),
        Value::Bytes(b) => json!({ "bytes": &**b }),
        Value::Ref(_) => match p.obj(v).unwrap() {
            Obj::Tuple(items) | Obj::List(items) => {
                serde_json::Value::Array(items.iter().map(|x| to_json(p, x)).collect())
            }
            Obj::Dict(items) => serde_json::Value::Object(
                items
                    .iter()
                    .map(|(k, x)| {
                        let key = match k {
                            Value::Str(s) => s.to_string(),
                            other => to_json(p, other).to_string(),
                        };
                        (key, to_json(p, x))
                    })
                    .collect(),
            ),
            other => json!(format!("{other:?}")),
        },
    }
}

#[test]
fn plain_values_decode_like_python_for_protocols_2_to_5() {
    let dir = tempfile::tempdir().unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&common::python(WRITE_PICKLES, dir.path())).unwrap();
    for proto in 2..=5 {
        let bytes = std::fs::read(dir.path().join(format!("p{proto}.pkl"))).unwrap();
        let p = unpickle(&bytes).unwrap_or_else(|e| panic!("protocol {proto}: {e}"));
        assert_eq!(to_json(&p, &p.top), expected[proto.to_string()], "protocol {proto}");
    }
}

#[test]
fn malformed_programs_are_errors_with_the_byte_offset() {
    let cases: [(&[u8], &str); 6] = [
        (b"", "ended before the STOP"),
        (b"\x80\x02K\x01", "ended before the STOP"),
        (b"\x80\x02h\x05.", "memo key 5 was never stored"),
        (b"\x80\x02.", "stack underflow"),
        (b"\x80\x02\xff.", "unsupported pickle opcode 0xff"),
        (b"\x80\x02X\xff\xff\xff\xff.", "needs 4294967295 more bytes"),
    ];
    for (program, msg) in cases {
        let e = unpickle(program).unwrap_err();
        assert!(e.contains(msg) && e.starts_with("pickle byte "), "{program:?}: {e}");
    }
}
