//! Where the face detector's time goes on one frame: letterbox + resize, the network, decoding.
//! `cargo run -p fer-infer --example detect_timing -- [ort|tract] [short|full]`

use std::time::Instant;

use fer_infer::face::blazeface::{decode, input_tensor, weighted_nms};
use fer_infer::face::{BlazeFace, Range};
use fer_infer::{BackendKind, BackendOptions};
use fer_live::source::{FrameSource, Synthetic};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let backend = if args.get(1).is_some_and(|a| a == "tract") {
        BackendKind::Tract
    } else {
        BackendKind::Ort
    };
    let range = if args.get(2).is_some_and(|a| a == "full") { Range::Full } else { Range::Short };
    let face =
        image::open(concat!(env!("FER_REPO_ROOT"), "/.deps/faces/astronaut_face.png"))?.to_rgb8();
    let mut src = Synthetic::new(face, 640, 480, Some(1))?;
    let frame = src.next_frame()?.ok_or("no frame")?;
    let mut det = BlazeFace::open(
        &range.default_path()?,
        range,
        &BackendOptions { kind: backend, ..BackendOptions::ort_cpu() }.with_threads(2),
    )?;
    let n = 50;
    let (mut pre, mut net, mut post) = (0.0, 0.0, 0.0);
    for _ in 0..n {
        let t = Instant::now();
        let (input, _) = input_tensor(&frame.image, range.size());
        pre += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (s, b) = det.raw(&input)?;
        net += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = weighted_nms(&decode(&s, &b, range.size(), 0.5), 0.3);
        post += t.elapsed().as_secs_f64();
    }
    let ms = |s: f64| s * 1e3 / n as f64;
    println!(
        "{backend:?} {range:?}: letterbox+resize {:.2} ms, network {:.2} ms, decode+NMS {:.3} ms",
        ms(pre),
        ms(net),
        ms(post)
    );
    Ok(())
}
