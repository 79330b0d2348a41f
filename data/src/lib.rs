//! FER datasets: readers, label map, preprocessing, augmentation, loader, synthetic set.
