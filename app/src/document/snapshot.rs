//! Reading a report out of a document in one pass.
//!
//! Each map is read with one `map_range` (every key, its winning value and a conflict
//! flag) and each list with one `list_range`, then turned into a [`Report`] as plain data.
//! Asking field by field (autosurgeon's `Hydrate`: one lookup per field and list element)
//! took four times as long, and automerge's whole-tree `hydrate` twice as long, mostly on
//! the timeline; the server reads every report it merges. Writes still go through
//! autosurgeon's `Reconcile`; the round-trip property tests in the parent module pin the
//! two directions to one shape.

use automerge::iter::MapRangeItem;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValueRef as ScalarValue, ValueRef};
use uuid::Uuid;

use super::{
    ACTIONS_KEY, DocError, INJURY_KEY, LOCATION_KEY, PEOPLE_KEY, PHOTOS_KEY, PLAN_TICKS_KEY, REPORT_KEY,
    RESPONSE_KEY, REVIEW_KEY, SCHEMA_KEY, SCHEMA_VERSION, TIMELINE_KEY, WITNESSES_KEY,
};
use crate::domain::{
    Action, ActionKind, ActionState, Category, Effectiveness, GpsFix, Impact, Injury, Location, Outcome,
    PhotoRef, Report, ReportId, Response, Review, Severity, Status, TimelineEntry, Timestamp, Treatment,
    Urgency,
};

/// One map's entries, as `map_range` yields them. Maps here hold at most a dozen keys, so
/// a linear search beats hashing.
struct Map<'a> {
    entries: Vec<MapRangeItem<'a>>,
}

