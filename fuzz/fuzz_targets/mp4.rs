//! MP4/MOV files as `fer-infer live --source` and `predict` read them: the box walk, the `mp4`
//! crate's parsing, the sample table, AVCC → Annex B and OpenH264's decoding, every frame until
//! the end or an error.
#![no_main]
use fer_live::source::FrameSource;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::file("video.mp4", data);
    let Ok(mut v) = fer_live::video::VideoFile::open(&p) else { return };
    for _ in 0..64 {
        match v.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
