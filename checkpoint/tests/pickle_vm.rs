//! The pickle VM against Python's own `pickle` on plain values, protocols 2 to 5: the
//! programs Python wrote and the values they hold are committed under `tests/golden/pickle/`
//! (`scripts/golden/make_golden.py pickle`), so this test needs no Python.

use fer_checkpoint::pickle::{Obj, Pickle, Value, unpickle};
use fer_test_support::{golden_json, golden_path};
use serde_json::json;

/// As `make_golden.py` writes the expected values: tuples as lists, bytes as
/// `{"bytes": [...]}`, ints beyond 64 bits as `"bigint"`, infinity as `"inf"`.
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
    let dir = env!("CARGO_MANIFEST_DIR");
    let expected = golden_json(dir, "pickle/plain_values.json");
    for proto in 2..=5 {
        let bytes = std::fs::read(golden_path(dir, &format!("pickle/p{proto}.pkl"))).unwrap();
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
