//! Generation queue and worker thread with a model cache and id-tagged events.
