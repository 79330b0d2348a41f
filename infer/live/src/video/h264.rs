//! H.264 in MP4/MOV, decoded frame by frame: the samples of the track [`isobmff`] found are
//! read one at a time, turned into an Annex-B byte stream and decoded by OpenH264.
//!
//! Why these crates: `mp4` (box parsing) is maintained and pure Rust; `openh264` is maintained
//! and, with its default `source` feature, compiles Cisco's OpenH264 decoder from the C++
//! sources bundled in the crate (with `cc`, no assembly unless `nasm` is installed): nothing is
//! downloaded at build or run time, unlike its `libloading` mode, which loads Cisco's binary.
//! No pure-Rust H.264 decoder handles B-frames and High profile today.
//!
//! Done here by hand:
//! - AVCC → Annex B: MP4 stores each NAL unit behind a 1-, 2- or 4-byte length (`avcC`'s
//!   `lengthSizeMinusOne`), OpenH264 wants start codes (`00 00 00 01`); the sequence and
//!   picture parameter sets from `avcC` go before the first frame. A length running past its
//!   sample is an error naming the frame.
//! - Presentation order and times: OpenH264 returns pictures in presentation order (it
//!   reorders B-frames itself), and the track's presentation times are sorted, so the k-th
//!   picture is shown at the k-th time ([`isobmff::Track::time_s`]).
//! - Limits: the declared size is checked against the image decoding limits before anything
//!   is decoded, every sequence parameter set (from `avcC` and in the frames) must declare a
//!   picture no larger than that size ([`super::sps`]) before it reaches the decoder, and each
//!   picture must fit the declared size.
//!
//! YUV 4:2:0 → RGB is OpenH264's (`openh264` crate's) conversion: BT.601, limited range, as
//! ffmpeg assumes for untagged video. The track's rotation (`tkhd` matrix) is not applied; it
//! is logged once.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};

use image::RgbImage;
use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;

use super::isobmff::{self, Mp4Error, Track};

type Result<T> = std::result::Result<T, Mp4Error>;

/// An H.264 track being decoded.
pub struct H264<R> {
    r: R,
    track: Track,
    decoder: Decoder,
    /// The next sample to decode (decoding order).
    next_sample: usize,
    /// Pictures decoded and not yet returned.
    ready: VecDeque<RgbImage>,
    /// Pictures returned so far.
    shown: usize,
    annex_b: Vec<u8>,
}

/// Appends the length-prefixed NAL units of `sample` to `out` with start codes, after `check`
/// has accepted each of them.
pub fn to_annex_b(
    sample: &[u8],
    length_size: usize,
    out: &mut Vec<u8>,
    mut check: impl FnMut(&[u8]) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut at = 0;
    while at < sample.len() {
        let head = sample
            .get(at..at + length_size)
            .ok_or_else(|| format!("a NAL length cut off at byte {at} of {}", sample.len()))?;
        let len = head.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
        at += length_size;
        let nal = sample.get(at..at + len).ok_or_else(|| {
            format!(
                "a NAL unit of {len} bytes at byte {at} runs past the frame's {} bytes",
                sample.len()
            )
        })?;
        check(nal)?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        at += len;
    }
    Ok(())
}

