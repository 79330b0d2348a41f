//! The ISO base media file format (`.mp4`, `.m4v`, `.mov`): which video track there is, its
//! codec, size and time scale, and its sample table (where each coded frame lies in the file,
//! in decoding order, and when it is shown).
//!
//! The box tree is parsed by the `mp4` crate (maintained, pure Rust, with entry counts checked
//! against box sizes). Two things are done here by hand:
//! - a walk over the top-level boxes and the `moov` tree before that, which finds a missing or
//!   cut-off `moov` (a truncated file, or a recording that was never finished), fragmented files
//!   (`moof`) and the video track's codec by its sample-entry four-character code, which the
//!   `mp4` crate drops for codecs it does not parse (`hvc1`, `av01`, `mp4v`, …);
//! - the sample table itself (offsets from `stsc` + `stco`/`co64` + `stsz`, presentation times
//!   from `stts` + `ctts`), with checked arithmetic: the `mp4` crate's own per-sample reader
//!   divides by a `samples_per_chunk` of 0, unwraps a missing `stts` entry and allocates a
//!   sample's declared size before reading it. Every sample must lie inside the file, so a
//!   truncated `mdat` is found when the file is opened.

use std::io::{Read, Seek, SeekFrom};

/// The largest `moov` box read into memory for the codec walk (a one-hour 30 frames/s video's
/// `moov` is about 1 MB).
const MAX_MOOV: u64 = 256 << 20;
/// The largest coded frame read (a level-6.2 H.264 frame is under 20 MB).
pub const MAX_SAMPLE: u32 = 64 << 20;

/// Why an MP4 file cannot be read. The caller adds the file's name.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The box structure is broken (the `mp4` crate's message, or ours).
    #[error("not a readable MP4/MOV file: {0}")]
    Container(String),
    /// No `moov` box, or one cut off.
    #[error("the file is truncated: {0} (the recording was cut off or never finished)")]
    Truncated(String),
    /// Fragmented MP4 (`moof` boxes), as some cameras and streaming tools write.
    #[error("fragmented MP4 (moof boxes) is not read")]
    Fragmented,
    /// No video track.
    #[error("no video track")]
    NoVideo,
    /// A video track in another codec.
    #[error("the video track is {name} (`{fourcc}`), not H.264")]
    Codec {
        /// The sample entry's four-character code.
        fourcc: String,
        /// What it is, in words.
        name: &'static str,
    },
    /// A track declaring a frame size over the decoding limits.
    #[error(
        "the video track declares {width}×{height} pixels, over the decoding limit ({} pixels \
         a side, {} MiB a frame)",
        fer_data::image_file::MAX_DECODE_SIDE,
        fer_data::image_file::MAX_DECODE_BYTES >> 20
    )]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The sample table contradicts itself.
    #[error("inconsistent sample table: {0}")]
    Table(String),
    /// A frame's bytes lie (partly) past the end of the file.
    #[error(
        "the file is truncated: frame {sample} (bytes {start}..{end}) lies past its end \
         ({len} bytes)"
    )]
    PastEnd {
        /// Sample index, 0-based in decoding order.
        sample: usize,
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// File length.
        len: u64,
    },
    /// A frame that cannot be decoded.
    #[error("frame {sample} (byte {at}): {msg}")]
    Frame {
        /// Sample index, 0-based in decoding order.
        sample: usize,
        /// Its offset in the file.
        at: u64,
        /// What is wrong.
        msg: String,
    },
}

type Result<T> = std::result::Result<T, Mp4Error>;

/// What a sample-entry code is, for the error.
fn codec_name(fourcc: &[u8; 4]) -> &'static str {
    match fourcc {
        b"avc1" | b"avc2" | b"avc3" | b"avc4" => "H.264",
        b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => "H.265/HEVC",
        b"vp08" => "VP8",
        b"vp09" => "VP9",
        b"av01" => "AV1",
        b"mp4v" => "MPEG-4 part 2",
        b"s263" | b"h263" => "H.263",
        b"jpeg" | b"mjpa" | b"mjpb" => "Motion JPEG",
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => "Apple ProRes",
        _ => "an unsupported codec",
    }
}

