//! Tensor layouts, dtypes and container shapes that `torch.save` produces, read like torch.

mod common;

use std::path::Path;

use fer_checkpoint::{load_weights, read_pth, read_safetensors};

/// Writes one file per case and prints `{file: {name: bits(tensor)}}`, the tensors a reader must
/// return for it (a nested state dict's, with `module.` stripped).
const WRITE_CASES: &str = r#"
import argparse, os
from safetensors.torch import save_file
d = sys.argv[1]
torch.manual_seed(1)
expected = {}
def save(name, obj, exp, **kw):
    torch.save(obj, os.path.join(d, name), **kw)
    expected[name] = describe(exp)

base = torch.randn(4, 5)
nc = {"t": base.t(), "col": base[:, 1], "corner": base[1:, 2:], "step": base[::2, ::3],
      "expanded": torch.randn(3, 1).expand(3, 4)}
save("non_contiguous.pth", nc, nc)

dtypes = {"f16": torch.randn(3, 4).half(), "bf16": torch.randn(5).bfloat16(),
          "f64": torch.randn(2, 3, dtype=torch.float64), "f16_t": torch.randn(3, 2).half().t(),
          "i32": torch.randint(-2**31, 2**31 - 1, (6,), dtype=torch.int32),
          "i16": torch.randint(-2**15, 2**15 - 1, (4,), dtype=torch.int16),
          "i8": torch.randint(-128, 127, (4,), dtype=torch.int8),
          "u8": torch.randint(0, 255, (4,), dtype=torch.uint8),
          "bool": torch.tensor([True, False, True]),
          "i64_big": torch.tensor([-2**62, 2**62 + 5, -1]),
          "scalar_f": torch.tensor(2.5), "scalar_i": torch.tensor(7), "empty": torch.zeros(0, 3)}
save("dtypes.pth", dtypes, dtypes)

shared = torch.randn(6, 4)
views = {"whole": shared, "rows": shared[1:3], "flat": shared.view(-1)[5:11], "col": shared[:, 3]}
save("shared_storage.pth", views, views)

net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                          torch.nn.Linear(36, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
net(torch.randn(2, 3, 5, 5)).sum().backward()
opt.step()
sd = net.state_dict()
save("checkpoint_dict.pth",
     {"epoch": 3, "best_acc": 0.75, "optimizer": opt.state_dict(), "state_dict": sd,
      "ema_decay": torch.tensor(0.999),
      "args": argparse.Namespace(lr=0.1, name="x"), "tags": ["a", "b"], "blob": b"\x00\x01"}, sd)
save("model_key.pth", {"model": sd, "epoch": 9}, sd)
save("model_state_dict_key.pth", {"model_state_dict": sd, "optimizer_state_dict": {}}, sd)
save("protocol4.pth", sd, sd, pickle_protocol=4)
save("protocol5.pth", dtypes, dtypes, pickle_protocol=5)
save("data_parallel.pth", {"module." + k: v for k, v in sd.items()}, sd)
param = {"w": torch.nn.Parameter(torch.randn(3, 2)), "b": torch.nn.Parameter(torch.randn(2))}
save("parameters.pth", param, param)
many = {f"t{i}": torch.full((2,), float(i)) for i in range(300)}
save("many_entries.pth", many, many)

st = {k: v.contiguous() for k, v in dtypes.items() if k != "bool"}
save_file(st, os.path.join(d, "dtypes.safetensors"), metadata={"who": "python", "n": "1"})
expected["dtypes.safetensors"] = describe(st)
print(json.dumps(expected))
"#;

fn write_cases(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&common::python(WRITE_CASES, dir)).unwrap()
}

#[test]
fn every_case_reads_exactly_what_torch_holds() {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_cases(dir.path());
    let cases = expected.as_object().unwrap();
    assert_eq!(cases.len(), 12, "cases written");
    for (file, exp) in cases {
        let path = dir.path().join(file);
        if file.ends_with(".safetensors") {
            let (got, meta) = read_safetensors(&path).unwrap();
            common::assert_tensors_eq(file, &got, exp);
            assert_eq!(meta.get("who").map(String::as_str), Some("python"));
            assert_eq!(meta.len(), 2, "{meta:?}");
        } else {
            let got = read_pth(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
            common::assert_tensors_eq(file, &got, exp);
        }
        let sniffed = load_weights(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        common::assert_tensors_eq(file, &sniffed, exp);
    }
}
