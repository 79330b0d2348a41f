//! Mixed precision: the autocast region and the float16 loss scaler.

use fer_train::amp::{LossScaler, autocast, autocast_enabled};
use fer_train::config::Precision;
use tch::{Device, Kind, Tensor};

#[test]
fn autocast_is_on_inside_the_region_only_and_never_for_fp32() {
    assert!(!autocast_enabled());
    assert!(autocast(Precision::Bf16, autocast_enabled).unwrap());
    assert!(!autocast_enabled(), "left on after a bf16 region");
    assert!(autocast(Precision::Fp16, autocast_enabled).unwrap());
    assert!(!autocast(Precision::Fp32, autocast_enabled).unwrap());
    // A panic inside the region still leaves it.
    let r = std::panic::catch_unwind(|| autocast(Precision::Bf16, || panic!("inside")));
    assert!(r.is_err());
    assert!(!autocast_enabled(), "left on after a panic");
}

#[test]
fn cpu_ops_stay_fp32_under_cuda_autocast() {
    let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
    let y = autocast(Precision::Bf16, || a.matmul(&a)).unwrap();
    assert_eq!(y.kind(), Kind::Float);
}

/// Needs a GPU (run on the GPU machine); on a CPU-only machine it says so and checks nothing.
#[test]
fn cuda_matmul_runs_in_the_configured_reduced_dtype() {
    fer_train::device::load_cuda_backend();
    if !tch::Cuda::is_available() {
        eprintln!("no CUDA device: skipped");
        return;
    }
    let a = Tensor::ones([8, 8], (Kind::Float, Device::Cuda(0)));
    let bf = autocast(Precision::Bf16, || a.matmul(&a)).unwrap();
    assert_eq!(bf.kind(), Kind::BFloat16);
    let h = autocast(Precision::Fp16, || a.matmul(&a)).unwrap();
    assert_eq!(h.kind(), Kind::Half);
    // log_softmax is on autocast's fp32 list: losses are computed in fp32.
    let l = autocast(Precision::Bf16, || a.matmul(&a).log_softmax(1, None::<Kind>)).unwrap();
    assert_eq!(l.kind(), Kind::Float);
}

#[test]
fn loss_scaler_unscales_finite_gradients_and_backs_off_on_overflow() {
    let mut s = LossScaler::default();
    let scale = s.scale;
    let g = Tensor::from_slice(&[2.0f32 * scale as f32, -4.0 * scale as f32]);
    assert!(s.unscale(std::slice::from_ref(&g)));
    assert_eq!(Vec::<f32>::try_from(&g).unwrap(), vec![2.0, -4.0]);
    assert_eq!(s.scale, scale);

    let bad = Tensor::from_slice(&[1.0f32, f32::INFINITY]);
    assert!(!s.unscale(&[g.shallow_clone(), bad]));
    assert_eq!(s.scale, scale / 2.0);

    let nan = Tensor::from_slice(&[f32::NAN]);
    assert!(!s.unscale(&[nan]));
    assert_eq!(s.scale, scale / 4.0);

    for _ in 0..LossScaler::GROWTH_INTERVAL {
        assert!(s.unscale(&[Tensor::from_slice(&[1.0f32])]));
    }
    assert_eq!(s.scale, scale / 2.0, "doubles after GROWTH_INTERVAL finite steps");
}

#[test]
fn losses_can_leave_autocast_and_the_region_resumes_after() {
    use fer_train::amp::without_autocast;
    let inside = autocast(Precision::Bf16, || {
        let off = without_autocast(autocast_enabled);
        (off, autocast_enabled())
    })
    .unwrap();
    assert_eq!(inside, (false, true));
    assert!(!without_autocast(autocast_enabled));
    assert!(!autocast_enabled());
}
