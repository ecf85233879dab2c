//! Generation requests to images: txt2img, img2img, inpaint, batches, infotext.
