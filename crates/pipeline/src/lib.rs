//! Generation requests to images: txt2img, img2img, inpaint (area, padding, blur, masked
//! content, paste-back), batches, progress and cancel hooks, A1111 infotext.

pub mod conditioning;
pub mod convert;
pub mod generate;
pub mod geometry;
pub mod infotext;
pub mod inpaint;
pub mod record;
pub mod request;
