//! torchvision state dicts written by `torch.save` and `safetensors.torch.save_file` read
//! bit-exactly, and check against the spec. A live cross-check: torchvision builds the models at
//! test time, so without the venv these tests print `SKIPPED` (a failure under `CI=true`).

mod common;

use fer_checkpoint::{
    CheckOptions, Error, TensorData, TensorMap, check_against, load_weights, read_pth,
    read_safetensors,
};
use fer_models_spec::{Arch, ArchConfig, spec};
use sha2::{Digest, Sha256};

/// Writes `<arch>.pth` and `<arch>.safetensors` of a randomised torchvision model with 7 classes;
/// prints `{name: [shape, "f32"|"i64", sha256 of the little-endian values]}`.
const WRITE_MODEL: &str = r#"
import hashlib, os, torchvision
from safetensors.torch import save_file
arch = sys.argv[2]
torch.manual_seed(0)
model = getattr(torchvision.models, arch)(num_classes=7)
with torch.no_grad():
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            t.fill_(int(torch.randint(1, 10**6, ())))
        elif name.endswith("running_var"):
            t.copy_(torch.rand_like(t) + 0.5)
        else:
            t.copy_(torch.randn_like(t))
sd = model.state_dict()
torch.save(sd, os.path.join(sys.argv[1], arch + ".pth"))
save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(sys.argv[1], arch + ".safetensors"))
def digest(t):
    a = (t.float() if t.is_floating_point() else t.long()).contiguous().numpy()
    return [list(t.shape), "f32" if t.is_floating_point() else "i64", hashlib.sha256(a.tobytes()).hexdigest()]
print(json.dumps({k: digest(v) for k, v in sd.items()}))
"#;

fn digest(map: &TensorMap) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (name, t) in map {
        let (kind, bytes): (&str, Vec<u8>) = match &t.data {
            TensorData::F32(v) => ("f32", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            TensorData::I64(v) => ("i64", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        let hex: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        out.insert(name.clone(), serde_json::json!([t.shape, kind, hex]));
    }
    serde_json::Value::Object(out)
}

/// Reads both files of `arch`, compares them with each other and with Python's digests.
fn read_model(arch: Arch) -> (tempfile::TempDir, TensorMap) {
    let dir = tempfile::tempdir().unwrap();
    let out =
        common::python(&format!("sys.argv.append({:?})\n{WRITE_MODEL}", arch.id()), dir.path());
    let expected: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pth = read_pth(dir.path().join(format!("{}.pth", arch.id()))).unwrap();
    let (st, meta) =
        read_safetensors(dir.path().join(format!("{}.safetensors", arch.id()))).unwrap();
    assert!(meta.is_empty(), "save_file without metadata: {meta:?}");
    assert_eq!(digest(&pth), expected, "{}: .pth differs from torch", arch.id());
    assert_eq!(pth, st, "{}: .pth and .safetensors differ", arch.id());
    let sniffed = load_weights(dir.path().join(format!("{}.safetensors", arch.id()))).unwrap();
    assert_eq!(sniffed, st);
    let sniffed = load_weights(dir.path().join(format!("{}.pth", arch.id()))).unwrap();
    assert_eq!(sniffed, pth);
    (dir, pth)
}

#[test]
fn resnet18_pth_and_safetensors_equal_torch_and_fit_the_spec() {
    if !common::live("resnet18_pth_and_safetensors_equal_torch_and_fit_the_spec") {
        return;
    }
    let (_dir, w) = read_model(Arch::Resnet18);
    assert_eq!(w["bn1.num_batches_tracked"].shape, Vec::<usize>::new());
    let g = spec(&ArchConfig::new(Arch::Resnet18, 7)).unwrap();
    check_against(&g, &w, &CheckOptions::default()).unwrap();

    // Another number of classes: only the classifier differs, and skipping it passes.
    let g10 = spec(&ArchConfig::new(Arch::Resnet18, 10)).unwrap();
    let Err(Error::Mismatch(m)) = check_against(&g10, &w, &CheckOptions::default()) else {
        panic!("num_classes 10 must not match 7");
    };
    let names: Vec<&str> = m.wrong_shape.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["fc.weight", "fc.bias"]);
    assert_eq!(m.wrong_shape[0].expected, [10, 512]);
    assert_eq!(m.wrong_shape[0].got, [7, 512]);
    assert!(m.missing.is_empty() && m.unexpected.is_empty() && m.only_classifier_differs);
    let text = m.to_string();
    assert!(text.contains("  fc.weight: expected [10, 512], got [7, 512]"), "{text}");
    check_against(&g10, &w, &CheckOptions { skip_classifier: true }).unwrap();

    // ResNet-50: bottleneck names are missing, basic-block ones unexpected, shared ones resized.
    let g50 = spec(&ArchConfig::new(Arch::Resnet50, 7)).unwrap();
    let Err(Error::Mismatch(m)) = check_against(&g50, &w, &CheckOptions { skip_classifier: true })
    else {
        panic!("resnet18 weights must not fit resnet50");
    };
    assert!(m.missing.contains(&("layer1.0.conv3.weight".into(), vec![256, 64, 1, 1])));
    assert!(m.missing.contains(&("layer4.2.bn3.num_batches_tracked".into(), vec![])));
    assert!(m.unexpected.is_empty(), "every resnet18 name exists in resnet50: {:?}", m.unexpected);
    let conv = m.wrong_shape.iter().find(|x| x.name == "layer1.0.conv1.weight").unwrap();
    assert_eq!((conv.expected.clone(), conv.got.clone()), (vec![64, 64, 1, 1], vec![64, 64, 3, 3]));
    assert!(!m.wrong_shape.iter().any(|x| x.name.starts_with("fc.")));
    let text = m.to_string();
    assert!(text.contains("  layer1.0.conv3.weight (expected shape [256, 64, 1, 1])"), "{text}");
    assert!(text.contains("more"), "long groups are capped: {text}");

    // And the other way round: resnet50 names are unexpected against a resnet18 spec.
    let mut extra = w.clone();
    extra.insert("layer1.0.conv3.weight".into(), w["layer1.0.conv2.weight"].clone());
    let Err(Error::Mismatch(m)) = check_against(&g, &extra, &CheckOptions::default()) else {
        panic!("an extra tensor must be reported");
    };
    assert_eq!(m.unexpected, vec![("layer1.0.conv3.weight".to_string(), vec![64, 64, 3, 3])]);
}

#[test]
fn mobilenet_v3_small_pth_and_safetensors_equal_torch_and_fit_the_spec() {
    if !common::live("mobilenet_v3_small_pth_and_safetensors_equal_torch_and_fit_the_spec") {
        return;
    }
    let (_dir, w) = read_model(Arch::MobilenetV3Small);
    let g = spec(&ArchConfig::new(Arch::MobilenetV3Small, 7)).unwrap();
    check_against(&g, &w, &CheckOptions::default()).unwrap();
    assert_eq!(w.len(), g.params().len());
}