/// One box header: type, offset of its body, and the offset where it ends.
fn header(buf: &[u8], at: usize) -> Option<([u8; 4], usize, usize)> {
    let size = u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?) as u64;
    let kind: [u8; 4] = buf.get(at + 4..at + 8)?.try_into().ok()?;
    let (body, end) = match size {
        0 => (at + 8, buf.len() as u64),
        1 => (at + 16, u64::from_be_bytes(buf.get(at + 8..at + 16)?.try_into().ok()?)),
        s => (at + 8, s),
    };
    let end = if size == 0 { end } else { (at as u64).checked_add(end)? };
    let end = usize::try_from(end).ok()?;
    (end >= body && end <= buf.len()).then_some((kind, body, end))
}

/// The handler type and first sample-entry code of each `trak` inside the `moov` body `buf`.
fn tracks(buf: &[u8]) -> Vec<([u8; 4], Option<[u8; 4]>)> {
    fn walk(buf: &[u8], from: usize, to: usize, cur: &mut Option<([u8; 4], Option<[u8; 4]>)>) {
        let mut at = from;
        while let Some((kind, body, end)) = header(&buf[..to], at) {
            match &kind {
                b"mdia" | b"minf" | b"stbl" => walk(buf, body, end, cur),
                // The first `hdlr` is the media's (MOV has a data handler in `minf` too).
                b"hdlr" => {
                    let h = buf.get(body + 8..body + 12);
                    if let (Some(c), Some(h)) = (cur.as_mut().filter(|c| c.0 == [0; 4]), h) {
                        c.0.copy_from_slice(h);
                    }
                }
                b"stsd" => {
                    if let (Some(c), Some((entry, _, _))) = (cur.as_mut(), header(buf, body + 8)) {
                        c.1.get_or_insert(entry);
                    }
                }
                _ => {}
            }
            if end <= at {
                break;
            }
            at = end;
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((kind, body, end)) = header(buf, at) {
        if &kind == b"trak" {
            let mut cur = Some(([0; 4], None));
            walk(buf, body, end, &mut cur);
            out.extend(cur);
        }
        if end <= at {
            break;
        }
        at = end;
    }
    out
}

/// Walks the top-level boxes: the `moov` body, and whether there are `moof` boxes.
fn top_level<R: Read + Seek>(r: &mut R, len: u64) -> Result<Vec<u8>> {
    let mut at = 0u64;
    let mut moov = None;
    while at + 8 <= len {
        r.seek(SeekFrom::Start(at))?;
        let mut h = [0u8; 16];
        r.read_exact(&mut h[..8])?;
        let kind: [u8; 4] = h[4..8].try_into().unwrap_or_default();
        let mut size = u64::from(u32::from_be_bytes(h[..4].try_into().unwrap_or_default()));
        let mut head = 8;
        if size == 1 {
            r.read_exact(&mut h[8..])?;
            size = u64::from_be_bytes(h[8..].try_into().unwrap_or_default());
            head = 16;
        } else if size == 0 {
            size = len - at;
        }
        if !kind.iter().all(|c| c.is_ascii_graphic() || *c == b' ') || size < head {
            if moov.is_some() {
                break; // trailing junk after a complete file
            }
            return Err(Mp4Error::Container(format!("no box structure at byte {at}")));
        }
        let end = at.saturating_add(size);
        match &kind {
            b"moof" => return Err(Mp4Error::Fragmented),
            b"moov" if end > len => {
                return Err(Mp4Error::Truncated(format!(
                    "its `moov` box (the index) ends at byte {end}, past the file's end ({len})"
                )));
            }
            b"moov" => {
                if size - head > MAX_MOOV {
                    return Err(Mp4Error::Container(format!(
                        "a `moov` box of {size} bytes, over the {} MiB read",
                        MAX_MOOV >> 20
                    )));
                }
                let mut body = vec![0u8; (size - head) as usize];
                r.read_exact(&mut body)?;
                moov = Some(body);
            }
            _ => {}
        }
        at = end;
    }
    moov.ok_or_else(|| {
        Mp4Error::Truncated(
            "it has no `moov` box (the index, written last by most recorders)".into(),
        )
    })
}

/// Where one coded frame lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Offset in the file.
    pub offset: u64,
    /// Bytes.
    pub size: u32,
}

/// An H.264 video track.
#[derive(Debug)]
pub struct Track {
    /// Declared frame size (the `avc1` sample entry).
    pub width: u32,
    /// Declared frame height.
    pub height: u32,
    /// Ticks per second of the presentation times.
    pub timescale: u32,
    /// The coded frames, in decoding order.
    pub samples: Vec<Sample>,
    /// Presentation times in ticks, sorted (the k-th frame shown is at `pts[k]`).
    pub pts: Vec<i64>,
    /// Sequence parameter sets from `avcC`.
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter sets from `avcC`.
    pub pps: Vec<Vec<u8>>,
    /// Bytes of each NAL unit's length prefix in the samples (1, 2 or 4).
    pub length_size: usize,
    /// Clockwise rotation the track's matrix asks for, in degrees (0, 90, 180, 270); not applied.
    pub rotation: u32,
}

impl Track {
    /// Frames per second: frames over the presentation span.
    pub fn fps(&self) -> Option<f64> {
        let (first, last) = (*self.pts.first()?, *self.pts.last()?);
        let n = self.pts.len();
        (n > 1 && last > first)
            .then(|| (n - 1) as f64 * f64::from(self.timescale) / (last - first) as f64)
    }

    /// Seconds from the first frame shown to the `k`-th.
    pub fn time_s(&self, k: usize) -> Option<f64> {
        let (t, t0) = (*self.pts.get(k)?, *self.pts.first()?);
        Some((t - t0) as f64 / f64::from(self.timescale))
    }
}

/// Bounds the reads and seeks the `mp4` crate makes while parsing the index: its box loops do
/// not advance past a child box of 0 to 7 bytes, so a corrupt `moov` would loop forever (found
/// by the `mp4` fuzz target). A real index needs a few calls per box of at least 8 bytes, far
/// below `left`, set from the `moov` size.
struct Bounded<'a, R> {
    inner: R,
    left: &'a std::cell::Cell<u64>,
}

