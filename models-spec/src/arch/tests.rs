use super::*;
use crate::graph::ParamKind;
use std::collections::HashSet;

/// torchvision 0.26 `sum(p.numel() for p in m.parameters())` (inception_v3 with aux_logits=False;
/// vgg_fer assembled from torchvision's VGG parts at its default 48 px, as
/// `train/tests/py/torchvision_ref.py` builds it). The Python-side test in `train/tests` checks
/// the same against torchvision itself.
const TORCHVISION_1000: [(Arch, usize); 7] = [
    (Arch::MobilenetV3Small, 2_542_856),
    (Arch::MobilenetV3Large, 5_483_032),
    (Arch::EfficientnetB0, 5_288_548),
    (Arch::Resnet18, 11_689_512),
    (Arch::Resnet50, 25_557_032),
    (Arch::InceptionV3, 23_834_568),
    (Arch::VggFer, 44_445_992),
];

#[test]
fn parameter_counts_match_torchvision_at_1000_classes() {
    for (arch, want) in TORCHVISION_1000 {
        let g = spec(&ArchConfig::new(arch, 1000)).unwrap();
        assert_eq!(g.num_trainable(), want, "{arch}");
    }
}

#[test]
fn names_are_unique_and_logits_have_num_classes() {
    for arch in Arch::ALL {
        let g =
            spec(&ArchConfig::new(arch, 7).with_input_size(arch.min_input_size().max(64))).unwrap();
        let params = g.params();
        let names: HashSet<_> = params.iter().map(|p| p.name.clone()).collect();
        assert_eq!(names.len(), params.len(), "{arch}");
        assert_eq!(g.num_classes(), 7);
        assert!(g.tap(crate::EMBEDDING_TAP).is_some());
        assert!(params.iter().any(|p| p.kind == ParamKind::Counter));
    }
}

#[test]
fn grayscale_input_changes_only_the_first_conv() {
    for arch in Arch::ALL {
        let rgb = spec(&ArchConfig::new(arch, 7)).unwrap().params();
        let gray = spec(&ArchConfig::new(arch, 7).with_in_channels(1)).unwrap().params();
        let diff: Vec<_> = rgb.iter().zip(&gray).filter(|(a, b)| a != b).collect();
        assert_eq!(diff.len(), 1, "{arch}");
        assert_eq!(diff[0].1.shape[1], 1);
    }
}

#[test]
fn bad_options_are_refused_with_the_field_named() {
    let e = spec(&ArchConfig::new(Arch::InceptionV3, 7).with_input_size(48)).unwrap_err();
    assert!(e.to_string().contains("input_size = 48"), "{e}");
    let e = spec(&ArchConfig::new(Arch::InceptionV3, 7).with_width(0.5)).unwrap_err();
    assert!(e.to_string().contains("width_mult"), "{e}");
    assert!("vgg16".parse::<Arch>().is_err());
}

#[test]
fn make_divisible_matches_torchvision() {
    assert_eq!(make_divisible(16.0 * 0.25, 8), 8);
    assert_eq!(make_divisible(72.0 * 0.5, 8), 40);
    assert_eq!(make_divisible(960.0 / 4.0, 8), 240);
    assert_eq!(make_divisible(1280.0 * 0.75, 8), 960);
}

#[test]
fn each_architecture_has_one_name_in_ids_configs_and_parsing() {
    let ids: HashSet<_> = Arch::ALL_IDS.iter().collect();
    assert_eq!(ids.len(), Arch::ALL.len(), "every id once");
    for arch in Arch::ALL {
        let serde_name = serde_json::to_string(&arch).unwrap();
        assert_eq!(serde_name.trim_matches('"'), arch.id(), "the config name is the id");
        assert_eq!(arch.id().parse::<Arch>().unwrap(), arch);
    }
    let e = "resnet101".parse::<Arch>().unwrap_err().to_string();
    assert!(e.contains("known: mobilenet_v3_small, mobilenet_v3_large"), "{e}");
}
