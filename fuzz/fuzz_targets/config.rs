//! Experiment configs and `--set` overrides: the bytes up to the first `\n---\n` are the TOML
//! file, each later line one `--set key=value`; the result is validated and written back out
//! as the resolved TOML a run records.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (toml, sets) = text.split_once("\n---\n").unwrap_or((text, ""));
    let origin = std::path::Path::new("/fuzz/configs/x.toml");
    let Ok(mut cfg) = fer_train::config::ExperimentConfig::from_toml_str(toml, origin) else {
        return;
    };
    let sets: Vec<&str> = sets.lines().collect();
    if cfg.apply_overrides(&sets).is_err() {
        return;
    }
    if cfg.validate().is_ok() {
        let _ = cfg.resolved_toml();
        let _ = cfg.config_hash();
    }
});
