//! Sync, the device's side: [`client`] is the engine every device runs (the browser and the
//! test harness's simulated devices), free of IO. The server's side is `server::sync`; the
//! wire format is [`crate::protocol`].

pub mod client;
