//! One sync exchange, after admission and decoding: walk and bound every pushed byte,
//! check the daily cap, check access to every pushed report, merge through the gate and
//! commit, then answer with acknowledgements, the feed since the device's cursor, and the
//! notices and reference lists when the device's copies are stale.

use std::collections::HashMap;
use std::sync::Arc;

use app::domain::access::{Ownership, Viewer};
use app::domain::{ReportId, Timestamp};
use app::intake;
use app::merge::{changes_for, merge_push_checked};
use app::protocol::{MAX_FEED_PER_RESPONSE, MAX_NOTICES, ReportAck, SyncRequest, SyncResponse};
use serde::Serialize;

use super::commit::{ApplyError, Committer, Job};
use crate::clock::SharedClock;
use crate::db::{DbError, Sender, Store, Writer, following_key};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Why an exchange stored nothing and answered no feed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Some reports were refused (reason per report).
    #[error("{} report(s) refused", .0.len())]
    Reports(Vec<(ReportId, String)>),
    /// The request as a whole is over a cap (operations, inflated bytes).
    #[error("{0}")]
    TooLarge(String),
    /// The person has sent more than their daily cap.
    #[error("{0}")]
    OverDailyCap(String),
    /// The database failed; retry later.
    #[error(transparent)]
    Unavailable(DbError),
    /// The server could not do the work now (contended documents, a failed task); retry
    /// later.
    #[error("busy")]
    Busy,
}

impl From<ApplyError> for Refusal {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Refused(list) => Self::Reports(list),
            ApplyError::Db(e) => Self::Unavailable(e),
            ApplyError::Contended | ApplyError::Internal => Self::Busy,
        }
    }
}

/// The server's side of sync.
#[derive(Debug, Clone)]
pub struct Exchange {
    store: Store,
    committer: Committer,
    clock: SharedClock,
    bytes_per_day: usize,
}

impl Exchange {
    /// Sync against `store`, writing through `committer`, at most `bytes_per_day` of changes
    /// stored per person per day.
    #[must_use]
    pub fn new(store: Store, committer: Committer, clock: SharedClock, bytes_per_day: usize) -> Self {
        Self {
            store,
            committer,
            clock,
            bytes_per_day,
        }
    }

