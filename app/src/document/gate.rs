//! The sync gate: every operation of every uploaded change is checked against the write
//! policy ([`crate::domain::policy`]) on the document as it stood before that change (the
//! stored document plus the earlier changes of the same upload), never on the net result.
//!
//! Each operation is resolved to its path through the object it names: objects are
//! mapped to paths by walking the stored document, and each accepted change adds the
//! objects it makes. An operation on an object the policy does not know is refused, and
//! so is making an object where one already stands (a rival list, a re-created map), so
//! no object can be smuggled in beside the one everybody reads. The workflow state the
//! rules depend on is the settled status before the change, and concurrent changes are
//! each checked on that same stored state, so no ordering or op-counter trick gets a
//! value past the gate. Changes are applied in batches, up to and including each one that
//! writes the status, so the status is read again only when it may have moved.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

use super::{DocError, REPORT_KEY, ReportDoc, actor_owner, changes_in, hash_hex};
use crate::domain::access::Viewer;
use crate::domain::policy::{self, CLOCK_SKEW_MS, Keys, Kind, MERGED_RIVALS, Rule, Shape};
use crate::domain::{PhotoRef, PlanTick, Status, TimelineEntry, Timestamp, Witness};

/// What an accepted upload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gated {
    /// Changes new to the document.
    pub new: usize,
    /// Whether any accepted change wrote under `injury` or set the category to injury:
    /// the report's history then holds privacy-sensitive details, whatever its final state.
    pub sensitive: bool,
    /// Each new change's hash (hex) and encoded size, for the server's receipts.
    pub received: Vec<(String, usize)>,
}

/// What a device is told when it pushes changes under someone else's actor.
pub const FOREIGN_ACTOR: &str = "these changes were not made under your sign-in (another person's, or from before signing in); they were not stored";

/// An object of the document: its policy path, and its id as changes name it.
type ObjKey = (u64, ActorId);

/// Every object the policy knows in a document, by id, with its path.
struct Objects {
    paths: HashMap<ObjKey, String>,
    /// How many objects stand under each key of each object (`None`: the root); more
    /// than one are rivals.
    at: HashMap<(Option<ObjKey>, String), usize>,
}

impl Objects {
    fn of(doc: &AutoCommit) -> Self {
        let mut objects = Self {
            paths: HashMap::new(),
            at: HashMap::new(),
        };
        objects.walk(doc, &ROOT, None, "");
        objects
    }

    fn walk(&mut self, doc: &AutoCommit, obj: &ObjId, me: Option<ObjKey>, path: &str) {
        for key in doc.keys(obj) {
            let Some(rule) = policy::rule(path, &key) else {
                continue;
            };
            let child = Rule::child_path(path, &key, rule.keys);
            for (value, id) in doc.get_all(obj, key.as_str()).unwrap_or_default() {
                if let (Value::Object(kind), ObjId::Id(counter, actor, _)) = (&value, &id) {
                    let made: ObjKey = (*counter, actor.clone());
                    self.add(made.clone(), me.clone(), &key, &child);
                    if *kind == ObjType::Map {
                        self.walk(doc, &id, Some(made), &child);
                    }
                }
            }
        }
    }

    fn add(&mut self, id: ObjKey, parent: Option<ObjKey>, key: &str, path: &str) {
        *self.at.entry((parent, key.to_owned())).or_default() += 1;
        self.paths.insert(id, path.to_owned());
    }

