//! egui widgets and panels of the Pentimento editor.