impl<'a> Map<'a> {
    fn read(doc: &'a AutoCommit, obj: &ObjId) -> Self {
        Self {
            entries: doc.map_range(obj, ..).collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&MapRangeItem<'a>> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Keys whose scalar value has concurrent rivals.
    fn conflicted(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| e.conflict && matches!(e.value, ValueRef::Scalar(_)))
            .map(|e| e.key.as_ref())
    }
}

/// The document's schema version, if it has one.
fn schema_version(root: &Map<'_>) -> Option<u64> {
    match root.get(SCHEMA_KEY).map(|e| &e.value) {
        Some(ValueRef::Scalar(ScalarValue::Uint(v))) => Some(*v),
        Some(ValueRef::Scalar(ScalarValue::Int(v))) => u64::try_from(*v).ok(),
        _ => None,
    }
}

/// The report in `doc`, and the paths of the scalar fields that hold several concurrent
/// values, in display order.
pub(super) fn report(doc: &AutoCommit) -> Result<(Report, Vec<String>), DocError> {
    let root = Map::read(doc, &ROOT);
    match schema_version(&root) {
        Some(SCHEMA_VERSION) => {}
        found => return Err(DocError::UnsupportedSchema { found }),
    }
    let report_obj = object(&root, REPORT_KEY, ObjType::Map, "")?;
    let report = Map::read(doc, &report_obj);
    let location = Map::read(doc, &object(&report, LOCATION_KEY, ObjType::Map, "")?);
    // In display order, like the form.
    let (in_report, in_location): (Vec<&str>, Vec<&str>) =
        (report.conflicted().collect(), location.conflicted().collect());
    let conflicted: Vec<String> = super::REPORT_SCALARS
        .iter()
        .filter(|key| in_report.contains(key))
        .map(|key| (*key).to_owned())
        .chain(
            super::LOCATION_SCALARS
                .iter()
                .filter(|key| in_location.contains(key))
                .map(|key| format!("{LOCATION_KEY}.{key}")),
        )
        .collect();
    let mut conflicted = conflicted;
    let injury = match report.get(INJURY_KEY) {
        // Documents written before injury details have none.
        None => Injury::default(),
        Some(_) => injury(
            doc,
            &object(&report, INJURY_KEY, ObjType::Map, "")?,
            &mut conflicted,
        )?,
    };
    let response = match report.get(RESPONSE_KEY) {
        // Documents written before the response existed have none of it.
        None => Response::default(),
        Some(_) => response(
            doc,
            &object(&report, RESPONSE_KEY, ObjType::Map, "")?,
            &mut conflicted,
        )?,
    };
    let people = object(&report, PEOPLE_KEY, ObjType::List, "")?;
    let mut read = Report {
        id: ReportId(uuid(&report, "id", "")?),
        title: string(&report, "title", "")?,
        what_happened: string(&report, "what_happened", "")?,
        category: Category(string(&report, "category", "")?),
        severity: keyed(&report, "severity", Severity::from_key)?,
        impact: optional_key(&report, "impact", Impact::from_key)?.unwrap_or_default(),
        urgency: optional_key(&report, "urgency", Urgency::from_key)?.unwrap_or_default(),
        outcome: optional_key(&report, "outcome", Outcome::from_key)?.unwrap_or_default(),
        occurred_at: timestamp(&report, "occurred_at", "")?,
        reported_at: timestamp(&report, "reported_at", "")?,
        location: Location {
            gps: match location.get("gps").map(|e| &e.value) {
                None | Some(ValueRef::Scalar(ScalarValue::Null)) => None,
                Some(ValueRef::Scalar(ScalarValue::Str(s))) => {
                    Some(s.parse::<GpsFix>().map_err(|e| shape("location.gps", &e))?)
                }
                Some(_) => return Err(shape("location.gps", "expected a GPS fix \"lat lon accuracy\"")),
            },
            place: string(&location, "place", "location.")?,
        },
        reporter: string(&report, "reporter", "")?,
        people_involved: strings(doc, &people)?,
        immediate_actions: string(&report, "immediate_actions", "")?,
        status: keyed(&report, "status", Status::from_key)?,
        timeline: match report.get(TIMELINE_KEY) {
            // Documents written before the timeline existed have none.
            None => Vec::new(),
            Some(_) => timeline(doc, &object(&report, TIMELINE_KEY, ObjType::List, "")?)?,
        },
        response,
        plan_ticks: json_entries(doc, &report, PLAN_TICKS_KEY, "a tick {step, role, text, at, by}")?,
        injury,
        witnesses: json_entries(
            doc,
            &report,
            WITNESSES_KEY,
            "a witness {name, contact, statement}",
        )?,
        photos: photos(doc, &report_obj, &report)?,
        drill: match report.get("drill").map(|e| &e.value) {
            // A real report: documents of real incidents hold no `drill` key.
            None => None,
            Some(ValueRef::Scalar(ScalarValue::Str(s))) => Some(
                uuid::Uuid::parse_str(s)
                    .ok()
                    .filter(|id| id.to_string() == **s)
                    .ok_or_else(|| shape("drill", "expected a drill id"))?,
            ),
            Some(_) => return Err(shape("drill", "expected a drill id")),
        },
    };
    // Concurrent judgements of how bad or urgent it is: the worst stands until a person
    // chooses (a merge never silently lowers them).
    if in_report.contains(&"severity") {
        read.severity =
            worst(doc, &report_obj, "severity", Severity::from_key, |s| s.rank()).unwrap_or(read.severity);
    }
    if in_report.contains(&"impact") {
        read.impact =
            worst(doc, &report_obj, "impact", Impact::from_key, Impact::gravity).unwrap_or(read.impact);
    }
    if in_report.contains(&"urgency") {
        read.urgency =
            worst(doc, &report_obj, "urgency", Urgency::from_key, Urgency::gravity).unwrap_or(read.urgency);
    }
    if in_report.contains(&"outcome") {
        read.outcome =
            worst(doc, &report_obj, "outcome", Outcome::from_key, Outcome::gravity).unwrap_or(read.outcome);
    }
    if in_report.contains(&"status") {
        read.status = settled_status(doc, &report_obj).unwrap_or(read.status);
    }
    Ok((read, conflicted))
}

/// The report's status as the workflow reads it: the settled one among concurrent
/// values, else the one value.
pub(super) fn status_now(doc: &AutoCommit, report: &ObjId) -> Option<Status> {
    settled_status(doc, report).or_else(|| match doc.get(report, "status").ok()?? {
        (automerge::Value::Scalar(s), _) => s.as_str().and_then(Status::from_key),
        (automerge::Value::Object(_), _) => None,
    })
}

/// The status that stands among concurrent ones, by the workflow's rule
/// ([`Status::settle`]): each value with the status its writer replaced, read at the
/// dependencies of the change that wrote it.
fn settled_status(doc: &AutoCommit, report: &ObjId) -> Option<Status> {
    let values = doc.get_all(report, "status").ok()?;
    if values.len() < 2 {
        return None;
    }
    // Listing changes needs a mutable document; this runs only while the status is
    // contested, so a copy is affordable.
    let changes = doc.clone().get_changes(&[]);
    let writes: Vec<(Status, Option<Status>)> = values
        .iter()
        .filter_map(|(value, op)| {
            let to = match value {
                automerge::Value::Scalar(s) => match s.as_ref() {
                    automerge::ScalarValue::Str(k) => Status::from_key(k)?,
                    _ => return None,
                },
                automerge::Value::Object(_) => return None,
            };
            let ObjId::Id(counter, actor, _) = op else {
                return Some((to, None));
            };
            // The change that wrote this value, and the status just before it.
            let from = changes
                .iter()
                .find(|c| c.actor_id() == actor && (c.start_op().get()..=c.max_op()).contains(counter))
                .and_then(
                    |change| match doc.get_at(report, "status", change.deps()).ok()?? {
                        (automerge::Value::Scalar(s), _) => s.as_str().and_then(Status::from_key),
                        (automerge::Value::Object(_), _) => None,
                    },
                );
            Some((to, from))
        })
        .collect();
    Status::settle(&writes)
}

/// The response map: assignment, investigation, actions, review. Paths of its scalar
/// fields that hold concurrent values are added to `conflicted`, in display order.
fn response(doc: &AutoCommit, obj: &ObjId, conflicted: &mut Vec<String>) -> Result<Response, DocError> {
    let map = Map::read(doc, obj);
    let prefix = "response.";
    let flagged: Vec<&str> = map.conflicted().collect();
    for key in super::RESPONSE_SCALARS {
        if flagged.contains(&key) {
            conflicted.push(format!("{prefix}{key}"));
        }
    }
    let review = match map.get(REVIEW_KEY) {
        None => Review::default(),
        Some(_) => {
            let review = Map::read(doc, &object(&map, REVIEW_KEY, ObjType::Map, prefix)?);
            let flagged: Vec<&str> = review.conflicted().collect();
            let mut read = Review::default();
            for (key, _, _) in Review::default().parts() {
                if flagged.contains(&key) {
                    conflicted.push(format!("{prefix}{REVIEW_KEY}.{key}"));
                }
                if review.get(key).is_some()
                    && let Some(part) = read.part_mut(key)
                {
                    *part = string(&review, key, "response.review.")?;
                }
            }
            read
        }
    };
    let actions = match map.get(ACTIONS_KEY) {
        None => Vec::new(),
        Some(_) => {
            let all = Map::read(doc, &object(&map, ACTIONS_KEY, ObjType::Map, prefix)?);
            let mut actions = Vec::with_capacity(all.entries.len());
            for entry in &all.entries {
                let path = format!("{prefix}{ACTIONS_KEY}.{}.", entry.key);
                if entry.value != ValueRef::Object(ObjType::Map) {
                    return Err(shape(&path, "expected an action"));
                }
                let fields = Map::read(doc, &entry.id());
                let flagged: Vec<&str> = fields.conflicted().collect();
                for key in super::ACTION_SCALARS {
                    if flagged.contains(&key) {
                        conflicted.push(format!("{path}{key}"));
                    }
                }
                let id: Uuid = string(&fields, "id", &path)?
                    .parse()
                    .map_err(|_| shape(&format!("{path}id"), "expected a UUID"))?;
                if id.to_string() != entry.key {
                    return Err(shape(&format!("{path}id"), "does not match its key"));
                }
                actions.push(Action {
                    id,
                    kind: keyed(&fields, "kind", ActionKind::from_key)?,
                    text: string(&fields, "text", &path)?,
                    owner: string(&fields, "owner", &path)?,
                    due_at: optional_timestamp(&fields, "due_at", &path)?,
                    state: keyed(&fields, "state", ActionState::from_key)?,
                    check: keyed(&fields, "check", Effectiveness::from_key)?,
                    check_note: string(&fields, "check_note", &path)?,
                });
            }
            // Ids are UUIDv7: by id is the order they were added in.
            actions.sort_by_key(|a| a.id);
            actions
        }
    };
    Ok(Response {
        // The map is created by its first write, which may set neither.
        assignee: match map.get("assignee") {
            None => String::new(),
            Some(_) => string(&map, "assignee", prefix)?,
        },
        due_at: match map.get("due_at") {
            None => None,
            Some(_) => optional_timestamp(&map, "due_at", prefix)?,
        },
        whys: match map.get("whys") {
            None => Vec::new(),
            Some(_) => strings(doc, &object(&map, "whys", ObjType::List, prefix)?)?,
        },
        factors: match map.get("factors") {
            None => Vec::new(),
            Some(_) => strings(doc, &object(&map, "factors", ObjType::List, prefix)?)?,
        },
        actions,
        review,
    })
}

/// The injury details: every part a string, absent while not filled in. Paths of parts
/// holding concurrent values are added to `conflicted`, in form order.
fn injury(doc: &AutoCommit, obj: &ObjId, conflicted: &mut Vec<String>) -> Result<Injury, DocError> {
    let map = Map::read(doc, obj);
    let flagged: Vec<&str> = map.conflicted().collect();
    let prefix = "injury.";
    let mut read = Injury::default();
    for &key in super::INJURY_SCALARS {
        if flagged.contains(&key) {
            conflicted.push(format!("{prefix}{key}"));
        }
        if map.get(key).is_none() {
            continue;
        }
        let text = string(&map, key, prefix)?;
        if key == "treatment" {
            read.treatment = Treatment::from_key(&text)
                .ok_or_else(|| shape("injury.treatment", &format!("unknown value `{text}`")))?;
        } else if let Some(part) = read.text_mut(key) {
            *part = text;
        }
    }
    Ok(read)
}

/// A list of entries each stored as one scalar JSON string (`what` one is, for the
/// error), absent from documents written before it existed: read as empty.
fn json_entries<T: serde::de::DeserializeOwned>(
    doc: &AutoCommit,
    report: &Map<'_>,
    key: &str,
    what: &str,
) -> Result<Vec<T>, DocError> {
    if report.get(key).is_none() {
        return Ok(Vec::new());
    }
    json_list(doc, &object(report, key, ObjType::List, "")?, key, what)
}

/// The entries of one list of scalar JSON strings (`key` names it, for errors).
fn json_list<T: serde::de::DeserializeOwned>(
    doc: &AutoCommit,
    list: &ObjId,
    key: &str,
    what: &str,
) -> Result<Vec<T>, DocError> {
    doc.list_range(list, ..)
        .map(|item| match &item.value {
            ValueRef::Scalar(ScalarValue::Str(json)) => serde_json::from_str(json)
                .map_err(|_| shape(&format!("{key}[]"), &format!("expected {what}"))),
            _ => Err(shape(key, &format!("expected a list of entries, each {what}"))),
        })
        .collect()
}

/// A time that may be empty (null).
fn optional_timestamp(parent: &Map<'_>, key: &str, prefix: &str) -> Result<Option<Timestamp>, DocError> {
    match scalar(parent, key, prefix)? {
        ScalarValue::Null => Ok(None),
        _ => timestamp(parent, key, prefix).map(Some),
    }
}

/// The gravest of every concurrent value of a keyed field (unknown keys ignored).
fn worst<T: Copy, G: Ord>(
    doc: &AutoCommit,
    obj: &ObjId,
    key: &str,
    parse: impl Fn(&str) -> Option<T>,
    gravity: impl Fn(T) -> G,
) -> Option<T> {
    doc.get_all(obj, key)
        .ok()?
        .iter()
        .filter_map(|(value, _)| match value {
            automerge::Value::Scalar(s) => match s.as_ref() {
                automerge::ScalarValue::Str(k) => parse(k),
                _ => None,
            },
            automerge::Value::Object(_) => None,
        })
        .max_by_key(|v| gravity(*v))
}

fn shape(path: &str, problem: &str) -> DocError {
    DocError::Shape(format!("`{path}`: {problem}"))
}

/// The object at `key`, which must be of type `expected`.
fn object(parent: &Map<'_>, key: &str, expected: ObjType, prefix: &str) -> Result<ObjId, DocError> {
    match parent.get(key) {
        Some(e) if e.value == ValueRef::Object(expected) => Ok(e.id()),
        Some(_) => Err(shape(
            &format!("{prefix}{key}"),
            &format!("expected a {expected}"),
        )),
        None => Err(shape(&format!("{prefix}{key}"), "missing")),
    }
}

fn scalar<'m>(parent: &'m Map<'_>, key: &str, prefix: &str) -> Result<&'m ScalarValue<'m>, DocError> {
    match parent.get(key).map(|e| &e.value) {
        Some(ValueRef::Scalar(s)) => Ok(s),
        Some(_) => Err(shape(
            &format!("{prefix}{key}"),
            "expected a value, found an object",
        )),
        None => Err(shape(&format!("{prefix}{key}"), "missing")),
    }
}

