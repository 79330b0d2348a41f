//! Image decoding through the one preprocessing implementation: the first byte picks the
//! file extension (decoding is by content, the extension only names the file), the rest is
//! the file; a decoded image is preprocessed for a gray 48 px and an RGB 112 px model.
#![no_main]
use fer_models_spec::{Preprocess, ResizeMethod};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let ext = ["png", "jpg", "bmp", "webp", "tif", "pgm"][(pick & 0x7f) as usize % 6];
    let p = common::file(&format!("image.{ext}"), bytes);
    let Ok(img) = fer_data::decode_image(&p) else { return };
    for (size, channels) in [(48, 1), (112, 3)] {
        let mut pre = Preprocess::imagenet(size, channels);
        pre.resize = if pick & 0x80 == 0 { ResizeMethod::Bilinear } else { ResizeMethod::Nearest };
        let _ = fer_data::preprocess::preprocess(&img, &pre);
    }
});
