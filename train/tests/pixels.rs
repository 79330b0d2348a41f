//! Pixel batches finished on the device (`trainer::pixels::normalize`) equal the host reference
//! (`PixelBatch::normalize`), erased rectangles included.

use std::sync::Arc;

use fer_data::augment::AugmentConfig;
use fer_data::loader::{Images, Loader, LoaderConfig};
use fer_data::synth::SynthDataset;
use fer_data::{Dataset, SplitName};
use fer_models_spec::Preprocess;
use fer_train::trainer::pixels::normalize;
use tch::{Device, Kind};

#[test]
fn device_normalisation_matches_the_host_reference() {
    check(Device::Cpu);
}

/// The same on the GPU: `cargo test -p fer-train --test pixels -- --ignored`.
#[test]
#[ignore = "needs a CUDA device"]
fn device_normalisation_matches_the_host_reference_on_cuda() {
    fer_train::device::load_cuda_backend();
    assert!(tch::Cuda::is_available(), "no CUDA device");
    check(Device::Cuda(0));
}

fn check(device: Device) {
    let ds: Arc<dyn Dataset> = Arc::new(SynthDataset::new(1, SplitName::Train, 6, 40).unwrap());
    let aug = AugmentConfig { erase_prob: 0.6, ..AugmentConfig::default() };
    for channels in [1, 3] {
        let p = Preprocess::imagenet(24, channels);
        let cfg = LoaderConfig { batch_size: 16, workers: 1, pixels: true, ..Default::default() };
        let l =
            Loader::new(ds.clone(), (0..ds.len()).collect(), p.clone(), aug.clone(), cfg).unwrap();
        let mut erased = 0;
        for b in l.epoch(0) {
            let b = b.unwrap();
            let Images::Pixels(px) = &b.images else { panic!("asked for pixels") };
            erased += px.erase.iter().flatten().count();
            let want = px.normalize(&p).unwrap();
            let x = normalize(px, &p, device).unwrap().to_device(Device::Cpu);
            let n = px.len() as i64;
            assert_eq!(x.size(), [n, channels as i64, 24, 24]);
            assert_eq!(x.kind(), Kind::Float);
            let got = Vec::<f32>::try_from(x.contiguous().view(-1)).unwrap();
            assert_eq!(got, want, "{channels} channels");
        }
        assert!(erased >= 5, "only {erased} erased samples");
    }
    let px =
        fer_data::pixels::PixelBatch { data: vec![0; 4], planes: 1, size: 2, erase: vec![None] };
    let err = normalize(&px, &Preprocess::imagenet(3, 3), device).unwrap_err().to_string();
    assert!(err.contains("[3, 3, 3]"), "{err}");
}
