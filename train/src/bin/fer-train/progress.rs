//! Progress bars for the trainer (hidden when stderr is not a terminal or with `--quiet`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::RefCell;

use fer_train::trainer::Observer;
use fer_train::trainer::rundir::EpochRecord;

/// One bar per epoch, a summary line after it.
pub struct Bars {
    quiet: bool,
    bar: RefCell<Option<ProgressBar>>,
}

impl Bars {
    pub fn new(quiet: bool) -> Self {
        Bars { quiet, bar: RefCell::new(None) }
    }
}

impl Observer for Bars {
    fn epoch_start(&self, epoch: usize, total: usize, stage: &str, batches: usize) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} {bar:30} {pos}/{len} batches, {per_sec}, eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("{epoch}/{total} [{stage}]"));
        *self.bar.borrow_mut() = Some(bar);
    }

    fn batch(&self, done: usize, _total: usize, loss: Option<f64>) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.set_position(done as u64);
            if let Some(l) = loss {
                bar.set_message(format!("loss {l:.4}"));
            }
        }
    }

    fn epoch_end(&self, r: &EpochRecord, best: bool) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!(
                "epoch {:>3} [{}] train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}% macro-F1 {:.2}% ECE {:.2}% | {:.0} img/s{}",
                r.epoch,
                r.stage,
                r.train_loss,
                100.0 * r.train_accuracy,
                r.val_loss,
                100.0 * r.val_accuracy,
                100.0 * r.val_macro_f1,
                100.0 * r.val_ece,
                r.img_per_s,
                if best { "  *best" } else { "" }
            );
        }
    }

    fn message(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
}