fn string(parent: &Map<'_>, key: &str, prefix: &str) -> Result<String, DocError> {
    match scalar(parent, key, prefix)? {
        ScalarValue::Str(s) => Ok(s.to_string()),
        _ => Err(shape(&format!("{prefix}{key}"), "expected a string")),
    }
}

fn timestamp(parent: &Map<'_>, key: &str, prefix: &str) -> Result<Timestamp, DocError> {
    match scalar(parent, key, prefix)? {
        ScalarValue::Int(ms) => Ok(Timestamp(*ms)),
        ScalarValue::Uint(ms) => i64::try_from(*ms)
            .map(Timestamp)
            .map_err(|_| shape(&format!("{prefix}{key}"), "time out of range")),
        _ => Err(shape(
            &format!("{prefix}{key}"),
            "expected a time in milliseconds",
        )),
    }
}

fn uuid(parent: &Map<'_>, key: &str, prefix: &str) -> Result<Uuid, DocError> {
    match scalar(parent, key, prefix)? {
        ScalarValue::Bytes(b) => {
            Uuid::from_slice(b).map_err(|_| shape(&format!("{prefix}{key}"), "expected 16 bytes"))
        }
        _ => Err(shape(&format!("{prefix}{key}"), "expected a UUID as bytes")),
    }
}

