//! A 5×7 bitmap font, drawn for this project, for the labels in the live frames: capitals
//! (lower-case letters are drawn as capitals), digits and `% . - _ : / ( ) ?`; any other
//! character is drawn as `?`. Each glyph is seven rows of five bits, the leftmost column in
//! bit 4; glyphs are set one column apart and scale by whole pixels.

use image::{Rgb, RgbImage};

/// Glyph width in font pixels.
pub const GLYPH_W: u32 = 5;
/// Glyph height in font pixels.
pub const GLYPH_H: u32 = 7;
/// Horizontal distance from one glyph to the next, in font pixels.
pub const ADVANCE: u32 = GLYPH_W + 1;

/// Every drawable character and its rows.
pub const GLYPHS: [(char, [u8; 7]); 47] = [
    ('A', [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001]),
    ('B', [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110]),
    ('C', [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110]),
    ('D', [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100]),
    ('E', [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111]),
    ('F', [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000]),
    ('G', [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111]),
    ('H', [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001]),
    ('I', [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]),
    ('J', [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100]),
    ('K', [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001]),
    ('L', [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111]),
    ('M', [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001]),
    ('N', [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001]),
    ('O', [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110]),
    ('P', [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000]),
    ('Q', [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101]),
    ('R', [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001]),
    ('S', [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110]),
    ('T', [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100]),
    ('U', [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110]),
    ('V', [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100]),
    ('W', [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010]),
    ('X', [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001]),
    ('Y', [0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100]),
    ('Z', [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111]),
    ('0', [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110]),
    ('1', [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]),
    ('2', [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111]),
    ('3', [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110]),
    ('4', [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010]),
    ('5', [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110]),
    ('6', [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110]),
    ('7', [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000]),
    ('8', [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110]),
    ('9', [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100]),
    ('%', [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011]),
    ('.', [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100]),
    ('-', [0b00000, 0b00000, 0b00000, 0b01110, 0b00000, 0b00000, 0b00000]),
    ('_', [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111]),
    (':', [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000]),
    ('/', [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000]),
    ('(', [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010]),
    (')', [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000]),
    ('?', [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100]),
    (' ', [0; 7]),
    ('+', [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000]),
];

/// The rows of `c` (lower case as upper case; anything not in [`GLYPHS`] as `?`).
pub fn glyph(c: char) -> [u8; 7] {
    let c = c.to_ascii_uppercase();
    GLYPHS
        .iter()
        .find(|(g, _)| *g == c)
        .or_else(|| GLYPHS.iter().find(|(g, _)| *g == '?'))
        .map_or([0; 7], |(_, rows)| *rows)
}

/// Width in image pixels of `text` at `scale` (no trailing gap).
pub fn text_width(text: &str, scale: u32) -> u32 {
    let n = text.chars().count() as u32;
    (n * ADVANCE).saturating_sub(1) * scale
}

/// Height in image pixels of a line at `scale`.
pub fn text_height(scale: u32) -> u32 {
    GLYPH_H * scale
}

/// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale`×`scale`
/// square of `colour`; what falls outside `img` is clipped.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, colour: Rgb<u8>) {
    let (w, h, s) = (i64::from(img.width()), i64::from(img.height()), i64::from(scale));
    for (i, c) in text.chars().enumerate() {
        let gx = x + i as i64 * i64::from(ADVANCE) * s;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..GLYPH_W as i64 {
                if bits >> (GLYPH_W as i64 - 1 - col) & 1 == 0 {
                    continue;
                }
                for py in y + row as i64 * s..y + (row as i64 + 1) * s {
                    for px in gx + col * s..gx + (col + 1) * s {
                        if (0..w).contains(&px) && (0..h).contains(&py) {
                            img.put_pixel(px as u32, py as u32, colour);
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

    #[test]
    fn every_glyph_is_distinct_and_fits_five_columns() {
        for (i, (a, ga)) in GLYPHS.iter().enumerate() {
            assert!(ga.iter().all(|r| *r < 32), "{a} is wider than 5");
            for (b, gb) in &GLYPHS[i + 1..] {
                assert_ne!(ga, gb, "{a} and {b} look the same");
            }
        }
        for c in "abcdefghijklmnopqrstuvwxyz0123456789%. ".chars() {
            assert_ne!(glyph(c), glyph('?'), "{c} has no glyph");
        }
        assert_eq!(glyph('é'), glyph('?'));
    }

    #[test]
    fn text_is_drawn_where_asked_at_its_size() {
        let mut img = RgbImage::new(40, 20);
        let white = Rgb([255, 255, 255]);
        draw_text(&mut img, 3, 2, "l1", 2, white);
        let lit: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| **p == white)
            .map(|(x, y, _)| (x, y))
            .collect();
        let (xs, ys): (Vec<u32>, Vec<u32>) = lit.iter().cloned().unzip();
        // L spans the full glyph height; 1 ends at column 3 of its glyph (cell starts at 12 + 3).
        assert_eq!((*xs.iter().min().unwrap(), *ys.iter().min().unwrap()), (3, 2));
        assert_eq!(*ys.iter().max().unwrap(), 2 + 14 - 1);
        assert_eq!(*xs.iter().max().unwrap(), 3 + 12 + 2 * 4 - 1);
        assert_eq!(text_width("l1", 2), 22);
        // The L's bottom bar: the whole of glyph row 6 (two image rows) in the first cell.
        assert!((3..13).all(|x| img.get_pixel(x, 14) == &white && img.get_pixel(x, 15) == &white));
    }
}
