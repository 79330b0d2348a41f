//! Faces followed from frame to frame (greedy IoU matching), each with its own exponentially
//! smoothed logits so the displayed expression does not flicker.

use fer_infer::face::Face;

/// One followed face.
#[derive(Debug, Clone)]
pub struct Track {
    /// Stable id, from 0, in order of appearance.
    pub id: u64,
    /// The latest box.
    pub bbox: [f32; 4],
    /// Smoothed logits.
    pub logits: Vec<f32>,
    /// Frames since the track was last matched.
    pub missed: usize,
}

/// The tracker.
#[derive(Debug, Clone)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    /// Weight of the newest logits in the exponential average, in (0, 1]; 1 = no smoothing.
    pub alpha: f32,
    /// Minimum IoU for a detection to continue a track.
    pub min_iou: f32,
    /// Frames a track survives without a detection.
    pub max_missed: usize,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker { tracks: Vec::new(), next_id: 0, alpha: 0.5, min_iou: 0.3, max_missed: 5 }
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

impl Tracker {
    /// Assigns each detection (with its raw logits) to a track, smooths, and returns for each
    /// detection, in order, its track id and smoothed logits.
    pub fn update(&mut self, faces: &[Face], logits: &[Vec<f32>]) -> Vec<(u64, Vec<f32>)> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (d, f) in faces.iter().enumerate() {
            for (t, tr) in self.tracks.iter().enumerate() {
                let o = iou(&f.bbox, &tr.bbox);
                if o >= self.min_iou {
                    pairs.push((o, d, t));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut det_track = vec![None; faces.len()];
        let mut used = vec![false; self.tracks.len()];
        for (_, d, t) in pairs {
            if det_track[d].is_none() && !used[t] {
                det_track[d] = Some(t);
                used[t] = true;
            }
        }
        for (t, tr) in self.tracks.iter_mut().enumerate() {
            if !used[t] {
                tr.missed += 1;
            }
        }
        let mut out = Vec::with_capacity(faces.len());
        for (d, f) in faces.iter().enumerate() {
            let t = match det_track[d] {
                Some(t) => {
                    let tr = &mut self.tracks[t];
                    for (s, x) in tr.logits.iter_mut().zip(&logits[d]) {
                        *s = self.alpha * x + (1.0 - self.alpha) * *s;
                    }
                    tr.bbox = f.bbox;
                    tr.missed = 0;
                    t
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        bbox: f.bbox,
                        logits: logits[d].clone(),
                        missed: 0,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            out.push((self.tracks[t].id, self.tracks[t].logits.clone()));
        }
        let max = self.max_missed;
        self.tracks.retain(|t| t.missed <= max);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32) -> Face {
        Face { score: 1.0, bbox: [x, 0.0, x + 10.0, 10.0], keypoints: [[0.0; 2]; 6] }
    }

    #[test]
    fn a_moving_face_keeps_its_id_and_its_logits_are_smoothed() {
        let mut t = Tracker::default();
        let a = t.update(&[face(0.0)], &[vec![0.0, 2.0]]);
        let b = t.update(&[face(2.0), face(50.0)], &[vec![2.0, 0.0], vec![1.0, 1.0]]);
        assert_eq!(a[0].0, 0);
        assert_eq!(b[0], (0, vec![1.0, 1.0]), "same face, half old and half new logits");
        assert_eq!(b[1], (1, vec![1.0, 1.0]), "a new face starts its own track");
        for _ in 0..=t.max_missed {
            t.update(&[], &[]);
        }
        let c = t.update(&[face(2.0)], &[vec![0.0, 0.0]]);
        assert_eq!(c[0].0, 2, "tracks expire after max_missed frames without a detection");
    }
}