impl<R: Read + Seek> H264<R> {
    /// Decodes `track`, whose samples are read from `r`.
    pub fn new(r: R, track: Track) -> Result<Self> {
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| Mp4Error::Container(format!("the H.264 decoder did not start: {e}")))?;
        for ps in &track.sps {
            check_sps(ps, track.width, track.height)
                .map_err(|m| Mp4Error::Container(format!("avcC: {m}")))?;
        }
        if track.rotation != 0 {
            tracing::warn!(
                "the video asks to be rotated by {}° when shown; frames are read unrotated",
                track.rotation
            );
        }
        Ok(H264 {
            r,
            track,
            decoder,
            next_sample: 0,
            ready: VecDeque::new(),
            shown: 0,
            annex_b: Vec::new(),
        })
    }

    /// The track.
    pub fn track(&self) -> &Track {
        &self.track
    }

    /// The next picture in presentation order and its time in seconds; `None` at the end.
    pub fn next_picture(&mut self) -> Result<Option<(RgbImage, Option<f64>)>> {
        while self.ready.is_empty() {
            if self.next_sample > self.track.samples.len() {
                return Ok(None);
            }
            if self.next_sample == self.track.samples.len() {
                self.next_sample += 1;
                self.flush()?;
            } else {
                self.decode_next()?;
            }
        }
        let Some(img) = self.ready.pop_front() else { return Ok(None) };
        let t = self.track.time_s(self.shown);
        self.shown += 1;
        Ok(Some((img, t)))
    }

    fn frame_error(&self, sample: usize, msg: String) -> Mp4Error {
        let at = self.track.samples.get(sample).map_or(0, |s| s.offset);
        Mp4Error::Frame { sample, at, msg }
    }

    fn decode_next(&mut self) -> Result<()> {
        let i = self.next_sample;
        self.next_sample += 1;
        let s = self.track.samples[i];
        let mut bytes = vec![0u8; s.size as usize];
        self.r.seek(SeekFrom::Start(s.offset))?;
        self.r.read_exact(&mut bytes).map_err(|e| self.frame_error(i, e.to_string()))?;
        let mut buf = std::mem::take(&mut self.annex_b);
        buf.clear();
        if i == 0 {
            for ps in self.track.sps.iter().chain(&self.track.pps) {
                buf.extend_from_slice(&[0, 0, 0, 1]);
                buf.extend_from_slice(ps);
            }
        }
        let (w, h) = (self.track.width, self.track.height);
        to_annex_b(&bytes, self.track.length_size, &mut buf, |nal| check_sps(nal, w, h))
            .map_err(|m| self.frame_error(i, m))?;
        let decoded = match self.decoder.decode(&buf) {
            Ok(Some(yuv)) => Some(to_rgb(&yuv, &self.track)),
            Ok(None) => None,
            Err(e) => Some(Err(format!("not valid H.264 ({e})"))),
        };
        self.annex_b = buf;
        if let Some(img) = decoded {
            let img = img.map_err(|m| self.frame_error(i, m))?;
            self.ready.push_back(img);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let last = self.track.samples.len().saturating_sub(1);
        let pictures = match self.decoder.flush_remaining() {
            Ok(p) => p.iter().map(|y| to_rgb(y, &self.track)).collect::<Vec<_>>(),
            Err(e) => vec![Err(format!("not valid H.264 ({e})"))],
        };
        for p in pictures {
            let img = p.map_err(|m| self.frame_error(last, m))?;
            self.ready.push_back(img);
        }
        Ok(())
    }
}

/// Refuses a sequence parameter set (NAL type 7) that cannot be read or whose coded picture is
/// larger than the track's declared `w`×`h` ([`super::sps`]); other NAL units pass.
fn check_sps(nal: &[u8], w: u32, h: u32) -> std::result::Result<(), String> {
    if nal.first().is_none_or(|b| b & 0x1f != 7) {
        return Ok(());
    }
    match super::sps::coded_size(nal) {
        Some(c) if super::sps::fits(c, w, h) => Ok(()),
        Some((cw, ch)) => Err(format!(
            "a sequence parameter set declares {cw}×{ch} pixels in a track declaring {w}×{h}"
        )),
        None => Err("a sequence parameter set that cannot be read".into()),
    }
}

/// The picture as RGB, after checking its size against the track's declared one.
fn to_rgb(yuv: &DecodedYUV<'_>, track: &Track) -> std::result::Result<RgbImage, String> {
    let (w, h) = yuv.dimensions();
    let (w32, h32) = (u32::try_from(w).unwrap_or(u32::MAX), u32::try_from(h).unwrap_or(u32::MAX));
    if w == 0 || h == 0 || w32 > track.width || h32 > track.height {
        return Err(format!(
            "a picture of {w}×{h} pixels in a track declaring {}×{}",
            track.width, track.height
        ));
    }
    let mut rgb = vec![0u8; w * h * 3];
    yuv.write_rgb8(&mut rgb);
    RgbImage::from_raw(w32, h32, rgb).ok_or_else(|| "a picture of the wrong size".to_string())
}

/// Opens the H.264 track of the ISO BMFF file `r` (`len` bytes).
pub fn open<R: Read + Seek>(mut r: R, len: u64) -> Result<H264<R>> {
    let track = isobmff::open(&mut r, len)?;
    H264::new(r, track)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixed_nal_units_become_start_code_delimited() {
        let mut out = Vec::new();
        to_annex_b(&[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41], 4, &mut out, |_| Ok(())).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x65, 1, 0, 0, 0, 1, 0x41]);
        out.clear();
        to_annex_b(&[0, 1, 9], 2, &mut out, |_| Ok(())).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 9]);
        let e = to_annex_b(&[0, 0, 0, 9, 0x65], 4, &mut out, |_| Ok(())).unwrap_err();
        assert_eq!(e, "a NAL unit of 9 bytes at byte 4 runs past the frame's 5 bytes");
        assert!(to_annex_b(&[0, 0], 4, &mut out, |_| Ok(())).is_err());
    }
}
