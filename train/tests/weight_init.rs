//! `model.weight_init`: torchvision's Inception-v3 scheme against Kaiming initialisation, read
//! back from the weights a fresh model gets.

use fer_models_spec::{Arch, ArchConfig, spec};
use fer_train::config::ExperimentConfig;
use fer_train::{TchModel, WeightInit};

/// Sample standard deviation of a named tensor of a fresh Inception-v3.
fn std_of(init: WeightInit, name: &str) -> f64 {
    let g = spec(&ArchConfig::new(Arch::InceptionV3, 7).with_input_size(112)).unwrap();
    let m = TchModel::with_init(g, Some(Arch::InceptionV3), init, tch::Device::Cpu, 3).unwrap();
    let map = m.to_tensor_map().unwrap();
    let w = map[name].to_f32();
    let n = w.len() as f64;
    let mean = w.iter().map(|&x| x as f64).sum::<f64>() / n;
    (w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

#[test]
fn inception_gets_torchvision_scheme_by_default_and_kaiming_when_asked() {
    // Conv2d_4a_3x3: 192 output channels, 3×3 → Kaiming fan-out std √(2 / 1728).
    let conv = "Conv2d_4a_3x3.conv.weight";
    let tv = std_of(WeightInit::Torchvision, conv);
    let k = std_of(WeightInit::Kaiming, conv);
    // Truncated N(0, 0.1) at ±2 (20 std) is N(0, 0.1) for all practical purposes.
    assert!((tv - 0.1).abs() < 0.002, "torchvision scheme: std {tv}");
    let want = (2.0f64 / 1728.0).sqrt();
    assert!((k - want).abs() < 0.02 * want, "kaiming: std {k}, want {want}");
    // The classifier: N(0, 0.1) against PyTorch's default U(±1/√2048) (std 1/√(3·2048)).
    let fc_tv = std_of(WeightInit::Torchvision, "fc.weight");
    let fc_k = std_of(WeightInit::Kaiming, "fc.weight");
    assert!((fc_tv - 0.1).abs() < 0.005, "{fc_tv}");
    let want = 1.0 / (3.0f64 * 2048.0).sqrt();
    assert!((fc_k - want).abs() < 0.05 * want, "{fc_k} vs {want}");
}

#[test]
fn weight_init_is_read_from_the_config_and_checked() {
    let base = "version = 1\nname = \"x\"\n[data]\nformat = \"image-folder\"\nroot = \"d\"\n\
                val_fraction = 0.1\n[optim]\noptimizer = \"sgd\"\nlr = 0.1\nbatch_size = 8\n\
                [[stages]]\nname = \"t\"\nepochs = 1\n[[stages.loss]]\nkind = \"cross_entropy\"\n\
                weight = 1.0\n[model]\narch = \"inception_v3\"\nnum_classes = 7\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("{base}weight_init = \"kaiming\"\n")).unwrap();
    let cfg = ExperimentConfig::load(&path).unwrap();
    assert_eq!(cfg.model.weight_init, WeightInit::Kaiming);
    std::fs::write(&path, base).unwrap();
    assert_eq!(ExperimentConfig::load(&path).unwrap().model.weight_init, WeightInit::Torchvision);
    std::fs::write(&path, format!("{base}weight_init = \"xavier\"\n")).unwrap();
    let e = ExperimentConfig::load(&path).unwrap_err().to_string();
    assert!(e.contains("weight_init") && e.contains("kaiming"), "{e}");
}

/// The batch norms `zero_init_residual` zeroes, against torchvision's modules
/// (`tests/py/zero_init_residual_ref.py`): for ResNets, those torchvision's own
/// `zero_init_residual=True` zeroes; for MobileNetV3 and EfficientNet-B0, the last batch norm of
/// every block torchvision gives a residual connection (`use_res_connect`). Read back from the
/// weights: exactly those are zero, every other batch norm scale is still one.
#[test]
fn zero_init_residual_zeroes_the_batch_norm_ending_each_residual_branch_as_torchvision() {
    let Some(_) = fer_test_support::live_python("zero_init_residual") else { return };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/zero_init_residual_ref.py");
    let want: std::collections::BTreeMap<String, Vec<String>> =
        serde_json::from_str(&fer_test_support::run_python(&[script])).unwrap();
    assert_eq!(want.len(), 5);
    for (arch_id, names) in &want {
        let arch: Arch = arch_id.parse().unwrap();
        let g = spec(&ArchConfig::new(arch, 7).with_input_size(112)).unwrap();
        let m = TchModel::new(g, Some(arch), tch::Device::Cpu, 1).unwrap();
        let mut got = m.zero_init_residual();
        got.sort();
        assert_eq!(&got, names, "{arch_id}");
        assert!(!got.is_empty(), "{arch_id}");
        let map = m.to_tensor_map().unwrap();
        let bn_scales = map.keys().filter(|k| {
            k.ends_with(".weight") && map.contains_key(&k.replace(".weight", ".running_var"))
        });
        for k in bn_scales {
            let w = map[k].to_f32();
            let zero = names.contains(&k.trim_end_matches(".weight").to_string());
            let want = if zero { 0.0 } else { 1.0 };
            assert!(w.iter().all(|&x| x == want), "{arch_id} {k}: want all {want}");
        }
    }
}

#[test]
fn zero_init_residual_is_read_from_the_config_and_refused_without_residual_blocks_or_with_init() {
    let base = "version = 1\nname = \"x\"\n[data]\nformat = \"image-folder\"\nroot = \"d\"\n\
                val_fraction = 0.1\n[optim]\noptimizer = \"sgd\"\nlr = 0.1\nbatch_size = 8\n\
                [[stages]]\nname = \"t\"\nepochs = 1\n[[stages.loss]]\nkind = \"cross_entropy\"\n\
                weight = 1.0\n[model]\nnum_classes = 7\nzero_init_residual = true\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("{base}arch = \"efficientnet_b0\"\n")).unwrap();
    let cfg = ExperimentConfig::load(&path).unwrap();
    assert!(cfg.model.zero_init_residual);
    cfg.validate().unwrap();
    // The resolved config written into a run directory keeps it.
    assert!(cfg.resolved_toml().unwrap().contains("zero_init_residual = true"));
    let with_init =
        format!("{base}arch = \"resnet18\"\ninit = {{ weights = \"w.safetensors\" }}\n");
    std::fs::write(&path, with_init).unwrap();
    let e = ExperimentConfig::load(&path).unwrap().validate().unwrap_err().to_string();
    assert!(e.contains("model.zero_init_residual: applies to fresh weights"), "{e}");
    std::fs::write(&path, format!("{base}arch = \"vgg_fer\"\n")).unwrap();
    let e = ExperimentConfig::load(&path).unwrap().validate().unwrap_err().to_string();
    assert!(
        e.contains(
            "model.zero_init_residual: vgg_fer has no residual blocks to start as the identity"
        ),
        "{e}"
    );
}
