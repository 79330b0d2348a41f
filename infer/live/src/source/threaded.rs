//! Sources wrapped for the window: [`Latest`] reads a source on its own thread and keeps only
//! the newest frame; [`Paced`] delivers frames no faster than a camera would.

use super::{Frame, FrameSource};
use crate::error::{Error, Result};

/// A source read on its own thread that keeps only the newest frame: a consumer slower than the
/// source (classification, drawing) always gets the most recent picture, never a backlog, so
/// the display does not lag behind reality. Frames replaced before being taken are counted.
pub struct Latest {
    shared: std::sync::Arc<(std::sync::Mutex<LatestState>, std::sync::Condvar)>,
    handle: Option<std::thread::JoinHandle<()>>,
    what: String,
}

#[derive(Default)]
struct LatestState {
    frame: Option<Frame>,
    done: bool,
    stop: bool,
    error: Option<Error>,
    dropped: usize,
}

impl Latest {
    /// Starts reading `source` on a capture thread.
    pub fn spawn(mut source: Box<dyn FrameSource>) -> Self {
        use std::sync::{Arc, Condvar, Mutex};
        let what = format!("{} (capture thread, newest frame only)", source.describe());
        let shared = Arc::new((Mutex::new(LatestState::default()), Condvar::new()));
        let s = shared.clone();
        let handle = std::thread::spawn(move || {
            let (lock, cv) = &*s;
            loop {
                if lock.lock().map_or(true, |g| g.stop) {
                    break;
                }
                let next = source.next_frame();
                let Ok(mut g) = lock.lock() else { break };
                match next {
                    Ok(Some(f)) => {
                        g.dropped += usize::from(g.frame.is_some());
                        g.frame = Some(f);
                    }
                    Ok(None) => g.done = true,
                    Err(e) => {
                        g.error = Some(e);
                        g.done = true;
                    }
                }
                let done = g.done;
                drop(g);
                cv.notify_all();
                if done {
                    break;
                }
            }
        });
        Latest { shared, handle: Some(handle), what }
    }

    /// Frames the consumer never saw because a newer one replaced them.
    pub fn dropped(&self) -> usize {
        self.shared.0.lock().map_or(0, |g| g.dropped)
    }
}

impl FrameSource for Latest {
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let (lock, cv) = &*self.shared;
        let poisoned = || Error::invalid("capture thread", "it panicked");
        let mut g = lock.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(f) = g.frame.take() {
                return Ok(Some(f));
            }
            if let Some(e) = g.error.take() {
                return Err(e);
            }
            if g.done {
                return Ok(None);
            }
            g = cv.wait(g).map_err(|_| poisoned())?;
        }
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

impl Drop for Latest {
    fn drop(&mut self) {
        if let Ok(mut g) = self.shared.0.lock() {
            g.stop = true;
        }
        self.shared.1.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Paces a source to at most `fps` frames per second, as a camera is (for the synthetic scene
/// in the window).
pub struct Paced {
    inner: Box<dyn FrameSource>,
    period: std::time::Duration,
    next: Option<std::time::Instant>,
}

impl Paced {
    /// `inner` at most `fps` frames per second.
    pub fn new(inner: Box<dyn FrameSource>, fps: f64) -> Self {
        Paced { inner, period: std::time::Duration::from_secs_f64(1.0 / fps.max(0.1)), next: None }
    }
}

impl FrameSource for Paced {
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let now = std::time::Instant::now();
        if let Some(t) = self.next.filter(|t| *t > now) {
            std::thread::sleep(t - now);
        }
        self.next = Some(self.next.map_or(now, |t| t.max(now)) + self.period);
        self.inner.next_frame()
    }

    fn describe(&self) -> String {
        format!("{} at {:.0} frames/s", self.inner.describe(), 1.0 / self.period.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    /// Frames of a solid colour, as fast as asked.
    struct Counter(usize, usize);
    impl FrameSource for Counter {
        fn next_frame(&mut self) -> Result<Option<Frame>> {
            if self.0 >= self.1 {
                return Ok(None);
            }
            self.0 += 1;
            Ok(Some(Frame {
                image: RgbImage::new(4, 4),
                index: self.0 - 1,
                truth: None,
                path: None,
            }))
        }
        fn describe(&self) -> String {
            "counter".into()
        }
    }

    #[test]
    fn a_slow_consumer_gets_the_newest_frames_and_the_rest_are_counted_as_dropped() {
        // 200 frames/s for 60 frames; the consumer takes one every 25 ms.
        let src = Paced::new(Box::new(Counter(0, 60)), 200.0);
        let mut latest = Latest::spawn(Box::new(src));
        let mut seen = Vec::new();
        while let Some(f) = latest.next_frame().unwrap() {
            seen.push(f.index);
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert!(seen.len() < 30, "a backlog was delivered: {seen:?}");
        assert_eq!(seen.len() + latest.dropped(), 60, "{seen:?}");
    }

    #[test]
    fn a_fast_consumer_sees_every_frame_in_order() {
        let mut latest = Latest::spawn(Box::new(Paced::new(Box::new(Counter(0, 10)), 100.0)));
        let mut seen = Vec::new();
        while let Some(f) = latest.next_frame().unwrap() {
            seen.push(f.index);
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(latest.dropped(), 0);
    }
}
