//! Video files as `fer-infer live --source` reads them: MJPEG in AVI or a raw MJPEG stream,
//! recognised by content; every frame is split out and decoded until the end or an error.
#![no_main]
use fer_live::source::FrameSource;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::file("video.avi", data);
    let Ok(mut v) = fer_live::video::VideoFile::open(&p) else { return };
    for _ in 0..64 {
        match v.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