    /// Runs one exchange for `viewer`, signed in as `session`; `body_len` is the request
    /// body's size (the decoding budget follows it). All or nothing: if any report is
    /// refused, nothing is stored and every refused report is named with its reason.
    #[tracing::instrument(name = "sync.exchange", skip_all, fields(device, reports, stored, feed))]
    pub async fn run(
        &self,
        viewer: Viewer,
        session: uuid::Uuid,
        request: SyncRequest,
        body_len: usize,
    ) -> Result<SyncResponse, Refusal> {
        // Read marks are ids of notifications: a few, and short.
        if request.notices_read.len() > MAX_NOTICES || request.notices_read.iter().any(|id| id.len() > 128) {
            return Err(Refusal::TooLarge(format!(
                "at most {MAX_NOTICES} notifications marked read in one request, each id at most 128 bytes"
            )));
        }
        // Every report's Automerge bytes are walked and bounded before anything else reads
        // them, against one budget for the whole request.
        let mut budget = intake::Budget::for_body(body_len);
        let mut over: Vec<(ReportId, String)> = Vec::new();
        for push in &request.reports {
            match intake::check_push(push, &mut budget) {
                Ok(_) => {}
                Err(e) if e.is_request_cap() => {
                    return Err(Refusal::TooLarge(e.to_string()));
                }
                Err(e) => over.push((push.id, e.to_string())),
            }
        }
        if !over.is_empty() {
            return Err(Refusal::Reports(over));
        }
        // What a person may send per day, counted in stored changes.
        let uploaded: usize = request
            .reports
            .iter()
            .flat_map(|p| p.changes.iter().chain(p.document.as_ref()))
            .map(|b| b.0.len())
            .sum();
        let now = self.clock.now();
        if uploaded > 0 {
            let today = self
                .store
                .received_bytes_since(viewer.user_id, Timestamp(now.0 - DAY_MS))
                .await
                .map_err(Refusal::Unavailable)?;
            let total = usize::try_from(today)
                .unwrap_or(usize::MAX)
                .saturating_add(uploaded);
            let cap = self.bytes_per_day;
            if total > cap {
                return Err(Refusal::OverDailyCap(format!(
                    "you have sent {} MiB of changes in the last 24 hours; the limit is {} MiB per person (a daily cap on what one account stores). Your reports stay on this device and are sent later",
                    total / (1024 * 1024),
                    cap / (1024 * 1024)
                )));
            }
        }
        let span = tracing::Span::current();
        span.record("device", tracing::field::display(request.device_id));
        span.record("reports", request.reports.len());
        // What this device follows is kept under its user, so a device id alone opens nothing.
        let device = following_key(viewer.user_id, request.device_id);
        let order: Vec<ReportId> = request.reports.iter().map(|p| p.id).collect();
        let owners = if order.is_empty() {
            HashMap::new()
        } else {
            self.store.ownership(&order).await.map_err(Refusal::Unavailable)?
        };
        let forbidden: Vec<(ReportId, String)> = request
            .reports
            .iter()
            .filter_map(|push| {
                let of = *owners.get(&push.id)?;
                let writes = !push.changes.is_empty() || push.document.is_some();
                if !viewer.can_read(of) {
                    Some((push.id, "you may not read or change this report".to_owned()))
                } else if !viewer.can_hold(of) {
                    Some((
                        push.id,
                        "this injury report holds privacy-sensitive details: only its reporter and the team's supervisors keep it on a device; read it on the incident page"
                            .to_owned(),
                    ))
                } else if writes && !viewer.can_write(of) {
                    Some((
                        push.id,
                        "you may read this report but not change it; your changes are kept on this device"
                            .to_owned(),
                    ))
                } else {
                    None
                }
            })
            .collect();
        if !forbidden.is_empty() {
            return Err(Refusal::Reports(forbidden));
        }
        let viewer = Arc::new(viewer);
        let jobs: Vec<Job> = request
            .reports
            .into_iter()
            .map(|push| {
                let push = Arc::new(push);
                let viewer = Arc::clone(&viewer);
                Job {
                    id: push.id,
                    merge: Arc::new(move |stored| merge_push_checked(stored, &push, now, &viewer)),
                }
            })
            .collect();
        let writer = Writer {
            from: Some(Sender {
                user: viewer.user_id,
                session: Some(session),
            }),
            device: Some(device),
            owner: Ownership {
                owner: Some(viewer.user_id),
                team: viewer.home_team(),
                sensitive: false,
            },
        };
        let applied = if jobs.is_empty() {
            Vec::new()
        } else {
            self.committer.apply(writer, jobs, now).await?
        };
        span.record("stored", applied.iter().filter(|a| a.changed).count());

        let (feed, cursor, more) = feed(&self.store, &viewer, device, request.since, now).await?;
        span.record("feed", feed.len());
        let mut acks: HashMap<ReportId, ReportAck> = applied.into_iter().map(|a| (a.id, a.ack)).collect();
        // Supervisors' unread notifications and everyone's response plans ride along when
        // they differ from what the device holds, so the device lists them offline.
        let mut response = SyncResponse::new(
            order.iter().filter_map(|id| acks.remove(id)).collect(),
            feed,
            u64::try_from(cursor).unwrap_or(0),
            more,
        );
        // Alerts the person marked read on the device, also offline: taken before the list
        // is read, so the answer no longer holds them. Ids not theirs, or read already,
        // change nothing.
        for id in &request.notices_read {
            self.store
                .mark_notice_read(viewer.user_id, id, now)
                .await
                .map_err(Refusal::Unavailable)?;
        }
        // The list is read only when its mark moved since the device's copy, or what the
        // person may read changed (their role or teams are part of the version); each alert
        // is listed only while they may still read its report. Someone who no longer acts on
        // reports has their device's list emptied.
        let version = if viewer.role.acts_on_reports() {
            let mark = self
                .store
                .notice_mark(viewer.user_id)
                .await
                .map_err(Refusal::Unavailable)?;
            Some(format!("{mark}.{}", access_tag(&viewer)))
        } else {
            None
        };
        if request.notices_seen.as_deref() != version.as_deref() {
            let mut notices = match version {
                Some(_) => self
                    .store
                    .notices(viewer.user_id)
                    .await
                    .map_err(Refusal::Unavailable)?,
                None => Vec::new(),
            };
            if !notices.is_empty() {
                let ids: Vec<ReportId> = notices.iter().map(|n| n.report_id).collect();
                let owners = self.store.ownership(&ids).await.map_err(Refusal::Unavailable)?;
                notices.retain(|n| owners.get(&n.report_id).is_some_and(|of| viewer.can_read(*of)));
            }
            response.notices = Some(notices);
            response.notices_version = Some(version.unwrap_or_else(|| "none".to_owned()));
        }
        let version = self.store.lists_version().await.map_err(Refusal::Unavailable)?;
        if request.lists_seen.as_deref() != Some(version.as_str()) {
            response.plans = Some(self.store.plans().await.map_err(Refusal::Unavailable)?);
            response.categories = Some(self.store.categories().await.map_err(Refusal::Unavailable)?);
            response.lists_version = Some(version);
        }
        // The person's actions, so "My actions" shows offline. Read every round (one
        // indexed query) and versioned by their content, so the list travels only when an
        // action, its report's title or what the person may read changed.
        let actions = self
            .store
            .my_actions(&viewer)
            .await
            .map_err(Refusal::Unavailable)?;
        let version = content_version(&actions);
        if request.actions_seen.as_deref() != Some(version.as_str()) {
            response.actions = Some(actions);
            response.actions_version = Some(version);
        }
        // What happened in drill runs on the phone (after the reports: a refused request
        // stores none of it, and the phone sends it again).
        response.events_refused = self
            .store
            .record_events(viewer.user_id, &viewer.teams, &request.drill_events, now)
            .await
            .map_err(Refusal::Unavailable)?;
        // The team's drills to come, with their scenarios, so a drill starts offline:
        // versioned by content, like the actions.
        let drills = self
            .store
            .drill_briefs(&viewer.teams)
            .await
            .map_err(Refusal::Unavailable)?;
        let version = content_version(&drills);
        if request.drills_seen.as_deref() != Some(version.as_str()) {
            response.drills = Some(drills);
            response.drills_version = Some(version);
        }
        Ok(response)
    }
}

