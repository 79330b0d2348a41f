//! MJPEG video through the CLI, headless: a raw MJPEG stream and MJPEG in AVI as sources (the
//! face found where the synthetic scene put it), `--out-video` in both forms, and a video
//! that breaks mid-stream (a clear error, the frames before kept).

mod common;
mod live_support;

use common::{cli, texts};
use live_support::{check_faces, classifier, inside_truth, lines, synthetic_jpegs};

/// Splits concatenated JPEGs at every `FF D9 FF D8` (valid for encoder output without
/// thumbnails; independent of the library's marker walk) and decodes each.
fn decode_concatenated(bytes: &[u8]) -> Vec<image::RgbImage> {
    let mut starts = vec![0];
    starts.extend(
        (2..bytes.len().saturating_sub(1))
            .filter(|&i| bytes[i - 2..i + 2] == [0xFF, 0xD9, 0xFF, 0xD8]),
    );
    starts.push(bytes.len());
    starts
        .windows(2)
        .map(|w| image::load_from_memory(&bytes[w[0]..w[1]]).unwrap().to_rgb8())
        .collect()
}

#[test]
fn an_mjpeg_video_is_a_source_and_the_annotated_frames_are_written_as_mjpeg() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let (jpegs, truth) = synthetic_jpegs(12);
    let video = dir.path().join("scene.mjpeg");
    std::fs::write(&video, jpegs.concat()).unwrap();
    let out = dir.path().join("out");
    let written = out.join("annotated.mjpeg");
    let o = cli(
        &[
            "live",
            "--model",
            &model,
            "--source",
            video.to_str().unwrap(),
            "--headless",
            "--no-frames",
            "--out",
            out.to_str().unwrap(),
            "--out-video",
            written.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", texts(&o).1);
    let recs = lines(&out.join("frames.jsonl"));
    assert_eq!(recs.len(), 12);
    let inside = inside_truth(&recs, &truth);
    assert!(inside >= 11, "the face was found inside its true box in {inside} of 12 frames");
    assert_eq!(check_faces(&recs), 12);
    assert!(!out.join("frames").exists(), "--no-frames writes no PNG");
    let frames = decode_concatenated(&std::fs::read(&written).unwrap());
    assert_eq!(frames.len(), 12);
    assert!(frames.iter().all(|f| f.dimensions() == (640, 480)));
}

#[test]
fn avi_out_and_back_in() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let avi = dir.path().join("run.avi");
    let run = |source: &str, out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args =
            vec!["live", "--model", &model, "--headless", "--no-frames", "--source", source];
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(extra);
        let o = cli(&args, &[]);
        assert!(o.status.success(), "{}", texts(&o).1);
        lines(&out.join("frames.jsonl"))
    };
    run("synthetic", "a", &["--frames", "10", "--fps", "25", "--out-video", avi.to_str().unwrap()]);
    // The header, by the AVI layout: RIFF size, 'AVI ', the frame period, the frame count, an
    // index entry per frame.
    let b = std::fs::read(&avi).unwrap();
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!((&b[..4], &b[8..12]), (&b"RIFF"[..], &b"AVI "[..]));
    assert_eq!(u32_at(4) as usize, b.len() - 8);
    assert_eq!((u32_at(32), u32_at(48)), (40_000, 10), "40 ms per frame at 25 frames/s, 10 frames");
    let idx = b.windows(4).rposition(|w| w == b"idx1").unwrap();
    assert_eq!(u32_at(idx + 4), 16 * 10);
    assert_eq!(b.len(), idx + 8 + 160);
    // Read back: the annotated synthetic frames, the face still found where it was put.
    let recs = run(avi.to_str().unwrap(), "b", &[]);
    assert_eq!(recs.len(), 10);
    let (_, truth) = synthetic_jpegs(10);
    let inside = inside_truth(&recs, &truth);
    assert!(inside >= 9, "the face was found inside its true box in {inside} of 10 frames");
}

#[test]
fn a_video_that_breaks_mid_stream_stops_with_its_name_and_the_frames_before_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let (mut jpegs, _) = synthetic_jpegs(5);
    // Frame 3 keeps its JPEG structure but loses its frame header (SOF0 becomes a comment).
    let sof = jpegs[3].windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpegs[3][sof + 1] = 0xFE;
    let video = dir.path().join("broken.mjpg");
    std::fs::write(&video, jpegs.concat()).unwrap();
    let byte: usize = jpegs[..3].iter().map(Vec::len).sum();
    let out = dir.path().join("out");
    let o = cli(
        &["live", "--model", &model, "--headless", "--source", video.to_str().unwrap()]
            .into_iter()
            .chain(["--out", out.to_str().unwrap()])
            .collect::<Vec<_>>(),
        &[],
    );
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let want = format!(
        "video file {} stopped delivering frames: frame 3 (byte {byte}) is not a valid JPEG",
        video.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(
        err.contains(&format!(
            "(after 3 frames); what was written before is kept in {}",
            out.display()
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(lines(&out.join("frames.jsonl")).len(), 3);
    for i in 0..3 {
        assert!(image::open(out.join(format!("frames/{i:06}.png"))).is_ok());
    }
}

#[test]
fn a_frame_declaring_a_huge_image_stops_the_video_at_once() {
    // Found by fuzzing (fuzz/fuzz_targets/video.rs): a frame of a few hundred bytes whose
    // header declares 21,331 × 18,764 gray pixels took over 20 s and 1.5 GB to decode. Here a
    // colour frame declares 12,000 × 9,000 (324 MB, under the image crate's own 512 MiB cap).
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let (mut jpegs, _) = synthetic_jpegs(3);
    let sof = jpegs[1].windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpegs[1][sof + 5..sof + 9].copy_from_slice(&[0x23, 0x28, 0x2E, 0xE0]);
    let video = dir.path().join("bomb.mjpeg");
    std::fs::write(&video, jpegs.concat()).unwrap();
    let out = dir.path().join("out");
    let t = std::time::Instant::now();
    let args = ["live", "--model", &model, "--headless", "--source", video.to_str().unwrap()];
    let o = cli(&[&args[..], &["--out", out.to_str().unwrap()]].concat(), &[]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(t.elapsed().as_secs_f64() < 10.0, "took {:?}", t.elapsed());
    assert!(err.contains("bomb.mjpeg") && err.contains("frame 1"), "{err}");
    assert!(err.contains("limit"), "{err}");
    assert_eq!(lines(&out.join("frames.jsonl")).len(), 1);
}
