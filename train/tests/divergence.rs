//! A diverging run (`--set optim.lr=1e30`) stops at the first non-finite training loss with a
//! sentence naming the epoch, the step and the loss term (exit 1), and never leaves non-finite
//! weights behind as a checkpoint.

mod cli_support;

use cli_support::{assert_fails, ce_stage, config, fer_train, s, synth};

#[test]
fn a_diverging_run_stops_naming_epoch_step_and_term_and_saves_no_non_finite_weights() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = config(tmp.path(), "diverge", &ce_stage(2));
    let out = fer_train(&["run", "--config", s(&cfg), "--set", "optim.lr=1e30"]);
    let msg = assert_fails(
        &out,
        1,
        &["training diverged at epoch 1, step ", "(term cross_entropy)", "optim.lr"],
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");
    let run = tmp.path().join("runs/diverge");
    for f in ["best.safetensors", "last.safetensors", "state.safetensors", "outcome.json"] {
        assert!(!run.join(f).exists(), "{f} was written by a diverged run");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default();
    assert!(metrics.is_empty(), "a diverged epoch was recorded: {metrics}");
}
