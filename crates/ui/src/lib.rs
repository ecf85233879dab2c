//! egui widgets and panels of the Pentimento editor.
//!
//! Everything here is document-agnostic: panels show rows the app builds and return actions; the
//! tools turn canvas pointer input into [`tools::ToolAction`]s. The app (`crates/app/src/editor`)
//! is the one place where these meet the document.

pub mod canvas;
pub mod colour;
pub mod file_browser;
pub mod generation;
pub mod layers;
pub mod textures;
pub mod toasts;
pub mod tools;
pub mod tray;
pub mod view;
pub mod widgets;
