//! The live window on a virtual X display (Xvfb, installed by scripts/setup.sh): the window
//! opens, a screenshot of the display (PIL's X11 grab) shows the frame, and the box drawn around
//! the face is found in it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::export;
use fer_live::draw::class_colour;
use fer_models_spec::{Arch, ArchConfig};
use fer_test_support::python;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a free display; returns it and `:N`.
fn xvfb() -> (Kill, String) {
    let mut child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb (run scripts/setup.sh)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (Kill(child), format!(":{}", line.trim()))
}

/// Longest run of `c` along rows and along columns of an RGB screenshot.
fn runs(rgb: &image::RgbImage, c: image::Rgb<u8>) -> (u32, u32) {
    let (w, h) = rgb.dimensions();
    let longest = |n: u32, m: u32, at: &dyn Fn(u32, u32) -> bool| {
        (0..n)
            .map(|i| {
                let (mut best, mut cur) = (0, 0);
                for j in 0..m {
                    cur = if at(i, j) { cur + 1 } else { 0 };
                    best = best.max(cur);
                }
                best
            })
            .max()
            .unwrap_or(0)
    };
    let horizontal = longest(h, w, &|y, x| *rgb.get_pixel(x, y) == c);
    let vertical = longest(w, h, &|x, y| *rgb.get_pixel(x, y) == c);
    (horizontal, vertical)
}

#[test]
fn the_window_shows_the_frame_with_a_box_around_the_face() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(64);
    let model = export(dir.path(), "clf", &cfg, 1.0, false, 1);
    let (_x, display) = xvfb();
    let app = Command::new(env!("CARGO_BIN_EXE_fer-infer"))
        .args(["live", "--source", "synthetic", "--frames", "100000", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env("DISPLAY", &display)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut app = Kill(app);
    let shot = dir.path().join("shot.png");
    let grab = format!(
        "from PIL import ImageGrab; ImageGrab.grab(xdisplay='{display}').save('{}')",
        shot.display()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut found = None;
    while Instant::now() < deadline && found.is_none() {
        std::thread::sleep(Duration::from_millis(500));
        if let Ok(Some(status)) = app.0.try_wait() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(app.0.stderr.as_mut().unwrap(), &mut err);
            panic!("fer-infer live exited with {status}: {err}");
        }
        let o = Command::new(python()).args(["-c", &grab]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rgb = image::open(&shot).unwrap().to_rgb8();
        // A box is a class colour running ≥ 30 px both across and down (the bars under it
        // are 4 px high).
        found = (0..7).map(class_colour).find(|c| {
            let (h, v) = runs(&rgb, *c);
            h >= 30 && v >= 30
        });
    }
    assert!(found.is_some(), "no box in the screenshots of {display} within 60 s");
}
