//! `fer-train bench` checks its counts before building anything: a zero is a usage error.

mod cli_support;

use cli_support::{assert_fails, fer_train};

#[test]
fn bench_with_batch_0_is_a_usage_error_naming_the_flag() {
    let out =
        fer_train(&["bench", "--arch", "mobilenet_v3_small", "--batch", "0", "--device", "cpu"]);
    assert_fails(&out, 2, &["--batch", "must be at least 1"]);
}

#[test]
fn bench_with_0_steps_a_0_size_or_a_bad_teacher_is_a_usage_error() {
    let base = ["bench", "--arch", "mobilenet_v3_small", "--device", "cpu"];
    let with = |extra: &[&str]| fer_train(&[&base[..], extra].concat());
    assert_fails(&with(&["--steps", "0"]), 2, &["--steps", "must be at least 1"]);
    assert_fails(&with(&["--size", "112,0"]), 2, &["--size", "must be at least 1"]);
    assert_fails(&with(&["--teacher", "resnet18"]), 2, &["--teacher", "ARCH@SIZE"]);
    assert_fails(&with(&["--teacher", "resnet18@0"]), 2, &["--teacher", "must be at least 1"]);
}
