//! The live pipeline end to end through the CLI, headless: the synthetic source (a real face
//! photo moved around a frame, so the truth is known) and an image folder; the JSON lines; the
//! errors for no camera, bad flags, unreadable video formats and no display.

mod common;
mod live_support;

use common::{cli, texts};
use fer_live::source::{FrameSource, Synthetic};
use live_support::{check_faces, classifier, face, inside_truth, lines};

#[test]
fn synthetic_frames_find_the_face_where_it_was_put() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let out = dir.path().join("live");
    let o = cli(
        &[
            "live",
            "--model",
            &model,
            "--source",
            "synthetic",
            "--headless",
            "--frames",
            "24",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    let (_, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let recs = lines(&out.join("frames.jsonl"));
    assert_eq!(recs.len(), 24);
    assert!(out.join("frames/000023.png").exists());
    let truth: Vec<[f64; 4]> =
        recs.iter().map(|r| std::array::from_fn(|k| r["truth"][k].as_f64().unwrap())).collect();
    for r in &recs {
        if let Some(f) = r["faces"].as_array().unwrap().first() {
            assert_eq!(f["id"], 0, "one face, one track");
        }
        for stage in ["decode", "detect", "align", "classify", "draw"] {
            assert!(r["ms"][stage].as_f64().unwrap() >= 0.0);
        }
    }
    let inside = inside_truth(&recs, &truth);
    assert!(inside >= 21, "the face was found inside its true box in {inside} of 24 frames");
    assert_eq!(
        check_faces(&recs),
        recs.iter().filter(|r| !r["faces"].as_array().unwrap().is_empty()).count()
    );
}

#[test]
fn an_image_folder_is_a_source_too_on_tract() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let mut s = Synthetic::new(face(), 640, 480, Some(3)).unwrap();
    while let Some(f) = s.next_frame().unwrap() {
        f.image.save(frames.join(format!("f{}.png", f.index))).unwrap();
    }
    let out = dir.path().join("out");
    let o = cli(
        &[
            "live",
            "--model",
            &model,
            "--source",
            frames.to_str().unwrap(),
            "--headless",
            "--backend",
            "tract",
            "--no-frames",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", texts(&o).1);
    let recs = lines(&out.join("frames.jsonl"));
    assert_eq!(recs.len(), 3);
    assert_eq!(check_faces(&recs), 3, "a face in every frame");
}

#[test]
fn no_camera_and_no_display_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let o = cli(&["--webcam", "--model", &model, "--headless"], &[]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let has_devices = std::fs::read_dir("/dev")
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().starts_with("video"));
    if has_devices {
        assert!(err.contains("/dev/video"), "{err}");
    } else {
        assert!(err.contains("no camera") && err.contains("--source synthetic"), "{err}");
    }
    // A device number that is not there: named, with the devices that are, or none.
    let o = cli(&["live", "--model", &model, "--headless", "--source", "camera:77"], &[]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    if has_devices {
        assert!(
            err.contains("no camera /dev/video77: the video devices here are /dev/video"),
            "{err}"
        );
    } else {
        assert!(err.contains("no camera: this machine has no video devices"), "{err}");
    }
    for (flag, value, says) in [
        ("--source", "camera:x", "`camera` or `camera:N`"),
        ("--resolution", "640", "WIDTHxHEIGHT"),
    ] {
        let o = cli(&["live", "--model", &model, "--headless", flag, value], &[]);
        let (_, err) = texts(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
    let mp4 = dir.path().join("clip.mp4");
    std::fs::write(&mp4, b"....ftypisom").unwrap();
    let o = cli(&["live", "--model", &model, "--headless", "--source", mp4.to_str().unwrap()], &[]);
    let (_, err) = texts(&o);
    assert!(!o.status.success());
    // An MP4 header without the index (`moov`): named as a truncated file.
    assert!(
        err.contains("clip.mp4: the file is truncated") && err.contains("no `moov` box"),
        "{err}"
    );
    let o = cli(
        &["live", "--model", &model, "--source", "synthetic"],
        &[("DISPLAY", ""), ("WAYLAND_DISPLAY", "")],
    );
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--headless"), "{err}");
}
