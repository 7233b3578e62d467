//! Report documents kept on the device, in `localStorage`.
//!
//! Layout (all JSON):
//! * `muster.v1.device`: this browser's device id, the reporter's name and the feed cursor.
//! * `muster.v1.index`: the ids of every local report.
//! * `muster.v1.report.<id>`: the saved Automerge document, its heads, the heads the
//!   server has acknowledged, the sync state, and a summary for the outbox.
//!
//! Nothing is ever deleted here before the server has acknowledged it. A write that fails
//! (storage full) leaves the previous value in place and reports the failure.
//!
//! The sync engine and the outbox read the reports through one [`Indexed`] storage, which
//! keeps every report's state in memory and reads a document only when it is sent. A
//! write from another tab (the `storage` event) makes it read everything again.

use app::domain::ReportId;
use app::field::OutboxEntry;
use std::cell::RefCell;

use app::sync::client::{INDEX_KEY, Indexed, report_key};
pub use app::sync::client::{StoredReport, Summary, same_heads};
use gloo_storage::{LocalStorage, Storage};
use serde::{Deserialize, Serialize};

const DEVICE_KEY: &str = "muster.v1.device";
const ME_KEY: &str = "muster.v1.me";
const NOTICES_KEY: &str = "muster.v1.notices";
const PLANS_KEY: &str = "muster.v1.plans";
const CATEGORIES_KEY: &str = "muster.v1.categories";
const VERSIONS_KEY: &str = "muster.v1.versions";
const ACTIONS_KEY: &str = "muster.v1.actions";
const ACTIONS_VERSION_KEY: &str = "muster.v1.actions_version";
const NOTICES_READ_KEY: &str = "muster.v1.notices_read";
const DRILLS_KEY: &str = "muster.v1.drills";
const DRILLS_VERSION_KEY: &str = "muster.v1.drills_version";
const DRILL_EVENTS_KEY: &str = "muster.v1.drill_events";
const DRILL_RUN_KEY: &str = "muster.v1.drill_run";

/// This browser's identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Stable device id, sent with every sync.
    pub device_id: uuid::Uuid,
    /// The name last used on the report form.
    pub reporter_name: String,
    /// The server's feed cursor up to which this device has stored everything.
    #[serde(default)]
    pub cursor: Option<u64>,
}

pub use app::sync::client::StoreError;

/// Writes `value` under `key`; a full storage is said so in words.
fn put<T: Serialize + ?Sized>(key: impl AsRef<str>, value: &T) -> Result<(), StoreError> {
    LocalStorage::set(key, value).map_err(|e| {
        let text = e.to_string();
        if text.contains("Quota") || text.contains("quota") {
            StoreError("this device's storage is full".to_owned())
        } else {
            StoreError(text)
        }
    })
}

/// This device's record, created on first use.
pub fn device() -> Result<DeviceRecord, StoreError> {
    if let Ok(record) = LocalStorage::get::<DeviceRecord>(DEVICE_KEY) {
        return Ok(record);
    }
    let record = DeviceRecord {
        device_id: uuid::Uuid::now_v7(),
        reporter_name: String::new(),
        cursor: None,
    };
    put(DEVICE_KEY, &record)?;
    Ok(record)
}

/// Remembers the reporter's name for the next form.
pub fn remember_reporter(name: &str) -> Result<(), StoreError> {
    let mut record = device()?;
    if record.reporter_name != name {
        record.reporter_name = name.to_owned();
        put(DEVICE_KEY, &record)?;
    }
    Ok(())
}

/// Records the feed cursor, after everything up to it has been stored.
pub fn set_cursor(cursor: u64) -> Result<(), StoreError> {
    let mut record = device()?;
    if record.cursor != Some(cursor) {
        record.cursor = Some(cursor);
        put(DEVICE_KEY, &record)?;
    }
    Ok(())
}

/// Every local report id, oldest first.
#[must_use]
pub fn index() -> Vec<ReportId> {
    LocalStorage::get(INDEX_KEY).unwrap_or_default()
}

/// One local report.
#[must_use]
pub fn load(id: ReportId) -> Option<StoredReport> {
    LocalStorage::get(report_key(id)).ok()
}

thread_local! {
    static LOCAL: RefCell<Indexed<Browser>> = RefCell::new(Indexed::new(Browser));
}

/// Runs `f` with this device's storage as the sync engine reads it (indexed). Never held
/// across an `await`: each step of a sync pass borrows it anew.
pub fn with_local<T>(f: impl FnOnce(&mut Indexed<Browser>) -> T) -> T {
    LOCAL.with(|local| f(&mut local.borrow_mut()))
}

