//! The video devices of this machine, and the messages that name them when the camera asked
//! for cannot be had.

use std::path::Path;

/// A V4L2 video device node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoDevice {
    /// N of `/dev/videoN`.
    pub index: u32,
    /// Its name as the driver gives it (`Integrated Camera: Integrated C`), if known.
    pub name: Option<String>,
}

impl VideoDevice {
    /// `/dev/video0 (Integrated Camera)`.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("{} ({n})", path(self.index)),
            None => path(self.index),
        }
    }
}

/// `/dev/videoN`.
pub fn path(index: u32) -> String {
    format!("/dev/video{index}")
}

/// The video devices of this machine, by index: nokhwa's V4L2 query where this build has
/// camera support, else the `/dev/video*` nodes with their names from sysfs.
pub fn list() -> Vec<VideoDevice> {
    #[cfg(feature = "camera")]
    if let Ok(cams) = nokhwa::query(nokhwa::utils::ApiBackend::Video4Linux) {
        let mut v: Vec<VideoDevice> = cams
            .iter()
            .filter_map(|c| match c.index() {
                nokhwa::utils::CameraIndex::Index(i) => {
                    Some(VideoDevice { index: *i, name: Some(c.human_name()) })
                }
                nokhwa::utils::CameraIndex::String(_) => None,
            })
            .collect();
        v.sort_by_key(|d| d.index);
        return v;
    }
    scan(Path::new("/dev"), Path::new("/sys/class/video4linux"))
}

/// The `videoN` entries of `dev`, with names from `sys/videoN/name` where readable.
pub fn scan(dev: &Path, sys: &Path) -> Vec<VideoDevice> {
    let Ok(entries) = std::fs::read_dir(dev) else { return Vec::new() };
    let mut v: Vec<VideoDevice> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let index: u32 = name.strip_prefix("video")?.parse().ok()?;
            let label = std::fs::read_to_string(sys.join(&name).join("name"))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
            Some(VideoDevice { index, name: label })
        })
        .collect();
    v.sort_by_key(|d| d.index);
    v
}

const OTHERS: &str =
    "--source synthetic, --source VIDEO.mjpeg|VIDEO.avi or --source FOLDER_OF_IMAGES";

fn listing(found: &[VideoDevice]) -> String {
    found.iter().map(VideoDevice::describe).collect::<Vec<_>>().join(", ")
}

/// Why camera `index` cannot be opened, given the devices `found`: none at all, or not that
/// one (the others are listed, with `--source camera:N` to pick one).
pub fn no_camera_message(index: u32, found: &[VideoDevice]) -> String {
    if found.is_empty() {
        return format!(
            "no camera: this machine has no video devices (no /dev/video* nodes); use {OTHERS}"
        );
    }
    format!(
        "no camera {}: the video devices here are {}; pick one with --source camera:N, or use \
         {OTHERS}",
        path(index),
        listing(found)
    )
}

/// Why a build without the `camera` feature cannot capture, with the devices `found`.
pub fn no_support_message(found: &[VideoDevice]) -> String {
    let devices = if found.is_empty() { "none".to_string() } else { listing(found) };
    format!(
        "this fer-infer was built without camera support (cargo feature `camera`; video \
         devices here: {devices}); rebuild with default features, or use {OTHERS}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_nodes_are_found_in_index_order_with_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let (dev, sys) = (dir.path().join("dev"), dir.path().join("sys"));
        for n in ["video10", "video2", "video0", "vhci", "videoX"] {
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::write(dev.join(n), "").unwrap();
        }
        std::fs::create_dir_all(sys.join("video2")).unwrap();
        std::fs::write(sys.join("video2/name"), "USB Camera\n").unwrap();
        let found = scan(&dev, &sys);
        let idx: Vec<u32> = found.iter().map(|d| d.index).collect();
        assert_eq!(idx, [0, 2, 10]);
        assert_eq!(found[1].describe(), "/dev/video2 (USB Camera)");
        assert_eq!(found[0].describe(), "/dev/video0");
    }

    #[test]
    fn messages_list_the_devices_and_the_other_sources() {
        let none = no_camera_message(0, &[]);
        assert!(none.starts_with("no camera: this machine has no video devices"), "{none}");
        assert!(none.contains("--source synthetic"), "{none}");
        let found = [
            VideoDevice { index: 0, name: Some("Integrated Camera".into()) },
            VideoDevice { index: 1, name: None },
        ];
        let other = no_camera_message(3, &found);
        assert!(
            other.starts_with(
                "no camera /dev/video3: the video devices here are /dev/video0 (Integrated \
                 Camera), /dev/video1; pick one with --source camera:N"
            ),
            "{other}"
        );
        assert!(no_support_message(&found).contains("cargo feature `camera`"));
    }
}
