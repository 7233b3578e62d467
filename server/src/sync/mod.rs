//! The server's side of sync, whole: the exchange ([`Exchange`]: bounded decoding, caps,
//! access checks, the gate, feed, notices and lists) and the one writer of documents
//! ([`Committer`]: merges on the CPU pool, retries, group commit). `http` only admits,
//! decodes and encodes; `db` only stores.

mod commit;
mod exchange;

pub use commit::{Applied, ApplyError, Committer, Job, MergeFn};
pub use exchange::{Exchange, Refusal};
