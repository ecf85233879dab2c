//! Generation requests to images: txt2img, img2img, inpaint (area, padding, blur, masked
//! content, paste-back), batches, progress and cancel hooks, A1111 infotext.

pub mod convert;
pub mod geometry;
pub mod request;
