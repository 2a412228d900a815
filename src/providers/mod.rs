//! Providers: the platforms drplan drives (sim, local, exec plugins).

pub mod sim;
