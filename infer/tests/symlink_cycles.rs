//! `fer-infer predict DIR` predicts each real image once: symbolic links to the folder itself,
//! to its parent or to a file already listed are not followed again (a link cycle used to turn
//! 56 images into 376 predictions).

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use fer_models_spec::{Arch, ArchConfig};

fn png(path: &Path, shade: u8) {
    image::RgbImage::from_pixel(20, 20, image::Rgb([shade, 100, 200])).save(path).unwrap();
}

#[test]
fn a_folder_with_links_to_itself_its_parent_and_a_listed_file_is_predicted_once_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(48).with_width(0.25);
    let model = common::export(dir.path(), "m", &cfg, 1.0, false, 5);
    let root = dir.path().join("imgs");
    let sub = root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    png(&root.join("a.png"), 10);
    png(&root.join("b.png"), 20);
    png(&sub.join("c.png"), 30);
    symlink(".", root.join("self")).unwrap();
    symlink("..", sub.join("up")).unwrap();
    symlink(&sub, root.join("sub-again")).unwrap();
    symlink("a.png", root.join("z-link-to-a.png")).unwrap();
    // A link to an image outside the folder is an image of its own and is listed.
    let outside = dir.path().join("outside.png");
    png(&outside, 40);
    symlink(&outside, sub.join("d.png")).unwrap();

    let m = model.to_str().unwrap();
    let o = common::cli(&["predict", "--model", m, root.to_str().unwrap()], &[]);
    let (out, err) = common::texts(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let paths: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["path"].to_string())
        .collect();
    assert_eq!(paths.len(), 4, "{paths:#?}");
    for name in ["a.png", "b.png", "sub/c.png", "sub/d.png"] {
        assert!(
            paths.iter().any(|p| p.ends_with(&format!("/imgs/{name}\""))),
            "{name}: {paths:#?}"
        );
    }

    // The same folder named twice, and a file named beside its folder, are listed once too.
    let r = root.to_str().unwrap();
    let a = root.join("a.png");
    let o = common::cli(&["predict", "--model", m, r, r, a.to_str().unwrap()], &[]);
    let (out, err) = common::texts(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
}
