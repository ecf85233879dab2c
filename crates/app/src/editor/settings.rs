//! Settings persisted between runs through eframe's storage (a RON file in the platform's data
//! directory): tool settings, recent files, view toggles, the New dialog's last size. Panel
//! sizes persist with egui's own memory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ui::tools::ToolSettings;

/// eframe storage key.
pub const STORAGE_KEY: &str = "pentimento-editor-settings";
/// How many recent files the File menu lists.
pub const MAX_RECENT_FILES: usize = 10;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub tools: ToolSettings,
    /// Most recent first.
    pub recent_files: Vec<PathBuf>,
    pub show_mask: bool,
    pub new_size: [u32; 2],
    /// The folder the in-app file browser starts in.
    pub last_dir: Option<PathBuf>,
    /// The generation panel's settings.
    pub generation: ui::generation::GenerationSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tools: ToolSettings::default(),
            recent_files: Vec::new(),
            show_mask: true,
            new_size: [1024, 1024],
            last_dir: None,
            generation: Default::default(),
        }
    }
}

impl Settings {
    /// The settings saved by the last run, or the defaults (first run, unreadable storage).
    pub fn load(storage: Option<&dyn eframe::Storage>) -> Self {
        storage.and_then(|s| eframe::get_value(s, STORAGE_KEY)).unwrap_or_default()
    }

    /// Writes the settings for the next run (eframe calls this on exit and every 30 s).
    pub fn store(&self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, self);
    }

    pub fn push_recent(&mut self, path: &Path) {
        let path = path.to_path_buf();
        self.recent_files.retain(|p| *p != path);
        self.recent_files.insert(0, path.clone());
        self.recent_files.truncate(MAX_RECENT_FILES);
        self.last_dir = path.parent().map(Path::to_path_buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_files_are_unique_and_bounded() {
        let mut s = Settings::default();
        for i in 0..15 {
            s.push_recent(Path::new(&format!("/tmp/{i}.ora")));
        }
        s.push_recent(Path::new("/tmp/7.ora"));
        assert_eq!(s.recent_files.len(), MAX_RECENT_FILES);
        assert_eq!(s.recent_files[0], Path::new("/tmp/7.ora"));
        assert_eq!(s.recent_files.iter().filter(|p| p.ends_with("7.ora")).count(), 1);
        assert_eq!(s.last_dir.as_deref(), Some(Path::new("/tmp")));
    }

    #[test]
    fn survives_json_round_trip_and_missing_fields() {
        let mut s = Settings::default();
        s.tools.brush.size_px = 77.0;
        s.push_recent(Path::new("/x/y.ora"));
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Settings>(&text).unwrap(), s);
        let partial: Settings = serde_json::from_str(r#"{"show_mask": false}"#).unwrap();
        assert!(!partial.show_mask);
        assert_eq!(partial.new_size, [1024, 1024]);
    }
}
