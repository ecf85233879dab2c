//! Sigma schedules, k-diffusion samplers and a torch-compatible CPU noise generator.
