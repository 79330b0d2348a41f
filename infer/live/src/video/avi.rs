//! MJPEG in AVI: a walk over the RIFF chunks that keeps the frame period (`avih`), finds the
//! first video stream and its codec (`strh`, `strf`) and returns that stream's frames (`NNdc`,
//! `NNdb` chunks) in file order, across OpenDML's extra `AVIX` RIFF lists too. Lists are
//! entered, every other chunk is skipped by its size; the index (`idx1`) is not needed.

use std::io::{Read, Seek, SeekFrom};

/// Codecs whose frames are JPEG images.
const JPEG_CODECS: [&[u8; 4]; 4] = [b"MJPG", b"mjpg", b"JPEG", b"jpeg"];

/// An AVI file being read.
pub struct Avi<R> {
    r: R,
    pos: u64,
    end: u64,
    streams: u32,
    video: Option<u32>,
    codec: Option<[u8; 4]>,
    us_per_frame: Option<u32>,
}

/// What [`Avi::next_frame`] found.
pub enum Next {
    /// A frame's bytes and their offset.
    Frame(u64, Vec<u8>),
    /// The end of the file.
    End,
    /// The file ends inside a chunk (a recording cut off).
    Truncated(u64),
}

fn fourcc(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

impl<R: Read + Seek> Avi<R> {
    /// Checks the RIFF `AVI ` header of `r`, `len` bytes long.
    pub fn open(mut r: R, len: u64) -> Result<Self, String> {
        let mut h = [0u8; 12];
        r.read_exact(&mut h).map_err(|e| format!("not an AVI file: {e}"))?;
        if &h[..4] != b"RIFF" || &h[8..] != b"AVI " {
            return Err("not an AVI file (no RIFF `AVI ` header)".into());
        }
        Ok(Avi { r, pos: 12, end: len, streams: 0, video: None, codec: None, us_per_frame: None })
    }

    /// Frames per second from the main header (known after [`Avi::read_headers`]).
    pub fn fps(&self) -> Option<f64> {
        self.us_per_frame.filter(|u| *u > 0).map(|u| 1e6 / f64::from(u))
    }

    fn read(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let mut v = vec![0u8; n];
        self.r.read_exact(&mut v).map_err(|e| format!("byte {}: {e}", self.pos))?;
        self.pos += n as u64;
        Ok(v)
    }

    fn le32(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    /// Reads chunks up to the first frame without consuming it, so that [`Avi::fps`] and the
    /// codec check are known before any frame is asked for.
    pub fn read_headers(&mut self) -> Result<(), String> {
        let here = self.pos;
        let first = self.next_frame()?;
        self.r.seek(SeekFrom::Start(here)).map_err(|e| e.to_string())?;
        self.pos = here;
        self.streams = 0;
        self.video = None;
        match first {
            Next::Frame(..) | Next::Truncated(_) => Ok(()),
            Next::End => Err("no video frames".into()),
        }
    }

    /// The next frame of the video stream.
    pub fn next_frame(&mut self) -> Result<Next, String> {
        loop {
            if self.pos + 8 > self.end {
                return Ok(if self.pos < self.end { Next::Truncated(self.pos) } else { Next::End });
            }
            let at = self.pos;
            let h = self.read(8)?;
            let (id, size) = (&h[..4], u64::from(Self::le32(&h, 4).unwrap_or(0)));
            if id == b"RIFF" || id == b"LIST" {
                self.read(4)?; // the list type; its chunks follow
                continue;
            }
            if self.pos + size > self.end {
                return Ok(Next::Truncated(at));
            }
            let padded = size + (size & 1);
            let is_frame = id[2..] == *b"dc" || id[2..] == *b"db";
            let stream = fourcc(&id[..2]).parse::<u32>().ok();
            match id {
                b"avih" | b"strh" | b"strf" => {
                    let body = self.read(size as usize)?;
                    self.header(id, &body);
                    if padded > size {
                        self.read(1)?;
                    }
                }
                _ if is_frame && stream.is_some() && stream == self.video => {
                    let codec = self.codec.unwrap_or(*b"????");
                    if !JPEG_CODECS.contains(&&codec) {
                        return Err(format!(
                            "the video stream is {}, not MJPEG; only MJPEG video is read (this \
                             build has no H.264 or other decoder)",
                            fourcc(&codec)
                        ));
                    }
                    let data = self.read(size as usize)?;
                    if padded > size {
                        self.read(1)?;
                    }
                    if !data.is_empty() {
                        return Ok(Next::Frame(at + 8, data));
                    }
                }
                _ => {
                    if is_frame && self.video.is_none() {
                        return Err(format!(
                            "frame chunk `{}` before any video stream header",
                            fourcc(id)
                        ));
                    }
                    self.r.seek(SeekFrom::Current(padded as i64)).map_err(|e| e.to_string())?;
                    self.pos += padded;
                }
            }
        }
    }

    fn header(&mut self, id: &[u8], body: &[u8]) {
        match id {
            b"avih" => self.us_per_frame = Self::le32(body, 0),
            b"strh" => {
                self.streams += 1;
                if self.video.is_none() && body.get(..4) == Some(b"vids") {
                    self.video = Some(self.streams - 1);
                    self.codec = body.get(4..8).and_then(|c| c.try_into().ok());
                }
            }
            // The video stream's BITMAPINFOHEADER: biCompression is the codec that counts.
            _ if self.video == Some(self.streams.wrapping_sub(1)) => {
                if let Some(c) = body.get(16..20).and_then(|c| c.try_into().ok()) {
                    self.codec = Some(c);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.extend((body.len() as u32).to_le_bytes());
        v.extend(body);
        if body.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn list(kind: &[u8; 4], items: &[Vec<u8>]) -> Vec<u8> {
        let mut body = kind.to_vec();
        body.extend(items.concat());
        chunk(if kind == b"AVI " { b"RIFF" } else { b"LIST" }, &body)
    }

    /// An AVI with an audio stream first, then video in `codec`, and `frames` in `movi`
    /// (interleaved with audio chunks).
    fn avi(codec: &[u8; 4], frames: &[&[u8]]) -> Vec<u8> {
        let mut avih = vec![0u8; 56];
        avih[..4].copy_from_slice(&40_000u32.to_le_bytes());
        let mut vids = b"vids".to_vec();
        vids.extend(codec);
        vids.resize(56, 0);
        let mut strf = vec![0u8; 40];
        strf[16..20].copy_from_slice(codec);
        let auds = [b"auds".to_vec(), vec![0; 52]].concat();
        let mut movi = Vec::new();
        for f in frames {
            movi.push(chunk(b"00wb", &[1, 2, 3]));
            movi.push(chunk(b"01dc", f));
        }
        list(
            b"AVI ",
            &[
                list(
                    b"hdrl",
                    &[
                        chunk(b"avih", &avih),
                        list(b"strl", &[chunk(b"strh", &auds), chunk(b"strf", &[0; 18])]),
                        list(b"strl", &[chunk(b"strh", &vids), chunk(b"strf", &strf)]),
                    ],
                ),
                list(b"movi", &movi),
                chunk(b"idx1", &[]),
            ],
        )
    }

    fn read_all(bytes: &[u8]) -> Result<(Vec<Vec<u8>>, bool), String> {
        let mut a = Avi::open(std::io::Cursor::new(bytes), bytes.len() as u64)?;
        a.read_headers()?;
        assert_eq!(a.fps(), Some(25.0));
        let mut frames = Vec::new();
        loop {
            match a.next_frame()? {
                Next::Frame(_, f) => frames.push(f),
                Next::End => return Ok((frames, false)),
                Next::Truncated(_) => return Ok((frames, true)),
            }
        }
    }

    #[test]
    fn the_video_streams_frames_come_out_in_order_and_other_streams_are_skipped() {
        let bytes = avi(b"MJPG", &[b"\xFF\xD8one", b"\xFF\xD8three"]);
        let (frames, cut) = read_all(&bytes).unwrap();
        assert_eq!(frames, [b"\xFF\xD8one".to_vec(), b"\xFF\xD8three".to_vec()]);
        assert!(!cut);
        let (frames, cut) = read_all(&bytes[..bytes.len() - 20]).unwrap();
        assert_eq!((frames.len(), cut), (1, true), "a file cut inside the last frame");
    }

    #[test]
    fn other_codecs_and_other_files_are_refused_with_the_reason() {
        let e = read_all(&avi(b"H264", &[b"x"])).unwrap_err();
        assert!(e.starts_with("the video stream is H264, not MJPEG"), "{e}");
        let e = read_all(b"RIFF\0\0\0\0WAVEfmt ").unwrap_err();
        assert_eq!(e, "not an AVI file (no RIFF `AVI ` header)");
    }
}
