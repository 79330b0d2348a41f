//! The run's one look at `data.test_split`: the last weights and then `best.safetensors`
//! scored into `test.json` after the last epoch. Nothing is chosen on it.

use fer_checkpoint::CheckOptions;

use super::Session;
use super::data::open_test;
use super::epoch::{ValSource, evaluate};
use super::resident::ResidentVal;
use crate::error::{Error, Result};
use crate::lower::TchModel;

impl Session<'_> {
    /// Scores the last weights and then `best.safetensors` on `data.test_split` (never used
    /// to choose anything) into `test.json`.
    pub(super) fn test(&mut self, best_epoch: usize, last_epoch: usize) -> Result<()> {
        let Some(loader) = open_test(&self.cfg, &self.preprocess)? else { return Ok(()) };
        let (device, precision, obs) = (self.device, self.precision, self.obs);
        // Preprocessed once, scored twice.
        let input = ResidentVal::build(&loader, device)?;
        let score = |model: &TchModel, what: &str, epoch: usize| -> Result<serde_json::Value> {
            let v = evaluate(model, ValSource::Resident(&input), device, 0, precision)?;
            obs.message(&format!(
                "test split ({what}, epoch {epoch}): accuracy {:.2} %, macro-F1 {:.2} %, ECE {:.2} %",
                100.0 * v.accuracy,
                100.0 * v.macro_f1,
                100.0 * v.ece
            ));
            Ok(serde_json::json!({
                "epoch": epoch,
                "accuracy": v.accuracy,
                "macro_f1": v.macro_f1,
                "ece": v.ece,
                "nll": v.loss,
            }))
        };
        let last = score(self.evaluated(), "last", last_epoch)?;
        let best_path = self.dir.best();
        self.student.load_weights_file(&best_path, &CheckOptions::default())?;
        let best = score(&self.student, "best on validation", best_epoch)?;
        let json = serde_json::json!({
            "split": self.cfg.data.test_split.map(|s| s.name().to_string()),
            "images": loader.dataset().len(),
            "selection": self.cfg.early_stopping.metric.name(),
            "best": best,
            "last": last,
        });
        let text = serde_json::to_vec_pretty(&json).map_err(|e| Error::Input(e.to_string()))?;
        self.dir.write_atomic("test.json", &text)
    }
}