impl<R> Bounded<'_, R> {
    fn spend(&mut self) -> std::io::Result<()> {
        match self.left.get() {
            0 => Err(std::io::Error::other("the index does not advance")),
            n => {
                self.left.set(n - 1);
                Ok(())
            }
        }
    }
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.spend()?;
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for Bounded<'_, R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.spend()?;
        self.inner.seek(pos)
    }
}

/// Reads the video track of the ISO BMFF file `r` (`len` bytes).
pub fn open<R: Read + Seek>(mut r: R, len: u64) -> Result<Track> {
    let moov = top_level(&mut r, len)?;
    let found = tracks(&moov);
    let Some((_, entry)) = found.iter().find(|(h, _)| h == b"vide") else {
        return Err(Mp4Error::NoVideo);
    };
    let entry = entry.unwrap_or(*b"????");
    if &entry != b"avc1" {
        let fourcc = String::from_utf8_lossy(&entry).into_owned();
        return Err(Mp4Error::Codec { fourcc, name: codec_name(&entry) });
    }
    r.seek(SeekFrom::Start(0))?;
    let left = std::cell::Cell::new(4 * moov.len() as u64 + 10_000);
    let bounded = Bounded { inner: r, left: &left };
    let parsed = mp4::Mp4Reader::read_header(std::io::BufReader::new(bounded), len);
    if left.get() == 0 {
        return Err(Mp4Error::Container(
            "its index does not advance (a box of 0 to 7 bytes inside `moov`)".into(),
        ));
    }
    let m = parsed.map_err(|e| Mp4Error::Container(e.to_string()))?;
    let trak = m
        .moov
        .traks
        .iter()
        .find(|t| {
            t.mdia.hdlr.handler_type.value == *b"vide" && t.mdia.minf.stbl.stsd.avc1.is_some()
        })
        .ok_or_else(|| {
            Mp4Error::Container("the H.264 track's `avc1` entry is unreadable".into())
        })?;
    let stbl = &trak.mdia.minf.stbl;
    let avc1 = stbl.stsd.avc1.as_ref().ok_or(Mp4Error::NoVideo)?;
    let (width, height) = (u32::from(avc1.width), u32::from(avc1.height));
    let side = fer_data::image_file::MAX_DECODE_SIDE;
    if width > side
        || height > side
        || u64::from(width) * u64::from(height) * 3 > fer_data::image_file::MAX_DECODE_BYTES
    {
        return Err(Mp4Error::TooLarge { width, height });
    }
    let timescale = trak.mdia.mdhd.timescale;
    if timescale == 0 {
        return Err(table("the track's time scale (mdhd) is 0"));
    }
    let length_size = usize::from(avc1.avcc.length_size_minus_one & 3) + 1;
    if length_size == 3 {
        return Err(Mp4Error::Container("avcC declares 3-byte NAL lengths".into()));
    }
    // The `mp4` crate's box types are not exported by name: their tables are copied out.
    let sizes = Sizes {
        fixed: stbl.stsz.sample_size,
        count: stbl.stsz.sample_count as usize,
        list: &stbl.stsz.sample_sizes,
    };
    let chunks: Vec<u64> = match (&stbl.stco, &stbl.co64) {
        (Some(c), _) => c.entries.iter().map(|&o| u64::from(o)).collect(),
        (None, Some(c)) => c.entries.clone(),
        (None, None) => return Err(table("neither stco nor co64")),
    };
    let stsc: Vec<(u32, u32)> =
        stbl.stsc.entries.iter().map(|e| (e.first_chunk, e.samples_per_chunk)).collect();
    let samples = offsets(&sizes, &stsc, &chunks, len)?;
    let stts: Vec<(u32, u32)> =
        stbl.stts.entries.iter().map(|e| (e.sample_count, e.sample_delta)).collect();
    let ctts: Vec<(u32, i32)> = stbl
        .ctts
        .iter()
        .flat_map(|c| c.entries.iter().map(|e| (e.sample_count, e.sample_offset)))
        .collect();
    let pts = times(&stts, &ctts, samples.len())?;
    let m = &trak.tkhd.matrix;
    let rotation = match (m.a.signum(), m.b.signum(), m.c.signum(), m.d.signum()) {
        (0, 1, -1, 0) => 90,
        (-1, 0, 0, -1) => 180,
        (0, -1, 1, 0) => 270,
        _ => 0,
    };
    let sps = avc1.avcc.sequence_parameter_sets.iter().map(|n| n.bytes.clone()).collect();
    let pps = avc1.avcc.picture_parameter_sets.iter().map(|n| n.bytes.clone()).collect();
    Ok(Track { width, height, timescale, samples, pts, sps, pps, length_size, rotation })
}

