//! The coded picture size in an H.264 sequence parameter set (ITU-T H.264 § 7.3.2.1.1), read
//! before any frame reaches the decoder: a parameter set may declare a picture far larger than
//! the track's `tkhd`/`avc1` size (up to OpenH264's level-5.2 limit, 8192×4320), and OpenH264
//! then allocates and clears that picture for every frame, which a 2 KB file turned into a hang
//! (found by the `mp4` fuzz target). Written by hand: only the fields up to the size are read,
//! and no maintained crate reads just those without a whole bitstream parser.

/// A bit reader over an RBSP (emulation-prevention bytes removed), Exp-Golomb codes included.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.at / 8)?;
        let b = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some(v << 1 | self.bit()?))
    }

    /// `ue(v)`; `None` past the end or for codes over 31 leading zeros.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    /// `se(v)`, only skipped here.
    fn se(&mut self) -> Option<()> {
        self.ue().map(|_| ())
    }
}

/// The NAL unit's payload without its emulation-prevention bytes (`00 00 03` → `00 00`).
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Skips a `scaling_list` of `size` entries (§ 7.3.2.1.1.1).
fn skip_scaling_list(r: &mut Bits<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let code = r.ue()?;
            // se(v): k → (-1)^(k+1) · ceil(k / 2)
            let delta =
                if code % 2 == 1 { i64::from(code.div_ceil(2)) } else { -i64::from(code / 2) };
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// The coded picture size, in pixels, of the sequence parameter set `nal` (the whole NAL unit,
/// header byte included, type 7); `None` when it is cut off or malformed.
pub fn coded_size(nal: &[u8]) -> Option<(u32, u32)> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let data = rbsp(&nal[1..]);
    let mut r = Bits { data: &data, at: 0 };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    if matches!(profile, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        let chroma = r.ue()?;
        if chroma == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let w_mbs = u64::from(r.ue()?) + 1;
    let h_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    let w = w_mbs * 16;
    let h = h_units * 16 * (2 - u64::from(frame_mbs_only));
    Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
}

/// Whether a coded picture of `coded` pixels fits a track declaring `w`×`h`: the coded size is
/// the declared one rounded up to whole macroblocks (interlaced: pairs of them), cropped on
/// output.
pub fn fits(coded: (u32, u32), w: u32, h: u32) -> bool {
    coded.0 <= w.div_ceil(16) * 16 && coded.1 <= h.div_ceil(32) * 32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits MSB first.
    #[derive(Default)]
    struct Writer {
        bits: Vec<bool>,
    }

    impl Writer {
        fn put(&mut self, v: u32, n: u32) {
            for i in (0..n).rev() {
                self.bits.push((v >> i) & 1 == 1);
            }
        }
        fn ue(&mut self, v: u32) {
            let x = u64::from(v) + 1;
            let n = 64 - x.leading_zeros();
            self.put(0, n - 1);
            for i in (0..n).rev() {
                self.bits.push((x >> i) & 1 == 1);
            }
        }
        fn bytes(mut self) -> Vec<u8> {
            self.bits.push(true); // rbsp_stop_one_bit
            while !self.bits.len().is_multiple_of(8) {
                self.bits.push(false);
            }
            self.bits.chunks(8).map(|c| c.iter().fold(0u8, |b, &x| b << 1 | u8::from(x))).collect()
        }
    }

    /// An SPS of `profile` for a `w_mbs`×`h_mbs` macroblock frame.
    fn sps(profile: u32, w_mbs: u32, h_mbs: u32, scaling: bool) -> Vec<u8> {
        let mut w = Writer::default();
        w.put(profile, 8);
        w.put(0, 8);
        w.put(40, 8); // level 4.0
        w.ue(0);
        if profile == 100 {
            w.ue(1); // 4:2:0
            w.ue(0);
            w.ue(0);
            w.put(0, 1);
            w.put(u32::from(scaling), 1);
            if scaling {
                w.put(1, 1); // list 0 present
                for _ in 0..16 {
                    w.ue(1); // delta +1
                }
                w.put(0, 7);
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(0); // poc type 0
        w.ue(2);
        w.ue(1); // max_num_ref_frames
        w.put(0, 1);
        w.ue(w_mbs - 1);
        w.ue(h_mbs - 1);
        w.put(1, 1); // frame_mbs_only
        let mut nal = vec![0x67];
        nal.extend(w.bytes());
        nal
    }

    #[test]
    fn the_coded_size_is_read_for_baseline_and_high_profiles() {
        assert_eq!(coded_size(&sps(66, 20, 15, false)), Some((320, 240)));
        assert_eq!(coded_size(&sps(100, 21, 16, false)), Some((336, 256)));
        assert_eq!(coded_size(&sps(100, 512, 270, true)), Some((8192, 4320)));
        assert_eq!(coded_size(&[0x68, 1, 2]), None, "not an SPS");
        assert_eq!(coded_size(&sps(66, 20, 15, false)[..3]), None, "cut off");
    }

    #[test]
    fn emulation_prevention_bytes_are_removed() {
        assert_eq!(rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 5]), [0, 0, 1, 0, 0, 0, 5]);
    }

    #[test]
    fn a_coded_size_fits_the_declared_one_rounded_to_macroblocks() {
        assert!(fits((336, 256), 322, 242));
        assert!(!fits((8192, 4320), 322, 242));
        assert!(!fits((352, 256), 322, 242));
    }
}
