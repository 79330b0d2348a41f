//! The synthetic expression set: reproducibility, layout, and that it is hard for a linear
//! model on pixels yet learnable by a small CNN (scikit-learn and torch in the venv).

use std::path::{Path, PathBuf};
use std::process::Command;

use fer_data::dataset::{Dataset, SplitName, Target};
use fer_data::synth::{FER_NAMES, SynthConfig, SynthDataset, render, write_fer_folder};

use fer_test_support::python;

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for split in ["train", "val"] {
        for class in FER_NAMES {
            let dir = root.join(split).join(class);
            let mut names: Vec<_> =
                std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
            names.sort();
            for p in names {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p.strip_prefix(root).unwrap().to_path_buf(), bytes));
            }
        }
    }
    out
}

#[test]
fn same_seed_gives_identical_bytes_and_the_fer_folder_layout() {
    let cfg = SynthConfig { seed: 5, train_per_class: 3, val_per_class: 2, size: 48 };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(write_fer_folder(a.path(), &cfg).unwrap(), 35);
    write_fer_folder(b.path(), &cfg).unwrap();
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert_eq!(fa.len(), 35);
    assert_eq!(fa, fb, "same seed, same bytes");
    assert!(fa[0].0.ends_with("train/angry/synth_00000.png"), "{:?}", fa[0].0);
    assert!(fa[34].0.ends_with("val/neutral/synth_00001.png"), "{:?}", fa[34].0);
    let c = tempfile::tempdir().unwrap();
    write_fer_folder(c.path(), &SynthConfig { seed: 6, ..cfg.clone() }).unwrap();
    let fc = files(c.path());
    assert!(fa.iter().zip(&fc).all(|(x, y)| x.1 != y.1), "another seed draws other faces");
    // Splits and classes draw different faces too, and sizes are configurable.
    assert_ne!(render(5, SplitName::Train, 0, 0, 48), render(5, SplitName::Val, 0, 0, 48));
    assert_ne!(render(5, SplitName::Train, 0, 0, 48), render(5, SplitName::Train, 1, 0, 48));
    assert_eq!(render(5, SplitName::Train, 0, 0, 64).dimensions(), (64, 64));
    let bad = SynthConfig { size: 8, ..cfg };
    assert!(write_fer_folder(c.path(), &bad).unwrap_err().to_string().contains("synth.size"));
}

#[test]
fn synth_dataset_equals_the_written_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig { seed: 9, train_per_class: 2, val_per_class: 1, size: 40 };
    write_fer_folder(dir.path(), &cfg).unwrap();
    let ds = SynthDataset::new(9, SplitName::Val, 1, 40).unwrap();
    assert_eq!(ds.len(), 7);
    for (i, name) in FER_NAMES.iter().enumerate() {
        let s = ds.load(i).unwrap();
        assert_eq!(s.target, Target::Class(i));
        assert_eq!(ds.label(i), i);
        let path = dir.path().join("val").join(name).join("synth_00000.png");
        let disk = image::open(&path).unwrap();
        assert_eq!(disk, s.image, "{}", path.display());
        assert!(s.source.ends_with(&format!("val/{name}/synth_00000.png")));
    }
    assert!(ds.load(7).is_err());
}

const SCRIPT: &str = r#"
import os, sys, time, json, numpy as np, torch
from PIL import Image
from sklearn.linear_model import RidgeClassifierCV
root = sys.argv[1]
names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
def load(split):
    X, y = [], []
    for c, n in enumerate(names):
        d = f"{root}/{split}/{n}"
        for f in sorted(os.listdir(d)):
            X.append(np.asarray(Image.open(f"{d}/{f}"), dtype=np.float32) / 255.0); y.append(c)
    return np.stack(X), np.array(y)
Xt, yt = load("train"); Xv, yv = load("val")
ridge = RidgeClassifierCV(alphas=[0.1, 1, 10, 100, 1000]).fit(Xt.reshape(len(Xt), -1), yt)
linear = float((ridge.predict(Xv.reshape(len(Xv), -1)) == yv).mean())
torch.manual_seed(0); torch.set_num_threads(2)
def block(i, o):
    return [torch.nn.Conv2d(i, o, 3, padding=1), torch.nn.BatchNorm2d(o), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
net = torch.nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 64),
                          torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 7))
epochs, lr = 20, 3e-3
opt = torch.optim.Adam(net.parameters(), lr)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * ((len(Xt) + 31) // 32))
xt, ytt = torch.from_numpy(Xt[:, None] - 0.5), torch.from_numpy(yt)
t0 = time.time()
for ep in range(epochs):
    net.train()
    perm = torch.randperm(len(xt))
    for i in range(0, len(xt), 32):
        b = perm[i:i + 32]
        x = xt[b]
        x = torch.where((torch.rand(len(b)) < 0.5)[:, None, None, None], x.flip(3), x)
        loss = torch.nn.functional.cross_entropy(net(x), ytt[b])
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
net.eval()
with torch.no_grad():
    cnn = float((net(torch.from_numpy(Xv[:, None] - 0.5)).argmax(1).numpy() == yv).mean())
print(json.dumps({"linear": linear, "cnn": cnn, "cnn_seconds": time.time() - t0}))
"#;

#[test]
fn classes_are_hard_for_a_linear_classifier_and_learnable_by_a_small_cnn() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig { seed: 1, train_per_class: 100, val_per_class: 50, size: 48 };
    write_fer_folder(dir.path(), &cfg).unwrap();
    let out =
        Command::new(python()).arg("-c").arg(SCRIPT).arg(dir.path()).output().expect("venv python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value = serde_json::from_str(text.trim().lines().last().unwrap()).unwrap();
    eprintln!("synth learnability: {r}");
    let (linear, cnn) = (r["linear"].as_f64().unwrap(), r["cnn"].as_f64().unwrap());
    assert!(linear < 0.6, "ridge on raw pixels reaches {linear:.3}: the set is too easy");
    assert!(cnn >= 0.85, "a 3-layer CNN reaches only {cnn:.3}: the set is not learnable enough");
    assert!(cnn - linear > 0.3, "CNN {cnn:.3} vs linear {linear:.3}");
}