fn table(msg: impl Into<String>) -> Mp4Error {
    Mp4Error::Table(msg.into())
}

/// `stsz`: one size for every sample, or a list.
struct Sizes<'a> {
    fixed: u32,
    count: usize,
    list: &'a [u32],
}

/// Offsets and sizes of every sample, from `stsz`, `stsc` (first chunk, samples per chunk) and
/// the chunk offsets (`stco`/`co64`).
fn offsets(sz: &Sizes, stsc: &[(u32, u32)], chunks: &[u64], len: u64) -> Result<Vec<Sample>> {
    let n = sz.count;
    if sz.fixed == 0 && sz.list.len() != n {
        return Err(table("stsz lists fewer sizes than samples"));
    }
    if n as u64 > len {
        return Err(table(format!("{n} samples in a file of {len} bytes")));
    }
    let size = |i: usize| if sz.fixed > 0 { sz.fixed } else { sz.list[i] };
    let mut out = Vec::with_capacity(n);
    for (i, &(first, per_chunk)) in stsc.iter().enumerate() {
        let next_first = stsc.get(i + 1).map_or(chunks.len() as u64 + 1, |x| u64::from(x.0));
        if first == 0 || u64::from(first) > next_first {
            return Err(table(format!("stsc entry {i} starts at chunk {first}")));
        }
        for chunk in u64::from(first)..next_first {
            if out.len() == n {
                break;
            }
            let mut at = *chunks
                .get(chunk as usize - 1)
                .ok_or_else(|| table(format!("chunk {chunk} has no offset")))?;
            for _ in 0..per_chunk {
                if out.len() == n {
                    break;
                }
                let s = size(out.len());
                let end = at.checked_add(u64::from(s)).ok_or_else(|| table("offset overflow"))?;
                if s > MAX_SAMPLE {
                    return Err(table(format!("frame {} declares {s} bytes", out.len())));
                }
                if end > len {
                    return Err(Mp4Error::PastEnd { sample: out.len(), start: at, end, len });
                }
                out.push(Sample { offset: at, size: s });
                at = end;
            }
        }
    }
    if out.len() < n {
        return Err(table(format!("stsc and stco place {} of {n} samples", out.len())));
    }
    Ok(out)
}