/// Another tab changed this site's storage: read every report again on next use.
pub fn forget_index() {
    LOCAL.with(|local| local.borrow().forget());
}

/// Saves a report through the index, adding it if new.
pub fn save(id: ReportId, report: &StoredReport) -> Result<(), StoreError> {
    with_local(|local| app::sync::client::Local::save(local, id, report))
}

/// Writes a report to `localStorage`, adding it to the stored id list if new. The report
/// is written before the list, so a failure can never leave the list naming a report
/// that is not there.
fn write(id: ReportId, report: &StoredReport) -> Result<(), StoreError> {
    put(report_key(id), report)?;
    let mut ids = index();
    if !ids.contains(&id) {
        ids.push(id);
        put(INDEX_KEY, &ids)?;
    }
    Ok(())
}

/// The outbox, newest report first.
#[must_use]
pub fn outbox() -> Vec<OutboxEntry> {
    let mut entries = with_local(|local| app::sync::client::outbox(local));
    entries.sort_by_key(|e| std::cmp::Reverse(e.id));
    entries
}

/// Who this device is signed in as, if it knows.
#[must_use]
pub fn me() -> Option<app::protocol::Me> {
    LocalStorage::get(ME_KEY).ok()
}

/// Remembers who this device is signed in as.
pub fn set_me(me: &app::protocol::Me) -> Result<(), StoreError> {
    put(ME_KEY, me)?;
    Ok(())
}

/// The notifications the last sync that changed them brought (none if it never brought any).
#[must_use]
pub fn notices() -> Vec<app::protocol::Notice> {
    LocalStorage::get(NOTICES_KEY).unwrap_or_default()
}

/// Replaces the stored notifications with the server's current list, of `version`.
pub fn set_notices(notices: &[app::protocol::Notice], version: &str) -> Result<(), StoreError> {
    put(NOTICES_KEY, notices)?;
    set_version(0, version)
}

/// Notifications marked read here and not yet told to the server.
fn notices_read() -> Vec<String> {
    LocalStorage::get(NOTICES_READ_KEY).unwrap_or_default()
}

/// Marks a notification read: off the stored list at once, and queued for the next sync.
pub fn mark_read(id: &str) -> Result<(), StoreError> {
    let mut read = notices_read();
    if !read.iter().any(|r| r == id) {
        read.push(id.to_owned());
    }
    put(NOTICES_READ_KEY, &read)?;
    let mut notices = notices();
    notices.retain(|n| n.id != id);
    put(NOTICES_KEY, &notices)?;
    Ok(())
}

/// The versions of the lists the device holds: (notifications, plans and categories).
fn versions() -> (Option<String>, Option<String>) {
    LocalStorage::get(VERSIONS_KEY).unwrap_or_default()
}

fn set_version(which: usize, version: &str) -> Result<(), StoreError> {
    let mut versions = versions();
    let slot = if which == 0 {
        &mut versions.0
    } else {
        &mut versions.1
    };
    *slot = Some(version.to_owned());
    put(VERSIONS_KEY, &versions)?;
    Ok(())
}

/// The version of the notifications held (to send as `notices_seen`).
#[must_use]
pub fn notices_version() -> Option<String> {
    versions().0
}

/// The version of the reference lists held (to send as `lists_seen`).
#[must_use]
pub fn lists_version() -> Option<String> {
    versions().1
}

/// The response plans the last sync brought (none if it never brought any).
#[must_use]
pub fn plans() -> Vec<app::domain::Plan> {
    LocalStorage::get(PLANS_KEY).unwrap_or_default()
}

/// The report categories the last sync brought (none if it never brought any).
#[must_use]
pub fn categories() -> Vec<app::domain::CategoryDef> {
    LocalStorage::get(CATEGORIES_KEY).unwrap_or_default()
}

/// Replaces the stored reference lists (response plans and categories), of `version`.
pub fn set_lists(
    plans: &[app::domain::Plan],
    categories: &[app::domain::CategoryDef],
    version: &str,
) -> Result<(), StoreError> {
    put(PLANS_KEY, plans)?;
    put(CATEGORIES_KEY, categories)?;
    set_version(1, version)
}

/// The person's actions the last sync that changed them brought (none if it never
/// brought any).
#[must_use]
pub fn actions() -> Option<Vec<app::protocol::ActionRow>> {
    LocalStorage::get(ACTIONS_KEY).ok()
}

/// The version of the actions held (to send as `actions_seen`).
fn actions_version() -> Option<String> {
    LocalStorage::get(ACTIONS_VERSION_KEY).ok()
}