/// A keyed field that documents written before it existed lack.
fn optional_key<T>(
    parent: &Map<'_>,
    key: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, DocError> {
    if parent.get(key).is_none() {
        return Ok(None);
    }
    keyed(parent, key, parse).map(Some)
}

fn keyed<T>(parent: &Map<'_>, key: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, DocError> {
    let text = string(parent, key, "")?;
    parse(&text).ok_or_else(|| shape(key, &format!("unknown value `{text}`")))
}

fn strings(doc: &AutoCommit, list: &ObjId) -> Result<Vec<String>, DocError> {
    doc.list_range(list, ..)
        .map(|item| match item.value {
            ValueRef::Scalar(ScalarValue::Str(s)) => Ok(s.into_owned()),
            _ => Err(shape(PEOPLE_KEY, "expected a list of strings")),
        })
        .collect()
}

fn timeline(doc: &AutoCommit, list: &ObjId) -> Result<Vec<TimelineEntry>, DocError> {
    doc.list_range(list, ..)
        .map(|item| {
            match &item.value {
                ValueRef::Scalar(ScalarValue::Str(json)) => {
                    return serde_json::from_str(json)
                        .map_err(|_| shape("timeline[]", "expected an entry {id, at, author, text}"));
                }
                ValueRef::Object(ObjType::Map) => {}
                _ => return Err(shape(TIMELINE_KEY, "expected a list of entries")),
            }
            // An entry written before entries were single scalars.
            let entry = Map::read(doc, &item.id());
            let prefix = "timeline[].";
            Ok(TimelineEntry {
                id: uuid(&entry, "id", prefix)?,
                at: timestamp(&entry, "at", prefix)?,
                author: string(&entry, "author", prefix)?,
                author_id: None,
                text: string(&entry, "text", prefix)?,
                audience: Default::default(),
            })
        })
        .collect()
}

/// The report's guarded fields (reporter, status, response) alone, for checking
/// writes against the stored report without reading all of it.
pub(super) fn guarded(doc: &AutoCommit) -> Result<crate::domain::access::Guarded, DocError> {
    let root = Map::read(doc, &ROOT);
    let report_obj = object(&root, REPORT_KEY, ObjType::Map, "")?;
    let report = Map::read(doc, &report_obj);
    Ok(crate::domain::access::Guarded {
        reporter: string(&report, "reporter", "")?,
        status: keyed(&report, "status", Status::from_key)?,
        response: match report.get(RESPONSE_KEY) {
            None => Response::default(),
            Some(_) => response(
                doc,
                &object(&report, RESPONSE_KEY, ObjType::Map, "")?,
                &mut Vec::new(),
            )?,
        },
        photos: photos(doc, &report_obj, &report)?
            .into_iter()
            .map(|p| p.sha256)
            .collect(),
    })
}

/// The photos a report names, each once (two devices may add the same photo). The list
/// is made by the first photo's edit, so two replicas adding a first photo at once each
/// make one: every rival list is read, and no photo is lost.
fn photos(doc: &AutoCommit, report_obj: &ObjId, report: &Map<'_>) -> Result<Vec<PhotoRef>, DocError> {
    const WHAT: &str = "a photo {sha256, size, width, height, at}";
    let lists = match report.get(PHOTOS_KEY) {
        None => return Ok(Vec::new()),
        Some(entry) if entry.conflict => doc
            .get_all(report_obj, PHOTOS_KEY)?
            .into_iter()
            .map(|(value, id)| match value {
                automerge::Value::Object(ObjType::List) => Ok(id),
                _ => Err(shape(PHOTOS_KEY, "expected a list")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => vec![object(report, PHOTOS_KEY, ObjType::List, "")?],
    };
    let mut seen = std::collections::HashSet::new();
    let mut photos = Vec::new();
    for list in &lists {
        for photo in json_list::<PhotoRef>(doc, list, PHOTOS_KEY, WHAT)? {
            if seen.insert(photo.sha256.clone()) {
                photos.push(photo);
            }
        }
    }
    Ok(photos)
}