    /// How many objects stand under `key` of `parent`.
    fn standing(&self, parent: &ObjectId, key: &str) -> usize {
        self.at
            .get(&(obj_key(parent), key.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn path(&self, obj: &ObjectId) -> Option<&str> {
        match obj_key(obj) {
            None => Some(""),
            Some(id) => self.paths.get(&id).map(String::as_str),
        }
    }
}

fn obj_key(obj: &ObjectId) -> Option<ObjKey> {
    match obj {
        ObjectId::Root => None,
        ObjectId::Id(id) => Some((id.counter(), id.actor().clone())),
    }
}

/// The status the rules read: the settled status, or `None` before the report exists.
fn status_of(doc: &AutoCommit) -> Option<Status> {
    let report = match doc.get(ROOT, REPORT_KEY) {
        Ok(Some((Value::Object(ObjType::Map), id))) => id,
        _ => return None,
    };
    super::snapshot::status_now(doc, &report)
}

/// One refusal: which change, which path, which rule.
fn refuse(change: &Change, path: &str, rule: impl std::fmt::Display) -> DocError {
    let hash = hash_hex(&change.hash());
    DocError::Forbidden(format!(
        "change {} writes `{}`: {rule}",
        &hash[..8],
        if path.is_empty() {
            "(the document root)"
        } else {
            path
        }
    ))
}

impl ReportDoc {
    /// Applies uploaded changes from `pusher`, each checked op by op against the write
    /// policy first. All or nothing: on any refusal the caller discards this document.
    ///
    /// Changes already in the document are skipped; the rest are taken in an order in
    /// which each one's dependencies come first, and refused if some dependency is neither
    /// in the document nor in the upload.
    pub fn apply_gated(
        &mut self,
        changes: Vec<Change>,
        pusher: &Viewer,
        now: Timestamp,
    ) -> Result<Gated, DocError> {
        self.apply_gated_from(changes, None, pusher, now)
    }

    /// [`ReportDoc::apply_gated`] for changes that are all of `peer`, a whole document
    /// a device sent (see [`ReportDoc::document_changes`]): if this document is empty and
    /// every change passes without the status moving on the way, `peer` is taken as it
    /// is.
    pub fn apply_gated_from(
        &mut self,
        changes: Vec<Change>,
        peer: Option<AutoCommit>,
        pusher: &Viewer,
        now: Timestamp,
    ) -> Result<Gated, DocError> {
        let mut seen = HashSet::new();
        let mut waiting: Vec<Change> = changes
            .into_iter()
            .filter(|c| seen.insert(c.hash()) && !self.has_change(c.hash()))
            .collect();
        let mut gated = Gated {
            new: waiting.len(),
            sensitive: false,
            received: waiting
                .iter()
                .map(|c| (hash_hex(&c.hash()), c.raw_bytes().len()))
                .collect(),
        };
        if waiting.is_empty() {
            return Ok(gated);
        }
        let mut objects = Objects::of(&self.doc);
        let mut status = status_of(&self.doc);
        let mut batch: Vec<Change> = Vec::new();
        let mut taken: HashSet<ChangeHash> = HashSet::new();
        while !waiting.is_empty() {
            let ready = waiting
                .iter()
                .position(|c| c.deps().iter().all(|d| taken.contains(d) || self.has_change(*d)));
            let Some(ready) = ready else {
                let missing = waiting[0]
                    .deps()
                    .iter()
                    .find(|d| !taken.contains(*d) && !self.has_change(**d))
                    .copied()
                    .unwrap_or_else(|| waiting[0].hash());
                return Err(DocError::MissingDependencies {
                    hash: hash_hex(&missing),
                });
            };
            let change = waiting.swap_remove(ready);
            if actor_owner(change.actor_id()).is_none_or(|(user, _)| user != pusher.user_id) {
                return Err(DocError::Forbidden(FOREIGN_ACTOR.to_owned()));
            }
            let moves = check_change(&change, &mut objects, status, pusher, now, &mut gated.sensitive)?;
            taken.insert(change.hash());
            batch.push(change);
            if status.is_none() && moves == Some(Status::Reported) {
                // Filed: the report now exists, Reported, as this change made it (no
                // need to apply it yet to know that).
                status = moves;
            } else if let Some(to) = moves {
                let last = batch.last().map(|c| c.hash());
                self.doc.apply_changes(std::mem::take(&mut batch))?;
                status = status_of(&self.doc);
                // Reviewed needs the review, as the change leaves it.
                if let Some(hash) = last {
                    let response = self.guarded()?.response;
                    if let Err(reason) = response.ready_for(to) {
                        return Err(DocError::Forbidden(format!(
                            "change {}: {reason}",
                            &hash_hex(&hash)[..8]
                        )));
                    }
                }
            }
        }
        match peer {
            // A new report sent whole, every change checked and none applied yet: take
            // the document as loaded rather than applying its changes one by one again.
            Some(peer) if self.doc.is_empty() && batch.len() == changes_in(&peer) => {
                let actor = self.doc.get_actor().clone();
                self.doc = peer.with_actor(actor);
            }
            _ if !batch.is_empty() => self.doc.apply_changes(batch)?,
            _ => {}
        }
        Ok(gated)
    }
}

/// Checks every operation of `change` on the state before it; returns the status it
/// moves the report to, if it writes one.
fn check_change(
    change: &Change,
    objects: &mut Objects,
    status: Option<Status>,
    pusher: &Viewer,
    now: Timestamp,
    sensitive: &mut bool,
) -> Result<Option<Status>, DocError> {
    // The intake walk has checked every actor index this decoding looks up; a panic here
    // is still caught (it unwinds: nothing has been applied).
    let decoded = catch_unwind(AssertUnwindSafe(|| change.decode()))
        .map_err(|_| refuse(change, "", "the change could not be decoded"))?;
    let role = pusher.role;
    // A report that does not exist yet is being created: Reported.
    let state = status.unwrap_or(Status::Reported);
    let start = change.start_op().get();
    let actor = change.actor_id().clone();
    // Objects this change makes: what they hold is written with them.
    let mut made: HashSet<ObjKey> = HashSet::new();
    let mut moves = None;
    for (i, op) in decoded.operations.iter().enumerate() {
        let Some(parent) = objects.path(&op.obj).map(str::to_owned) else {
            return Err(refuse(change, "?", "an object the write policy does not know"));
        };
        let parent_made = match &op.obj {
            ObjectId::Root => status.is_none(),
            ObjectId::Id(id) => made.contains(&(id.counter(), id.actor().clone())),
        };
        let id: ObjKey = (start + i as u64, actor.clone());
        match &op.key {
            Key::Map(key) => {
                let Some(rule) = policy::rule(&parent, key) else {
                    let path = if parent.is_empty() {
                        key.to_string()
                    } else {
                        format!("{parent}.{key}")
                    };
                    return Err(refuse(
                        change,
                        &path,
                        "not a field of a report (unknown keys are refused)",
                    ));
                };
                let path = Rule::child_path(&parent, key, rule.keys);
                let shown = if rule.keys == Keys::Id {
                    format!("{parent}.{key}")
                } else {
                    path.clone()
                };
                if (parent == "report.injury" && writes_text(&op.action))
                    || (path == "report.category" && is_injury(&op.action))
                {
                    *sensitive = true;
                }
                let allowed = |who: policy::Who| {
                    if rule.immutable {
                        parent_made
                    } else {
                        who.allows(role, state)
                    }
                };
                let kind_refusal = if rule.immutable {
                    "written only with the report (or action) that holds it, never after".to_owned()
                } else {
                    format!(
                        "{}s may not change it while the report is {}",
                        role.label(),
                        state.label()
                    )
                };
                match &op.action {
                    OpType::Make(made_kind) => {
                        let fits = matches!(
                            (rule.shape, made_kind),
                            (Shape::Map, ObjType::Map) | (Shape::List(_), ObjType::List)
                        );
                        if !fits {
                            return Err(refuse(change, &shown, "not an object of that kind"));
                        }
                        if !allowed(rule.set) {
                            return Err(refuse(change, &shown, kind_refusal));
                        }
                        if objects.standing(&op.obj, key) > 0 && !MERGED_RIVALS.contains(&path.as_str()) {
                            return Err(refuse(
                                change,
                                &shown,
                                "one already stands there; a second (rival) object is refused",
                            ));
                        }
                        objects.add(id.clone(), obj_key(&op.obj), key, &path);
                        made.insert(id);
                    }
                    OpType::Put(value) => {
                        let Shape::Scalar(kind) = rule.shape else {
                            return Err(refuse(change, &shown, "an object, not a value"));
                        };
                        // Whoever files a report writes its first status (Reported,
                        // as `check_move` requires); after that the row decides.
                        let filing = kind == Kind::Status && parent_made;
                        if !filing && !allowed(rule.set) {
                            return Err(refuse(change, &shown, kind_refusal));
                        }
                        fits(kind, value, pusher, now).map_err(|why| refuse(change, &shown, why))?;
                        if kind == Kind::Status {
                            let to = value
                                .as_str()
                                .and_then(Status::from_key)
                                .unwrap_or(Status::Reported);
                            check_move(status, parent_made, to).map_err(|why| refuse(change, &shown, why))?;
                            if status != Some(to) {
                                moves = Some(to);
                            }
                        }
                    }
                    OpType::Delete => {
                        if rule.immutable || !rule.delete.allows(role, state) {
                            return Err(refuse(change, &shown, kind_refusal));
                        }
                    }
                    OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_) => {
                        return Err(refuse(
                            change,
                            &shown,
                            "counters and marks are not part of a report",
                        ));
                    }
                }
            }
            Key::Seq(_) => {
                let list = policy::object_rule(&parent);
                let Some((rule, Shape::List(kind))) = list.map(|r| (r, r.shape)) else {
                    return Err(refuse(change, &parent, "not a list"));
                };
                let entry = format!("{parent}[]");
                match &op.action {
                    OpType::Put(value) => {
                        // Overwriting an entry replaces it: both rights are needed.
                        let may =
                            rule.insert.allows(role, state) && (op.insert || rule.delete.allows(role, state));
                        if !may {
                            let what = if op.insert { "add to" } else { "change entries of" };
                            return Err(refuse(
                                change,
                                &entry,
                                format!(
                                    "{}s may not {what} it while the report is {}{}",
                                    role.label(),
                                    state.label(),
                                    if rule.delete == policy::Who::NOBODY {
                                        " (append-only)"
                                    } else {
                                        ""
                                    }
                                ),
                            ));
                        }
                        fits(kind, value, pusher, now).map_err(|why| refuse(change, &entry, why))?;
                    }
                    OpType::Delete => {
                        if !rule.delete.allows(role, state) {
                            return Err(refuse(
                                change,
                                &entry,
                                if rule.delete == policy::Who::NOBODY {
                                    "append-only: nobody removes an entry".to_owned()
                                } else {
                                    format!(
                                        "{}s may not remove entries while the report is {}",
                                        role.label(),
                                        state.label()
                                    )
                                },
                            ));
                        }
                    }
                    _ => {
                        return Err(refuse(
                            change,
                            &entry,
                            "lists hold plain entries, not objects, counters or marks",
                        ));
                    }
                }
            }
        }
    }
    Ok(moves)
}

/// Whether an operation writes some text (a detail, not the empty map made with every
/// new report).
fn writes_text(action: &OpType) -> bool {
    matches!(action, OpType::Put(ScalarValue::Str(s)) if !s.trim().is_empty())
}

/// Whether an operation sets the category to injury.
fn is_injury(action: &OpType) -> bool {
    matches!(action, OpType::Put(ScalarValue::Str(s)) if s.as_str() == crate::domain::INJURY_CATEGORY)
}

/// The workflow's rule for one status write, from the settled status before it.
fn check_move(from: Option<Status>, creating: bool, to: Status) -> Result<(), String> {
    match from {
        None if creating && to == Status::Reported => Ok(()),
        None => Err(format!("a new report starts as \"{}\"", Status::Reported.label())),
        Some(from) if from.can_move_to(to) => Ok(()),
        Some(from) => Err(format!(
            "an incident cannot move from {} to {}",
            from.label(),
            to.label()
        )),
    }
}

/// Whether `value` is what a path of `kind` holds; signed entries must name `pusher` and
/// a time no later than `now` plus the allowed skew.
fn fits(kind: Kind, value: &ScalarValue, pusher: &Viewer, now: Timestamp) -> Result<(), String> {
    let text = value.as_str();
    let ok = match kind {
        Kind::Text => text.is_some(),
        Kind::Int => matches!(value, ScalarValue::Int(_) | ScalarValue::Uint(_)),
        Kind::IntOrNull => matches!(
            value,
            ScalarValue::Int(_) | ScalarValue::Uint(_) | ScalarValue::Null
        ),
        Kind::TextOrNull => text.is_some() || matches!(value, ScalarValue::Null),
        Kind::Bytes => matches!(value, ScalarValue::Bytes(_)),
        Kind::Status => text.and_then(Status::from_key).is_some(),
        Kind::Photo => text.is_some_and(|t| serde_json::from_str::<PhotoRef>(t).is_ok()),
        Kind::Witness => text.is_some_and(|t| serde_json::from_str::<Witness>(t).is_ok()),
        Kind::Update => {
            let entry: TimelineEntry = text
                .and_then(|t| serde_json::from_str(t).ok())
                .ok_or("expected a timeline update {id, at, author, author_id, text}")?;
            return signed(entry.author_id, entry.at, pusher, now);
        }
        Kind::Tick => {
            let tick: PlanTick = text
                .and_then(|t| serde_json::from_str(t).ok())
                .ok_or("expected a ticked step {step, role, text, at, by, by_id}")?;
            return signed(tick.by_id, tick.at, pusher, now);
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {}", kind_words(kind)))
    }
}

fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text",
        Kind::Int => "a whole number",
        Kind::IntOrNull => "a whole number or nothing",
        Kind::TextOrNull => "text or nothing",
        Kind::Bytes => "an id",
        Kind::Status => "a status",
        Kind::Photo => "a photo {sha256, size, width, height, at}",
        Kind::Witness => "a witness {name, contact, statement}",
        Kind::Update | Kind::Tick => "a signed entry",
    }
}

/// A new entry must name the person pushing it and not be dated in the future.
fn signed(by: Option<uuid::Uuid>, at: Timestamp, pusher: &Viewer, now: Timestamp) -> Result<(), String> {
    if by != Some(pusher.user_id) {
        return Err(format!(
            "a new entry must be signed by the person sending it ({})",
            pusher.name
        ));
    }
    if at.0 > now.0.saturating_add(CLOCK_SKEW_MS) {
        return Err("a new entry is dated in the future of the server's clock".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::actor_for;
    use crate::domain::access::Role;
    use crate::domain::{Action, ActionKind, Report, ReportId};
    use crate::merge::merge_push_checked;
    use crate::protocol::{Bytes, ReportPush};

    const NOW: Timestamp = Timestamp(1_764_000_000_000);

    fn person(n: u128, role: Role, name: &str) -> Viewer {
        Viewer {
            user_id: uuid::Uuid::from_u128(n),
            name: name.to_owned(),
            login: name.to_lowercase(),
            role,
            teams: vec![],
        }
    }

    fn ana() -> Viewer {
        person(1, Role::Field, "Ana Field")
    }

    fn sam() -> Viewer {
        person(2, Role::Supervisor, "Sam Lead")
    }

    fn actor(of: &Viewer) -> ActorId {
        actor_for(of.user_id, uuid::Uuid::from_u128(99), [1, 2, 3, 4])
    }

    /// Ana's new report, stored through the gate.
    fn filed() -> (Report, Vec<u8>) {
        let mut report = Report::blank(ReportId::new_v7(NOW, [3; 10]), NOW, "Ana Field");
        report.title = "Spill".into();
        report.location.place = "Dock".into();
        let mut doc = ReportDoc::create(&report, actor(&ana()), NOW).unwrap();
        let push = push_of(report.id, &mut doc, &[]);
        let merged = merge_push_checked(None, &push, NOW, &ana()).unwrap();
        (report, merged.doc)
    }

    fn push_of(id: ReportId, doc: &mut ReportDoc, since: &[ChangeHash]) -> ReportPush {
        ReportPush {
            id,
            heads: doc.heads().iter().map(hash_hex).collect(),
            changes: doc.changes_since(since).into_iter().map(Bytes).collect(),
            document: None,
        }
    }

    /// `who` edits the stored report as `edit` says and pushes it.
    fn edit(stored: &[u8], who: &Viewer, edit: impl FnOnce(&mut Report)) -> Result<Vec<u8>, String> {
        let mut doc = ReportDoc::load(stored, actor(who)).unwrap();
        let before = doc.heads();
        let base = doc.read().unwrap();
        let mut next = base.clone();
        edit(&mut next);
        doc.edit(&base, &next, NOW).unwrap();
        let push = push_of(base.id, &mut doc, &before);
        merge_push_checked(Some(stored), &push, NOW, who)
            .map(|m| m.doc)
            .map_err(|e| e.to_string())
    }

    /// `who` writes raw Automerge operations (not `ReportDoc`'s helpers) on the stored
    /// report, as a stock Automerge client would, and pushes them.
    fn raw(
        stored: &[u8],
        who: &Viewer,
        write: impl FnOnce(&mut AutoCommit, &ObjId),
    ) -> Result<crate::merge::Merged, String> {
        let mut doc = AutoCommit::load(stored).unwrap().with_actor(actor(who));
        let before = doc.get_heads();
        let report = match doc.get(ROOT, REPORT_KEY).unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => panic!("no report"),
        };
        write(&mut doc, &report);
        doc.commit();
        let push = ReportPush {
            id: ReportDoc::load(stored, actor(who)).unwrap().read().unwrap().id,
            heads: doc.get_heads().iter().map(hash_hex).collect(),
            changes: doc
                .get_changes(&before)
                .iter()
                .map(|c| Bytes(c.raw_bytes().to_vec()))
                .collect(),
            document: None,
        };
        merge_push_checked(Some(stored), &push, NOW, who).map_err(|e| e.to_string())
    }

    fn refused(result: Result<crate::merge::Merged, String>, path: &str) -> String {
        let reason = result.expect_err("refused");
        assert!(reason.contains(&format!("writes `{path}`")), "{reason}");
        reason
    }

    /// Ana's report, triaged by Sam, with one update of his.
    fn triaged() -> Vec<u8> {
        let (_, stored) = filed();
        edit(&stored, &sam(), |r| {
            r.status = Status::Triaged;
            r.severity = crate::domain::Severity::Critical;
            r.timeline.push(TimelineEntry {
                id: uuid::Uuid::from_u128(50),
                at: NOW,
                author: "Sam Lead".into(),
                author_id: Some(sam().user_id),
                text: "Area closed off".into(),
                audience: crate::domain::Audience::Team,
            });
        })
        .unwrap()
    }

    fn put(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: impl Into<ScalarValue>) {
        use automerge::transaction::Transactable;
        doc.put(obj, key, value).unwrap();
    }

    fn list(doc: &AutoCommit, report: &ObjId, key: &str) -> ObjId {
        match doc.get(report, key).unwrap() {
            Some((Value::Object(ObjType::List), id)) => id,
            _ => panic!("no {key}"),
        }
    }

    #[test]
    fn the_reporter_cannot_lower_the_severity_after_triage() {
        let stored = triaged();
        let reason = refused(
            raw(&stored, &ana(), |d, r| put(d, r, "severity", "minor")),
            "report.severity",
        );
        assert!(reason.contains("Triaged"), "{reason}");
        // Before triage she may.
        let (_, fresh) = filed();
        raw(&fresh, &ana(), |d, r| put(d, r, "severity", "minor")).unwrap();
        // And the supervisor may, after.
        raw(&stored, &sam(), |d, r| put(d, r, "severity", "minor")).unwrap();
    }

    #[test]
    fn timeline_entries_are_never_deleted_or_forged() {
        use automerge::transaction::Transactable;
        let stored = triaged();
        for who in [ana(), sam()] {
            refused(
                raw(&stored, &who, |d, r| {
                    let timeline = list(d, r, "timeline");
                    d.delete(&timeline, 0).unwrap();
                }),
                "report.timeline[]",
            );
            refused(
                raw(&stored, &who, |d, r| {
                    let timeline = list(d, r, "timeline");
                    d.put(&timeline, 0, "{}").unwrap();
                }),
                "report.timeline[]",
            );
        }
        // An update signed with the supervisor's id, pushed by the reporter.
        let forged = |by: uuid::Uuid, at: i64| {
            serde_json::json!({"id": uuid::Uuid::from_u128(77), "at": at, "author": "Sam Lead",
                "author_id": by.to_string(), "text": "All clear"})
            .to_string()
        };
        let reason = refused(
            raw(&stored, &ana(), |d, r| {
                let timeline = list(d, r, "timeline");
                d.insert(&timeline, 1, forged(sam().user_id, NOW.0)).unwrap();
            }),
            "report.timeline[]",
        );
        assert!(reason.contains("signed by the person sending it"), "{reason}");
        // Her own, signed and dated now, is taken; one dated tomorrow is not.
        raw(&stored, &ana(), |d, r| {
            let timeline = list(d, r, "timeline");
            d.insert(&timeline, 1, forged(ana().user_id, NOW.0)).unwrap();
        })
        .unwrap();
        let reason = refused(
            raw(&stored, &ana(), |d, r| {
                let timeline = list(d, r, "timeline");
                d.insert(&timeline, 1, forged(ana().user_id, NOW.0 + 86_400_000))
                    .unwrap();
            }),
            "report.timeline[]",
        );
        assert!(reason.contains("future"), "{reason}");
    }

    #[test]
    fn reported_at_id_and_reporter_never_change() {
        let stored = triaged();
        for who in [ana(), sam(), person(3, Role::Admin, "Ada Admin")] {
            refused(
                raw(&stored, &who, |d, r| {
                    put(d, r, "reported_at", ScalarValue::Int(1_577_836_800_000))
                }),
                "report.reported_at",
            );
            refused(
                raw(&stored, &who, |d, r| put(d, r, "reporter", "Bo")),
                "report.reporter",
            );
        }
        refused(
            raw(&stored, &ana(), |d, _| {
                put(d, &ROOT, "schema_version", ScalarValue::Uint(2))
            }),
            "schema_version",
        );
    }

    #[test]
    fn a_closed_report_is_not_moved_back_by_concurrent_status_writes() {
        // Sam walks the report to Closed; a change of his made concurrently, back when
        // it was Triaged (its dependencies), writes Investigating twice and Triaged.
        let (_, stored) = filed();
        let triaged = edit(&stored, &sam(), |r| r.status = Status::Triaged).unwrap();
        let mut closed = triaged.clone();
        for status in [Status::Investigating, Status::Resolved] {
            closed = edit(&closed, &sam(), |r| r.status = status).unwrap();
        }
        closed = edit(&closed, &sam(), |r| {
            r.response.review.summary = "Done".into();
            r.response.review.lessons = "Keep it dry".into();
            r.status = Status::Reviewed;
        })
        .unwrap();
        closed = edit(&closed, &sam(), |r| r.status = Status::Closed).unwrap();
        // A second supervisor's phone, offline since triage.
        let kim = person(4, Role::Supervisor, "Kim Lead");
        let mut old = AutoCommit::load(&triaged).unwrap().with_actor(actor(&kim));
        let before = old.get_heads();
        let report = match old.get(ROOT, REPORT_KEY).unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => unreachable!(),
        };
        for status in ["investigating", "triaged", "investigating"] {
            put(&mut old, &report, "status", status);
            old.commit();
        }
        let id = ReportDoc::load(&closed, actor(&kim)).unwrap().read().unwrap().id;
        let push = ReportPush {
            id,
            heads: old.get_heads().iter().map(hash_hex).collect(),
            changes: old
                .get_changes(&before)
                .iter()
                .map(|c| Bytes(c.raw_bytes().to_vec()))
                .collect(),
            document: None,
        };
        let reason = merge_push_checked(Some(&closed), &push, NOW, &kim)
            .unwrap_err()
            .to_string();
        assert!(reason.contains("from Closed to Triaged"), "{reason}");
        // The field employee may not write the status at all.
        refused(
            raw(&closed, &ana(), |d, r| put(d, r, "status", "investigating")),
            "report.status",
        );
        // Reopening from Closed is one allowed step.
        let reopened = raw(&closed, &sam(), |d, r| put(d, r, "status", "investigating")).unwrap();
        assert_eq!(reopened.report.status, Status::Investigating);
    }

    #[test]
    fn reviewed_needs_the_review_and_steps_are_not_skipped() {
        let (_, stored) = filed();
        let reason = refused(
            raw(&stored, &sam(), |d, r| put(d, r, "status", "closed")),
            "report.status",
        );
        assert!(reason.contains("from Reported to Closed"), "{reason}");
        let mut resolved = stored;
        for status in [Status::Triaged, Status::Investigating, Status::Resolved] {
            resolved = edit(&resolved, &sam(), |r| r.status = status).unwrap();
        }
        let reason = raw(&resolved, &sam(), |d, r| put(d, r, "status", "reviewed")).unwrap_err();
        assert!(reason.contains("review"), "{reason}");
    }

    #[test]
    fn an_injury_written_then_recategorised_stays_sensitive() {
        let mut report = Report::blank(ReportId::new_v7(NOW, [4; 10]), NOW, "Ana Field");
        report.title = "Cut hand".into();
        report.location.place = "Press shop".into();
        report.category = crate::domain::Category::new(crate::domain::INJURY_CATEGORY);
        report.injury.injury = "Deep cut, left palm".into();
        let mut doc = ReportDoc::create(&report, actor(&ana()), NOW).unwrap();
        let mut plain = report.clone();
        plain.category = crate::domain::Category::new("other");
        plain.injury = crate::domain::Injury::default();
        doc.edit(&report, &plain, NOW).unwrap();
        let push = push_of(report.id, &mut doc, &[]);
        let merged = merge_push_checked(None, &push, NOW, &ana()).unwrap();
        assert!(!merged.report.category.is_injury() && merged.report.injury.is_empty());
        assert!(merged.sensitive, "the history holds the injury details");
        // An ordinary report is not.
        let (_, stored) = filed();
        assert!(
            !raw(&stored, &ana(), |d, r| put(d, r, "title", "Spill, mopped"))
                .unwrap()
                .sensitive
        );
    }

    #[test]
    fn unknown_keys_rival_objects_counters_and_marks_are_refused() {
        use automerge::transaction::Transactable;
        let stored = triaged();
        refused(
            raw(&stored, &sam(), |d, r| put(d, r, "nickname", "x")),
            "report.nickname",
        );
        refused(raw(&stored, &sam(), |d, _| put(d, &ROOT, "extra", "x")), "extra");
        refused(
            raw(&stored, &sam(), |d, r| {
                d.put_object(r, "location", ObjType::Map).unwrap();
            }),
            "report.location",
        );
        refused(
            raw(&stored, &sam(), |d, r| {
                d.put_object(r, "timeline", ObjType::List).unwrap();
            }),
            "report.timeline",
        );
        refused(
            raw(&stored, &sam(), |d, _| {
                d.put_object(ROOT, "report", ObjType::Map).unwrap();
            }),
            "report",
        );
        refused(
            raw(&stored, &sam(), |d, r| {
                d.put(r, "occurred_at", ScalarValue::Counter(1.into())).unwrap();
                d.increment(r, "occurred_at", 5).unwrap();
            }),
            "report.occurred_at",
        );
        // An object nested in a list, and an op on an object nobody can reach.
        refused(
            raw(&stored, &sam(), |d, r| {
                let people = list(d, r, "people_involved");
                d.insert_object(&people, 0, ObjType::Map).unwrap();
            }),
            "report.people_involved[]",
        );
        // Wrong kinds of value.
        refused(
            raw(&stored, &sam(), |d, r| put(d, r, "title", 5_i64)),
            "report.title",
        );
        refused(
            raw(&stored, &sam(), |d, r| put(d, r, "status", "lost")),
            "report.status",
        );
    }

    #[test]
    fn the_abort_found_by_fuzzing_is_refused_before_automerge_applies_it() {
        // The finding with its checksum mended (so the intake walk passes it): its
        // marks on a map are refused by the policy before anything is applied.
        let finding =
            include_bytes!("../../../fuzz/corpus/apply_changes/regression-apply-changes-abort-1669810f");
        let change = &crate::merge::split_changes(finding)[0];
        let mut input = &change[9..];
        let len = leb128::read::unsigned(&mut input).unwrap();
        let data = &input[..usize::try_from(len).unwrap()];
        let mended = crate::intake::tests::chunk(change[8], data);
        crate::intake::check_change(&mended).unwrap();
        let mut fuzzer = crate::merge::fuzz_pusher();
        fuzzer.user_id = uuid::Uuid::from_u128(1);
        let decoded = Change::from_bytes(mended.clone()).unwrap();
        // Under its own actor (not any user's) it is refused as foreign; as its author
        // it is refused for its marks.
        let push = ReportPush {
            id: crate::merge::FUZZ_REPORT,
            heads: vec![hash_hex(&decoded.hash())],
            changes: vec![Bytes(mended)],
            document: None,
        };
        let reason = merge_push_checked(None, &push, NOW, &fuzzer)
            .unwrap_err()
            .to_string();
        assert!(reason.contains("not made under your sign-in"), "{reason}");
        let mut doc = ReportDoc::empty(actor(&sam()));
        let mut owner = fuzzer.clone();
        owner.user_id = actor_owner(decoded.actor_id()).map_or(uuid::Uuid::nil(), |(u, _)| u);
        let reason = doc
            .apply_gated(vec![decoded], &owner, NOW)
            .map_err(|e| e.to_string());
        assert!(reason.is_err(), "{reason:?}");
    }

    #[test]
    fn a_supervisor_triages_assigns_and_adds_actions() {
        let (_, stored) = filed();
        let stored = edit(&stored, &sam(), |r| r.status = Status::Triaged).unwrap();
        let stored = edit(&stored, &sam(), |r| {
            r.response.actions.push(Action::new(
                uuid::Uuid::from_u128(7),
                ActionKind::Corrective,
                "Dry the floor",
                "",
                None,
            ));
        })
        .unwrap();
        edit(&stored, &sam(), |r| {
            r.response.assignee = sam().user_id.to_string()
        })
        .unwrap();
    }

    /// One step of the property test.
    #[derive(Clone, Debug)]
    enum Step {
        /// Ana writes something (see [`ana_writes`]).
        Ana(u8),
        /// Sam writes something (see [`sam_writes`]).
        Sam(u8),
        /// Someone's device pushes everything it has not delivered, in a random order.
        Push(bool, u64),
        /// Someone's device takes in the stored report.
        Pull(bool),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..8).prop_map(Step::Ana),
            (0u8..3).prop_map(Step::Sam),
            (any::<bool>(), any::<u64>()).prop_map(|(who, seed)| Step::Push(who, seed)),
            any::<bool>().prop_map(Step::Pull),
        ]
    }

    /// What Ana's op `n` is: whether the policy allows it always, only while the stored
    /// report is Reported, or never.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Right {
        Always,
        WhileReported,
        Never,
    }

    /// Ana's raw write `n` on her copy; returns what the policy says of it.
    fn ana_writes(doc: &mut AutoCommit, n: u8, serial: u64) -> Right {
        use automerge::transaction::Transactable;
        let report = match doc.get(ROOT, REPORT_KEY).unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => unreachable!(),
        };
        let timeline = match doc.get(&report, "timeline").unwrap() {
            Some((Value::Object(ObjType::List), id)) => id,
            _ => unreachable!(),
        };
        let update = |by: &Viewer| {
            serde_json::json!({"id": uuid::Uuid::from_u128(u128::from(serial)), "at": NOW.0,
                "author": by.name, "author_id": by.user_id.to_string(), "text": format!("note {serial}")})
            .to_string()
        };
        match n {
            0 => {
                doc.put(&report, "title", format!("Spill, take {serial}"))
                    .unwrap();
                Right::WhileReported
            }
            1 => {
                let severity = if serial.is_multiple_of(2) {
                    "minor"
                } else {
                    "moderate"
                };
                doc.put(&report, "severity", severity).unwrap();
                Right::WhileReported
            }
            2 => {
                let end = doc.length(&timeline);
                doc.insert(&timeline, end, update(&ana())).unwrap();
                Right::Always
            }
            3 => {
                let end = doc.length(&timeline);
                doc.insert(&timeline, end, update(&sam())).unwrap();
                Right::Never
            }
            4 if doc.length(&timeline) > 0 => {
                doc.delete(&timeline, 0).unwrap();
                Right::Never
            }
            5 => {
                doc.put(
                    &report,
                    "reported_at",
                    ScalarValue::Int(1_577_836_800_000 + i64::try_from(serial).unwrap_or(0)),
                )
                .unwrap();
                Right::Never
            }
            6 => {
                doc.put(&report, format!("extra_{serial}"), "x").unwrap();
                Right::Never
            }
            _ => {
                doc.put(
                    &report,
                    "status",
                    if serial.is_multiple_of(2) {
                        "triaged"
                    } else {
                        "closed"
                    },
                )
                .unwrap();
                Right::Never
            }
        }
    }

    /// Sam's raw write `n` on his copy (always allowed: he is the only one moving the
    /// status, so his copy knows where it stands).
    fn sam_writes(doc: &mut AutoCommit, n: u8, serial: u64) {
        use automerge::transaction::Transactable;
        let report = match doc.get(ROOT, REPORT_KEY).unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => unreachable!(),
        };
        match n {
            0 => {
                let status = status_of(doc).unwrap();
                if let Some(next) = status
                    .next_choices()
                    .into_iter()
                    .find(|s| *s > status && *s <= Status::Resolved)
                {
                    doc.put(&report, "status", next.as_str()).unwrap();
                }
            }
            1 => {
                let severity = if serial.is_multiple_of(2) {
                    "critical"
                } else {
                    "major"
                };
                doc.put(&report, "severity", severity).unwrap();
            }
            _ => {
                let timeline = match doc.get(&report, "timeline").unwrap() {
                    Some((Value::Object(ObjType::List), id)) => id,
                    _ => unreachable!(),
                };
                let end = doc.length(&timeline);
                let entry = serde_json::json!({"id": uuid::Uuid::from_u128(u128::from(serial) << 64), "at": NOW.0,
                    "author": "Sam Lead", "author_id": sam().user_id.to_string(), "text": "checked"});
                doc.insert(&timeline, end, entry.to_string()).unwrap();
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Random writes from the reporter's actor, interleaved with a supervisor's and
        /// delivered in random orders: a push is stored exactly when every op in it is
        /// allowed on the stored state, so the stored report never holds a value the
        /// policy forbade, and every allowed edit is kept.
        #[test]
        fn interleaved_pushes_are_stored_exactly_when_the_policy_allows_them(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            let (original, mut stored) = filed();
            let mut devices = [
                (AutoCommit::load(&stored).unwrap().with_actor(actor(&ana())), Vec::<Right>::new()),
                (AutoCommit::load(&stored).unwrap().with_actor(actor(&sam())), Vec::<Right>::new()),
            ];
            let mut delivered: [Vec<ChangeHash>; 2] = [
                AutoCommit::load(&stored).unwrap().get_heads(),
                AutoCommit::load(&stored).unwrap().get_heads(),
            ];
            let mut serial = 0u64;
            for step in steps {
                serial += 1;
                match step {
                    Step::Ana(n) => {
                        let right = ana_writes(&mut devices[0].0, n, serial);
                        // A write of the value already there makes no change.
                        if devices[0].0.commit().is_some() {
                            devices[0].1.push(right);
                        }
                    }
                    Step::Sam(n) => {
                        sam_writes(&mut devices[1].0, n, serial);
                        devices[1].0.commit();
                        devices[1].1.push(Right::Always);
                    }
                    Step::Pull(who) => {
                        let i = usize::from(who);
                        let mut theirs = AutoCommit::load(&stored).unwrap();
                        devices[i].0.merge(&mut theirs).unwrap();
                    }
                    Step::Push(who, seed) => {
                        let i = usize::from(who);
                        let person = if who { sam() } else { ana() };
                        let mut changes: Vec<Bytes> = devices[i]
                            .0
                            .get_changes(&delivered[i])
                            .iter()
                            .map(|c| Bytes(c.raw_bytes().to_vec()))
                            .collect();
                        if changes.is_empty() {
                            continue;
                        }
                        // A random order (the gate puts dependencies first itself).
                        let mut keyed: Vec<(u64, Bytes)> = changes
                            .drain(..)
                            .zip(1u64..)
                            .map(|(c, k)| (seed.wrapping_mul(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(29), c))
                            .collect();
                        keyed.sort_by_key(|(key, _)| *key);
                        changes = keyed.into_iter().map(|(_, c)| c).collect();
                        let before = ReportDoc::load(&stored, actor(&sam())).unwrap().read().unwrap();
                        let expected = devices[i].1.iter().all(|r| match r {
                            Right::Always => true,
                            Right::WhileReported => before.status == Status::Reported,
                            Right::Never => false,
                        });
                        let push = ReportPush {
                            id: original.id,
                            heads: devices[i].0.get_heads().iter().map(hash_hex).collect(),
                            changes,
                            document: None,
                        };
                        match merge_push_checked(Some(&stored), &push, NOW, &person) {
                            Ok(merged) => {
                                proptest::prop_assert!(expected, "stored a push the policy forbids: {:?}", devices[i].1);
                                if merged.changed {
                                    stored = merged.doc;
                                }
                                let after = merged.report;
                                // Immutable fields, and every update there was, stand.
                                proptest::prop_assert_eq!(after.reported_at, original.reported_at);
                                proptest::prop_assert_eq!(&after.reporter, &original.reporter);
                                for entry in &before.timeline {
                                    proptest::prop_assert!(after.timeline.contains(entry));
                                }
                                delivered[i] = devices[i].0.get_heads();
                                devices[i].1.clear();
                            }
                            Err(e) => {
                                proptest::prop_assert!(!expected, "refused an allowed push: {e}");
                                proptest::prop_assert!(
                                    refused_by_policy(&e.to_string()),
                                    "refused for another reason: {e}"
                                );
                                // The device gives up on what was refused and starts over
                                // from the stored report.
                                devices[i].0 = AutoCommit::load(&stored).unwrap().with_actor(actor(&person));
                                delivered[i] = devices[i].0.get_heads();
                                devices[i].1.clear();
                            }
                        }
                    }
                }
            }
        }
    }

    fn refused_by_policy(reason: &str) -> bool {
        reason.contains(" writes `") || reason.contains("signed by")
    }
}
