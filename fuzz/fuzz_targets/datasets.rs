//! The dataset readers whose input is a text file a user downloads: FER-2013's CSV, FER+'s
//! `fer2013new.csv` (joined with a FER-2013 CSV), RAF-DB's label list and AffectNet's CSV.
//! The first byte picks the reader and `skip_bad`; for FER+ the bytes up to the first
//! `\n===\n` are `fer2013new.csv`, the rest `fer2013.csv`. Whatever opens is listed and its
//! first samples loaded (images named by a list do not exist: an error, never a panic).
#![no_main]
use fer_data::formats::{Format, OpenOptions, open};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let opts = OpenOptions { skip_bad: pick & 0x10 != 0, ..OpenOptions::default() };
    let (format, path) = match pick % 4 {
        0 => (Format::Fer2013Csv, common::file("fer2013/fer2013.csv", bytes)),
        1 => {
            let cut = bytes.windows(5).position(|w| w == b"\n===\n");
            let (new, old) = match cut {
                Some(i) => (&bytes[..i], &bytes[i + 5..]),
                None => (bytes, &b""[..]),
            };
            common::file("ferplus/fer2013.csv", old);
            (Format::FerPlus, common::file("ferplus/fer2013new.csv", new))
        }
        2 => {
            common::file("rafdb/EmoLabel/list_patition_label.txt", bytes);
            (Format::RafDb, common::scratch("rafdb"))
        }
        _ => (Format::AffectNetCsv, common::file("affectnet/training.csv", bytes)),
    };
    let Ok(ds) = open(format, &path, None, &opts) else { return };
    for i in 0..ds.len().min(8) {
        let _ = ds.label(i);
        let _ = ds.source(i);
        let _ = ds.load(i);
    }
});
