//! Helpers of the tests that train in process with the teacher cache: cli_support's tiny config
//! with the training images on the device, and an observer that keeps the trainer's messages.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Mutex;

use fer_train::config::ExperimentConfig;
use fer_train::trainer::Observer;

#[path = "../cli_support/mod.rs"]
pub mod cli_support;

/// cli_support's tiny CPU config `<dir>/<name>.toml` (with `extra` appended), loaded, with the
/// training images on the device (the teacher cache needs them there; on the CPU
/// `device_data = "on"` takes that path).
pub fn device_config(dir: &Path, name: &str, extra: &str) -> ExperimentConfig {
    let mut cfg = ExperimentConfig::load(&cli_support::config(dir, name, extra)).unwrap();
    cfg.apply_overrides(&["data.device_data=\"on\""]).unwrap();
    cfg
}

/// Keeps the trainer's messages.
#[derive(Default)]
pub struct Messages(pub Mutex<Vec<String>>);

impl Observer for Messages {
    fn message(&self, msg: &str) {
        self.0.lock().unwrap().push(msg.to_string());
    }
}