/// Presentation times: decoding times from `stts` (count, delta) plus the `ctts` (count,
/// offset) offsets, sorted.
fn times(stts: &[(u32, u32)], ctts: &[(u32, i32)], n: usize) -> Result<Vec<i64>> {
    let mut dts = Vec::with_capacity(n);
    let mut t = 0i64;
    'outer: for &(count, delta) in stts {
        for _ in 0..count {
            if dts.len() == n {
                break 'outer;
            }
            dts.push(t);
            t = t.saturating_add(i64::from(delta));
        }
    }
    if dts.len() < n {
        return Err(table(format!("stts gives times for {} of {n} samples", dts.len())));
    }
    let mut i = 0;
    'ctts: for &(count, offset) in ctts {
        for _ in 0..count {
            let Some(d) = dts.get_mut(i) else { break 'ctts };
            *d = d.saturating_add(i64::from(offset));
            i += 1;
        }
    }
    dts.sort_unstable();
    Ok(dts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend(kind);
        v.extend(body);
        v
    }

    /// `ftyp`, then a `moov` with one video track whose sample entry is `entry`.
    fn file(entry: &[u8; 4]) -> Vec<u8> {
        let hdlr = bx(b"hdlr", &[&[0u8; 8][..], b"vide", &[0; 13]].concat());
        let stsd = bx(b"stsd", &[&[0, 0, 0, 0, 0, 0, 0, 1][..], &bx(entry, &[0; 78])].concat());
        let minf = bx(b"minf", &bx(b"stbl", &stsd));
        let trak = bx(b"trak", &bx(b"mdia", &[hdlr, minf].concat()));
        [bx(b"ftyp", b"isom\0\0\0\0isom"), bx(b"moov", &trak)].concat()
    }

    fn open_bytes(b: &[u8]) -> Result<Track> {
        open(std::io::Cursor::new(b), b.len() as u64)
    }

    #[test]
    fn other_codecs_are_named_by_their_sample_entry() {
        for (entry, name) in [(b"hvc1", "H.265/HEVC"), (b"mp4v", "MPEG-4 part 2"), (b"av01", "AV1")]
        {
            let e = open_bytes(&file(entry)).unwrap_err();
            assert!(matches!(&e, Mp4Error::Codec { name: n, .. } if *n == name), "{e}");
        }
    }

    #[test]
    fn an_index_box_that_does_not_advance_is_refused_at_once() {
        // An `avc1` track (with a minimal `avcC`) whose `stbl` holds, after its `stsd`, a box
        // declaring 0 bytes: the `mp4` crate's loop would read that header forever (the fuzz
        // target's hang).
        let hdlr = bx(b"hdlr", &[&[0u8; 8][..], b"vide", &[0; 13]].concat());
        let avcc =
            bx(b"avcC", &[1, 66, 0, 30, 0xff, 0xe1, 0, 4, 0x67, 66, 0, 30, 1, 0, 2, 0x68, 0xce]);
        let avc1 = bx(b"avc1", &[&[0u8; 78][..], &avcc].concat());
        let stsd = bx(b"stsd", &[&[0, 0, 0, 0, 0, 0, 0, 1][..], &avc1].concat());
        let stuck = [0, 0, 0, 0, b'z', b'z', b'z', b'z', 0, 0, 0, 0];
        let minf = bx(b"minf", &bx(b"stbl", &[&stsd[..], &stuck].concat()));
        let trak = bx(b"trak", &bx(b"mdia", &[hdlr, minf].concat()));
        let f = [bx(b"ftyp", b"isom\0\0\0\0isom"), bx(b"moov", &trak)].concat();
        let t = std::time::Instant::now();
        let e = open_bytes(&f).unwrap_err();
        assert!(e.to_string().contains("does not advance"), "{e}");
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    }

    #[test]
    fn a_cut_off_index_and_foreign_bytes_are_told_apart() {
        let f = file(b"hvc1");
        let e = open_bytes(&f[..f.len() - 10]).unwrap_err();
        assert!(matches!(e, Mp4Error::Truncated(_)), "{e}");
        let e = open_bytes(&f[..24]).unwrap_err();
        assert!(e.to_string().contains("no `moov` box"), "{e}");
        let e = open_bytes(b"\0\0\0\x10ftypisom\xff\xfe\x00\x01\x02\x03").unwrap_err();
        assert!(matches!(e, Mp4Error::Container(_) | Mp4Error::Truncated(_)), "{e}");
    }
}
