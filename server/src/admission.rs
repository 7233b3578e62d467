//! Who gets a sync slot, and when, in this order:
//!
//! 1. the session is checked before a byte of the body is read (no session: 401 at once);
//! 2. each person runs at most [`SYNCS_PER_PERSON`] syncs at once (more: 429, retried);
//! 3. the body's declared size is reserved from a memory budget for bodies
//!    ([`BODY_BUDGET`]), so a burst of devices cannot buffer more than that;
//! 4. the body is read, abandoned (408) when it pauses longer than the idle time, and the
//!    whole exchange may not outlast [`REQUEST_LIMIT`];
//! 5. only then is one of the server's merge slots taken.
//!
//! So a client that trickles its body holds its own person's count and its share of the
//! body budget, never a merge slot, and a request without a session holds nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use app::protocol::{ErrorCode, MAX_REQUEST_BYTES};

use crate::error::ApiError;

/// Most syncs one person may have running at once (a phone and a desk tab, say). More
/// are answered 429 and retried by the device.
pub const SYNCS_PER_PERSON: usize = 2;

/// Most bytes of changes one person may have stored per 24 hours: a report's changes are
/// a few KB, so this is thousands of reports a day, and it bounds what one account can
/// make the server store.
pub const BYTES_PER_PERSON_PER_DAY: usize = 64 * 1024 * 1024;

/// Most bytes of unfinished photo uploads one person may have at once: a few dozen
/// phone photos (each at most `app::domain::photo::MAX_PHOTO_BYTES`).
pub const PENDING_PHOTO_BYTES_PER_PERSON: usize = 64 * 1024 * 1024;

/// How long a sync body may pause between two pieces before it is abandoned (408).
pub const BODY_IDLE: Duration = Duration::from_secs(30);

/// The longest a whole sync may take (the longest deadline a device gives one, see
/// `app::connectivity::request_deadline_ms`).
pub const REQUEST_LIMIT: Duration = Duration::from_secs(10 * 60);

/// Bytes of sync bodies buffered at once, in KiB: each request reserves its declared
/// length (or the most a body may be, if it declares none) before reading it.
pub const BODY_BUDGET_KIB: u32 = 256 * 1024;
/// [`BODY_BUDGET_KIB`] in bytes, for the docs.
pub const BODY_BUDGET: usize = BODY_BUDGET_KIB as usize * 1024;

/// The sync slots of one server process.
#[derive(Debug)]
pub struct Syncs {
    slots: Arc<Semaphore>,
    budget: Arc<Semaphore>,
    running: Mutex<HashMap<Uuid, usize>>,
    /// How long a body may pause (see [`BODY_IDLE`]).
    pub body_idle: Duration,
    /// Most bytes of changes one person may have stored per 24 hours.
    pub bytes_per_day: usize,
    /// Most bytes of unfinished photo uploads one person may have at once.
    pub pending_photo_bytes: usize,
}

impl Syncs {
    /// `slots` syncs at once, bodies abandoned after pausing `body_idle`, at most
    /// `bytes_per_day` stored per person per day.
    #[must_use]
    pub fn new(slots: usize, body_idle: Duration, bytes_per_day: usize, pending_photo_bytes: usize) -> Self {
        Self {
            bytes_per_day,
            pending_photo_bytes,
            slots: Arc::new(Semaphore::new(slots)),
            budget: Arc::new(Semaphore::new(BODY_BUDGET_KIB as usize)),
            running: Mutex::new(HashMap::new()),
            body_idle,
        }
    }

    /// Admits `person`'s sync with a body of `declared` bytes (if it says): counts it
    /// against their [`SYNCS_PER_PERSON`] (429 beyond) and reserves its size from the body
    /// budget. Read the body next, then take a merge slot with [`Admitted::slot`].
    pub async fn admit(self: &Arc<Self>, person: Uuid, declared: Option<u64>) -> Result<Admitted, ApiError> {
        {
            let mut running = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mine = running.entry(person).or_default();
            if *mine >= SYNCS_PER_PERSON {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::Unavailable,
                    "another sync of yours is still running; this one will be retried",
                ));
            }
            *mine += 1;
        }
        let mine = Mine {
            syncs: Arc::clone(self),
            person,
        };
        let most = MAX_REQUEST_BYTES as u64;
        let kib = declared.unwrap_or(most).min(most).div_ceil(1024).max(1);
        let buffered = Arc::clone(&self.budget)
            .acquire_many_owned(u32::try_from(kib).unwrap_or(BODY_BUDGET_KIB))
            .await
            .map_err(|_| shutting_down())?;
        Ok(Admitted {
            syncs: Arc::clone(self),
            buffered,
            mine,
        })
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "the server is shutting down",
    )
}

/// A sync admitted for its person, its body's size reserved.
#[derive(Debug)]
pub struct Admitted {
    syncs: Arc<Syncs>,
    buffered: OwnedSemaphorePermit,
    mine: Mine,
}

impl Admitted {
    /// Waits for one of the server's merge slots.
    pub async fn slot(self) -> Result<Slot, ApiError> {
        let permit = Arc::clone(&self.syncs.slots)
            .acquire_owned()
            .await
            .map_err(|_| shutting_down())?;
        Ok(Slot {
            _permit: permit,
            _buffered: self.buffered,
            _mine: self.mine,
        })
    }
}

/// A running sync: frees its slot and its person's count when dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _buffered: OwnedSemaphorePermit,
    _mine: Mine,
}

#[derive(Debug)]
struct Mine {
    syncs: Arc<Syncs>,
    person: Uuid,
}

impl Drop for Mine {
    fn drop(&mut self) {
        let mut running = self
            .syncs
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = running.get_mut(&self.person) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.person);
            }
        }
    }
}

/// Reads a sync body: at most [`MAX_REQUEST_BYTES`] (413), abandoned when it pauses
/// longer than `idle` (408).
pub async fn read_body(body: Body, idle: Duration) -> Result<Bytes, ApiError> {
    let body = tower_http::timeout::TimeoutBody::new(idle, body);
    match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
            while let Some(error) = cause {
                if error.is::<LengthLimitError>() {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorCode::TooLarge,
                        format!(
                            "the request is larger than {MAX_REQUEST_BYTES} bytes; send fewer reports at a time"
                        ),
                    ));
                }
                if error.is::<tower_http::timeout::TimeoutError>() {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        ErrorCode::Unavailable,
                        "the request arrived too slowly and was abandoned; it will be retried",
                    ));
                }
                cause = error.source();
            }
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
                format!("the request body could not be read: {e}"),
            ))
        }
    }
}
