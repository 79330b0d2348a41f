//! Splits a raw MJPEG stream (JPEG files one after another) into its frames by walking the
//! JPEG markers: segment payloads are skipped by their length, so a thumbnail inside an APP1
//! segment, whose own SOI/EOI markers a plain byte search would take for a frame boundary,
//! stays inside its frame; entropy-coded data ends at the first marker that is not a restart
//! marker or a stuffed `FF 00`.

use std::io::{self, BufRead};

/// A byte reader that knows its offset.
pub struct Bytes<R> {
    inner: R,
    pos: u64,
}

impl<R: BufRead> Bytes<R> {
    /// Reads from `inner`, counting from offset 0.
    pub fn new(inner: R) -> Self {
        Bytes { inner, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    fn byte(&mut self) -> io::Result<Option<u8>> {
        let buf = self.inner.fill_buf()?;
        let Some(&b) = buf.first() else { return Ok(None) };
        self.inner.consume(1);
        self.pos += 1;
        Ok(Some(b))
    }
}

/// Why a frame could not be cut out of the stream.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The stream ended inside a frame (a recording cut off).
    #[error("the stream ends inside the frame that starts at byte {start} ({len} bytes read)")]
    Truncated {
        /// Offset of the frame's SOI.
        start: u64,
        /// Bytes of it read.
        len: usize,
    },
    /// Bytes that are not JPEG structure where a marker must be.
    #[error("corrupt JPEG structure at byte {at} (frame starting at byte {start}): {msg}")]
    Corrupt {
        /// Offset of the frame's SOI.
        start: u64,
        /// Offset of the bad byte.
        at: u64,
        /// What was found.
        msg: String,
    },
}

/// One JPEG cut out of the stream.
pub struct Jpeg {
    /// Offset of its first byte.
    pub start: u64,
    /// The whole file, SOI to EOI.
    pub bytes: Vec<u8>,
}

struct Frame<'a, R> {
    r: &'a mut Bytes<R>,
    out: Vec<u8>,
    start: u64,
}

impl<R: BufRead> Frame<'_, R> {
    fn take(&mut self) -> Result<u8, SplitError> {
        let b = self
            .r
            .byte()?
            .ok_or(SplitError::Truncated { start: self.start, len: self.out.len() })?;
        self.out.push(b);
        Ok(b)
    }

    fn take_n(&mut self, mut n: usize) -> Result<(), SplitError> {
        while n > 0 {
            let buf = self.r.inner.fill_buf()?;
            if buf.is_empty() {
                return Err(SplitError::Truncated { start: self.start, len: self.out.len() });
            }
            let k = n.min(buf.len());
            self.out.extend_from_slice(&buf[..k]);
            self.r.inner.consume(k);
            self.r.pos += k as u64;
            n -= k;
        }
        Ok(())
    }

    fn corrupt(&self, msg: String) -> SplitError {
        SplitError::Corrupt { start: self.start, at: self.r.pos - 1, msg }
    }

    /// A marker code after its `FF` (fill bytes `FF` skipped).
    fn marker_code(&mut self) -> Result<u8, SplitError> {
        let mut m = self.take()?;
        while m == 0xFF {
            m = self.take()?;
        }
        Ok(m)
    }
}

/// The next JPEG of the stream, skipping any bytes before its SOI; `None` when the stream
/// ends before another SOI.
pub fn next_jpeg<R: BufRead>(r: &mut Bytes<R>) -> Result<Option<Jpeg>, SplitError> {
    let mut prev = 0u8;
    loop {
        match r.byte()? {
            None => return Ok(None),
            Some(0xD8) if prev == 0xFF => break,
            Some(b) => prev = b,
        }
    }
    let start = r.pos - 2;
    let mut f = Frame { r, out: vec![0xFF, 0xD8], start };
    let mut pending: Option<u8> = None;
    loop {
        let m = match pending.take() {
            Some(m) => m,
            None => {
                let b = f.take()?;
                if b != 0xFF {
                    return Err(f.corrupt(format!("expected a marker, found {b:#04x}")));
                }
                f.marker_code()?
            }
        };
        match m {
            0xD9 => return Ok(Some(Jpeg { start, bytes: f.out })),
            0xD8 => return Err(f.corrupt("a start-of-image marker inside a frame".into())),
            0x01 | 0xD0..=0xD7 => {}
            _ => {
                let len = usize::from(u16::from_be_bytes([f.take()?, f.take()?]));
                if len < 2 {
                    return Err(f.corrupt(format!("segment {m:#04x} of length {len}")));
                }
                f.take_n(len - 2)?;
                if m == 0xDA {
                    // Entropy-coded data, up to the next marker that is not RSTn or FF 00.
                    loop {
                        if f.take()? != 0xFF {
                            continue;
                        }
                        let n = f.marker_code()?;
                        if n != 0x00 && !(0xD0..=0xD7).contains(&n) {
                            pending = Some(n);
                            break;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal structurally valid JPEG: SOI, an APP1 segment holding `app`, SOS with
    /// `scan` as entropy-coded data, EOI.
    fn jpeg(app: &[u8], scan: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE1];
        v.extend(((app.len() + 2) as u16).to_be_bytes());
        v.extend(app);
        v.extend([0xFF, 0xDA, 0x00, 0x02]);
        v.extend(scan);
        v.extend([0xFF, 0xD9]);
        v
    }

    fn split(stream: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, SplitError> {
        let mut r = Bytes::new(stream);
        let mut out = Vec::new();
        while let Some(j) = next_jpeg(&mut r)? {
            out.push((j.start, j.bytes));
        }
        Ok(out)
    }

    #[test]
    fn frames_are_cut_at_their_own_end_not_at_markers_inside_them() {
        // A thumbnail (its own SOI … EOI) inside APP1; stuffed FF 00 and a restart marker in
        // the scan; junk between the frames.
        let a = jpeg(&[1, 2, 0xFF, 0xD8, 9, 0xFF, 0xD9, 3], &[5, 0xFF, 0x00, 6, 0xFF, 0xD3, 7]);
        let b = jpeg(&[], &[0xFF, 0xFF, 0x00, 1]);
        let mut stream = a.clone();
        stream.extend([0x00, 0x13]);
        stream.extend(&b);
        let frames = split(&stream).unwrap();
        assert_eq!(frames, vec![(0, a.clone()), (a.len() as u64 + 2, b)]);
    }

    #[test]
    fn a_cut_off_last_frame_and_broken_structure_are_reported_with_offsets() {
        let a = jpeg(&[1, 2], &[3, 4]);
        let mut stream = a.clone();
        stream.extend(&a[..7]);
        let mut r = Bytes::new(&stream[..]);
        assert_eq!(next_jpeg(&mut r).unwrap().unwrap().bytes, a);
        let e = next_jpeg(&mut r).err().unwrap();
        assert!(matches!(e, SplitError::Truncated { start, len: 7 } if start == a.len() as u64));
        let bad = [0xFF, 0xD8, 0x12, 0x34];
        let e = split(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "corrupt JPEG structure at byte 2 (frame starting at byte 0): expected a marker, found 0x12"
        );
        assert!(split(&[0, 1, 2]).unwrap().is_empty(), "no SOI: no frame, no error");
    }
}