/// A version of a list that changes exactly when the list does: a hash of its JSON.
fn content_version(list: &impl Serialize) -> String {
    use sha2::Digest;
    let json = serde_json::to_vec(list).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(&json)[..8])
}

/// A short tag of what `viewer` may read (role and teams): it changes when they do.
fn access_tag(viewer: &Viewer) -> String {
    use sha2::Digest;
    let mut teams = viewer.teams.clone();
    teams.sort_unstable();
    let mut hash = sha2::Sha256::new();
    hash.update(viewer.role.key());
    for team in teams {
        hash.update(team.as_bytes());
    }
    hex::encode(&hash.finalize()[..4])
}

/// The feed part of an answer: followed reports changed after `since` that the device
/// does not already hold (it holds what this request just acknowledged), and the next
/// cursor.
async fn feed(
    store: &Store,
    viewer: &Viewer,
    device: uuid::Uuid,
    since: Option<u64>,
    now: Timestamp,
) -> Result<(Vec<ReportAck>, i64, bool), Refusal> {
    let until = store.current_seq().await.map_err(Refusal::Unavailable)?;
    let since = since.and_then(|s| i64::try_from(s).ok()).unwrap_or(0);
    // A cursor from the future means the database was restored from a backup: start over.
    let since = if since > until { 0 } else { since };
    let mut rows = store
        .feed(device, since, until, MAX_FEED_PER_RESPONSE)
        .await
        .map_err(Refusal::Unavailable)?;
    let more = rows.len() == MAX_FEED_PER_RESPONSE;
    let cursor = if more {
        rows.last().map_or(until, |r| r.seq)
    } else {
        until
    };
    // Followed once is not readable forever (a person can change teams or roles, a report
    // can become an injury report): what they may no longer hold is left out, and the
    // cursor moves past it.
    if !rows.is_empty() {
        let ids: Vec<ReportId> = rows.iter().map(|r| r.id).collect();
        let owners = store.ownership(&ids).await.map_err(Refusal::Unavailable)?;
        rows.retain(|r| owners.get(&r.id).is_some_and(|of| viewer.can_hold(*of)));
    }
    if rows.is_empty() {
        return Ok((Vec::new(), cursor, more));
    }
    let computed = store
        .cpu()
        .run(move || {
            rows.into_iter()
                .map(|r| {
                    let known: Vec<String> = r.known_heads.split_whitespace().map(str::to_owned).collect();
                    (r.id, changes_for(&r.doc, &known))
                })
                .collect::<Vec<_>>()
        })
        .await
        .ok_or(Refusal::Busy)?;
    let mut entries = Vec::new();
    let mut known = Vec::new();
    for (id, result) in computed {
        match result {
            Ok((heads, changes)) if !changes.is_empty() => {
                known.push((id, heads.join(" ")));
                entries.push(ReportAck { id, heads, changes });
            }
            Ok(_) => {}
            Err(e) => store
                .quarantine(id, &e.to_string(), now)
                .await
                .map_err(Refusal::Unavailable)?,
        }
    }
    store
        .mark_known(device, &known)
        .await
        .map_err(Refusal::Unavailable)?;
    Ok((entries, cursor, more))
}