/// Replaces the stored actions with the server's current list, of `version`: the list
/// first, so the version stored never claims a list that is not.
pub fn set_actions(actions: &[app::protocol::ActionRow], version: &str) -> Result<(), StoreError> {
    put(ACTIONS_KEY, actions)?;
    put(ACTIONS_VERSION_KEY, version)?;
    Ok(())
}

/// The team's drills the last sync that changed them brought.
#[must_use]
pub fn drills() -> Vec<app::domain::drill::DrillBrief> {
    LocalStorage::get(DRILLS_KEY).unwrap_or_default()
}

/// Replaces the stored drills with the server's current list, of `version` (the list
/// first, as for the actions).
pub fn set_drills(drills: &[app::domain::drill::DrillBrief], version: &str) -> Result<(), StoreError> {
    put(DRILLS_KEY, drills)?;
    put(DRILLS_VERSION_KEY, version)
}

/// Drill events not yet taken by the server, oldest first.
#[must_use]
pub fn drill_events() -> Vec<app::domain::DrillEvent> {
    LocalStorage::get(DRILL_EVENTS_KEY).unwrap_or_default()
}

/// Keeps a drill event until the server takes it.
pub fn record_event(event: app::domain::DrillEvent) -> Result<(), StoreError> {
    let mut events = drill_events();
    events.push(event);
    put(DRILL_EVENTS_KEY, &events)
}

/// The drill running on this phone, if one is.
#[must_use]
pub fn active_run() -> Option<app::field::ActiveRun> {
    LocalStorage::get(DRILL_RUN_KEY).ok()
}

/// Records the drill running on this phone (none: it ended).
pub fn set_active_run(run: Option<&app::field::ActiveRun>) -> Result<(), StoreError> {
    match run {
        Some(run) => put(DRILL_RUN_KEY, run),
        None => {
            LocalStorage::delete(DRILL_RUN_KEY);
            Ok(())
        }
    }
}

/// Removes everything this app keeps in this browser's local storage: reports, the
/// device record (id, cursor), who is signed in.
pub fn wipe() {
    LocalStorage::clear();
    forget_index();
}

/// This browser's `localStorage`, as the sync engine's storage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Browser;

impl app::sync::client::Local for Browser {
    fn ids(&self) -> Vec<ReportId> {
        index()
    }

    fn load(&self, id: ReportId) -> Option<StoredReport> {
        load(id)
    }

    fn save(&mut self, id: ReportId, report: &StoredReport) -> Result<(), StoreError> {
        write(id, report)
    }

    fn cursor(&self) -> Option<u64> {
        device().ok().and_then(|d| d.cursor)
    }

    fn set_cursor(&mut self, cursor: u64) -> Result<(), StoreError> {
        set_cursor(cursor)
    }

    fn versions(&self) -> (Option<String>, Option<String>) {
        versions()
    }

    fn set_notices(&mut self, notices: &[app::protocol::Notice], version: &str) -> Result<(), StoreError> {
        set_notices(notices, version)
    }

    fn set_lists(
        &mut self,
        plans: &[app::domain::Plan],
        categories: &[app::domain::CategoryDef],
        version: &str,
    ) -> Result<(), StoreError> {
        set_lists(plans, categories, version)
    }

    fn actions_seen(&self) -> Option<String> {
        actions_version()
    }

    fn mark_read(&mut self, id: &str) -> Result<(), StoreError> {
        mark_read(id)
    }

    fn notices_read(&self) -> Vec<String> {
        notices_read()
    }

    fn told_read(&mut self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut read = notices_read();
        read.retain(|id| !ids.contains(id));
        put(NOTICES_READ_KEY, &read)
    }

    fn set_actions(&mut self, actions: &[app::protocol::ActionRow], version: &str) -> Result<(), StoreError> {
        set_actions(actions, version)
    }

    fn drills_seen(&self) -> Option<String> {
        LocalStorage::get(DRILLS_VERSION_KEY).ok()
    }

    fn set_drills(
        &mut self,
        drills: &[app::domain::drill::DrillBrief],
        version: &str,
    ) -> Result<(), StoreError> {
        set_drills(drills, version)
    }

    fn record_event(&mut self, event: app::domain::DrillEvent) -> Result<(), StoreError> {
        record_event(event)
    }

    fn drill_events(&self) -> Vec<app::domain::DrillEvent> {
        drill_events()
    }

    fn told_events(&mut self, ids: &[uuid::Uuid]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut events = drill_events();
        events.retain(|e| !ids.contains(&e.id));
        put(DRILL_EVENTS_KEY, &events)
    }
}
