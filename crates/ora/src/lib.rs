//! OpenRaster (.ora) project files: read and write layered documents with our records.
