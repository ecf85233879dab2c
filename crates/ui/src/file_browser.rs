//! An in-app file browser, used when no native (xdg-portal) dialog answers, so Open and Save
//! always work.

use std::path::{Path, PathBuf};

use egui::{Context, Ui};

/// What the browser is choosing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrowseMode {
    Open,
    Save,
}

/// Why the user wants a file; the app matches on it when the browser answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrowsePurpose {
    OpenDocument,
    ImportLayer,
    SaveDocument,
    Export,
    LoadMask,
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    is_dir: bool,
}

/// The browser window's state.
#[derive(Clone, Debug)]
pub struct FileBrowser {
    pub mode: BrowseMode,
    pub purpose: BrowsePurpose,
    dir: PathBuf,
    file_name: String,
    /// Lower-case extensions shown (all files when empty).
    extensions: Vec<String>,
    entries: Vec<Entry>,
    error: Option<String>,
    dir_text: String,
}

/// The browser's answer for this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum BrowseResult {
    Pending,
    Cancelled,
    Chosen(PathBuf),
}

impl FileBrowser {
    pub fn new(
        mode: BrowseMode,
        purpose: BrowsePurpose,
        start_dir: &Path,
        file_name: &str,
        extensions: &[&str],
    ) -> Self {
        let mut b = Self {
            mode,
            purpose,
            dir: start_dir.to_path_buf(),
            file_name: file_name.to_owned(),
            extensions: extensions.iter().map(|e| e.to_ascii_lowercase()).collect(),
            entries: Vec::new(),
            error: None,
            dir_text: String::new(),
        };
        b.refresh();
        b
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn refresh(&mut self) {
        self.dir_text = self.dir.display().to_string();
        self.entries.clear();
        match std::fs::read_dir(&self.dir) {
            Ok(rd) => {
                self.error = None;
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                    let ext_ok = self.extensions.is_empty()
                        || Path::new(&name).extension().is_some_and(|x| {
                            self.extensions.contains(&x.to_string_lossy().to_ascii_lowercase())
                        });
                    if is_dir || ext_ok {
                        self.entries.push(Entry { name, is_dir });
                    }
                }
                self.entries.sort_by(|a, b| {
                    b.is_dir
                        .cmp(&a.is_dir)
                        .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
                });
            }
            Err(e) => self.error = Some(format!("Cannot read {}: {e}", self.dir.display())),
        }
    }

    fn go(&mut self, dir: PathBuf) {
        self.dir = dir;
        self.refresh();
    }

    /// Shows the browser as a window; call every frame while it is open.
    pub fn show(&mut self, ctx: &Context) -> BrowseResult {
        let mut result = BrowseResult::Pending;
        let title = match self.mode {
            BrowseMode::Open => "Open file",
            BrowseMode::Save => "Save file",
        };
        egui::Window::new(title).collapsible(false).default_size([520.0, 420.0]).show(ctx, |ui| {
            result = self.contents(ui);
        });
        result
    }

    fn contents(&mut self, ui: &mut Ui) -> BrowseResult {
        let mut result = BrowseResult::Pending;
        ui.horizontal(|ui| {
            if crate::widgets::icon_button(ui, self.dir.parent().is_some(), "Up", "Parent folder")
                .clicked()
                && let Some(p) = self.dir.parent()
            {
                let p = p.to_path_buf();
                self.go(p);
            }
            let label = ui.label("Folder");
            let r = ui
                .add(egui::TextEdit::singleline(&mut self.dir_text).desired_width(360.0))
                .labelled_by(label.id);
            if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                let p = PathBuf::from(self.dir_text.trim());
                self.go(p);
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let mut go_to = None;
        egui::ScrollArea::vertical().id_salt("file-browser").max_height(260.0).show(ui, |ui| {
            for e in &self.entries {
                let text = if e.is_dir { format!("{}/", e.name) } else { e.name.clone() };
                let r =
                    ui.add(egui::Button::selectable(!e.is_dir && self.file_name == e.name, text));
                if r.clicked() {
                    if e.is_dir {
                        go_to = Some(self.dir.join(&e.name));
                    } else {
                        self.file_name = e.name.clone();
                    }
                }
                if r.double_clicked() && !e.is_dir {
                    result = BrowseResult::Chosen(self.dir.join(&e.name));
                }
            }
        });
        if let Some(d) = go_to {
            self.go(d);
        }
        ui.separator();
        ui.horizontal(|ui| {
            let label = ui.label("File name");
            let r = ui
                .add(egui::TextEdit::singleline(&mut self.file_name).desired_width(300.0))
                .labelled_by(label.id);
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let verb = if self.mode == BrowseMode::Open { "Open" } else { "Save" };
            let ok = !self.file_name.trim().is_empty();
            if (ui.add_enabled(ok, egui::Button::new(verb)).clicked() || (enter && ok))
                && result == BrowseResult::Pending
            {
                result = BrowseResult::Chosen(self.dir.join(self.file_name.trim()));
            }
            if ui.button("Cancel").clicked() {
                result = BrowseResult::Cancelled;
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_dirs_first_and_filters_extensions() {
        let dir = std::env::temp_dir().join(format!("pentimento-fb-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.ORA"), b"x").unwrap();
        std::fs::write(dir.join("a.png"), b"x").unwrap();
        std::fs::write(dir.join("notes.txt"), b"x").unwrap();
        let b = FileBrowser::new(
            BrowseMode::Open,
            BrowsePurpose::OpenDocument,
            &dir,
            "",
            &["ora", "png"],
        );
        let names: Vec<_> = b.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["sub", "a.png", "b.ORA"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
