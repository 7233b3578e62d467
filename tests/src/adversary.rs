//! An adversarial client: raw Automerge changes written with the `automerge` crate
//! directly (not `ReportDoc`'s helpers), as a stock Automerge client would, under the
//! pushing person's own actor. [`cases`] makes one for every role × path × workflow state
//! × kind of write of the write policy (`app::domain::policy`), each with whether the
//! table allows it.

use app::document::{ReportDoc, actor_for, hash_hex};
use app::domain::access::{Role, Viewer};
use app::domain::policy::{self, Keys, Kind, MERGED_RIVALS, Rule, Shape};
use app::domain::{
    Action, ActionKind, PhotoRef, PlanStep, PlanTick, Report, ReportId, Status, TimelineEntry, Timestamp,
    Treatment, Witness,
};
use app::protocol::{Bytes, ReportPush};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

use crate::T0;

/// The kinds of write a case makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Put a scalar; overwrite a list's first entry.
    Set,
    /// Insert an entry at the end of a list.
    Insert,
    /// Delete a map key; delete a list's first entry.
    Delete,
    /// Make the map or list at the path (where one may already stand).
    Create,
}

/// The three people of the cases: the reporter (a field employee), a supervisor and an
/// administrator.
#[derive(Clone, Debug)]
pub struct People {
    pub field: Viewer,
    pub supervisor: Viewer,
    pub admin: Viewer,
}

impl People {
    fn of(&self, role: Role) -> &Viewer {
        match role {
            Role::Field => &self.field,
            Role::Supervisor => &self.supervisor,
            Role::Admin => &self.admin,
        }
    }
}

/// One generated case.
#[derive(Debug)]
pub struct Case {
    pub role: Role,
    pub path: String,
    pub state: Status,
    pub write: Write,
    /// Whether the policy table allows it.
    pub allowed: bool,
    /// The report as stored before the case (in `state`).
    pub stored: Vec<u8>,
    /// The raw change, as a push.
    pub push: ReportPush,
}

impl Case {
    /// What this case is, for a failure message.
    #[must_use]
    pub fn name(&self) -> String {
        format!(
            "{} {:?} `{}` while {}",
            self.role.label(),
            self.write,
            self.path,
            self.state.label()
        )
    }
}

/// When the cases are written (a later server clock accepts their signed entries).
pub const AT: Timestamp = T0;

fn actor(of: &Viewer) -> automerge::ActorId {
    actor_for(of.user_id, uuid::Uuid::from_u128(0xad), [9, 9, 9, 9])
}

/// The stored report `id` in `state`, as honest people got it there: filed by the field
/// employee with one entry in every list and every injury detail; from Triaged on, a
/// response by the supervisor with an assignee, a due date, a why, a factor, an action
/// and a written review.
#[must_use]
pub fn stored_in(id: ReportId, state: Status, people: &People) -> Vec<u8> {
    let field = &people.field;
    let mut report = Report::blank(id, AT, &field.name);
    report.title = "Spill by the dock door".into();
    report.what_happened = "Hydraulic oil on the floor".into();
    report.location.place = "Dock".into();
    report.people_involved.push("Rita Gomez".into());
    report.witnesses.push(Witness {
        name: "Sam Lee".into(),
        contact: String::new(),
        statement: String::new(),
    });
    report.category = app::domain::Category::new(app::domain::INJURY_CATEGORY);
    for (key, _, _) in app::domain::Injury::default().texts() {
        let text = match key {
            "work_began" => "07:30".to_owned(),
            // Only for a death.
            "died_on" => continue,
            _ => format!("{key} noted"),
        };
        *report.injury.text_mut(key).expect("an injury part") = text;
    }
    report.injury.treatment = Treatment::FirstAid;
    report.timeline.push(TimelineEntry {
        id: uuid::Uuid::from_u128(u128::from_be_bytes(*id.0.as_bytes()) ^ 1),
        at: AT,
        author: field.name.clone(),
        author_id: Some(field.user_id),
        text: "Cones out".into(),
        audience: Default::default(),
    });
    report.plan_ticks.push(PlanTick::of(
        &PlanStep::new("Whoever reports", "Make it safe"),
        &field.name,
        field.user_id,
        AT,
    ));
    report.photos.push(photo(1));
    let mut doc = ReportDoc::create(&report, actor(field), AT).expect("a valid report");
    if state != Status::Reported {
        doc.set_actor(actor(&people.supervisor));
        let mut next = report.clone();
        next.status = Status::Triaged;
        next.response.assignee = people.supervisor.user_id.to_string();
        next.response.due_at = Some(Timestamp(AT.0 + 86_400_000));
        next.response.whys.push("The hose was worn".into());
        next.response.factors.push("No inspection".into());
        next.response.actions.push(Action::new(
            uuid::Uuid::from_u128(u128::from_be_bytes(*id.0.as_bytes()) ^ 2),
            ActionKind::Corrective,
            "Replace the hose",
            "",
            None,
        ));
        next.response.review.summary = "Worn hose".into();
        next.response.review.lessons = "Inspect hoses monthly".into();
        doc.edit(&report, &next, AT).expect("triaged");
        report = next;
        for status in Status::ALL.into_iter().skip(2) {
            if report.status == state {
                break;
            }
            let mut next = report.clone();
            next.status = status;
            doc.edit(&report, &next, AT).expect("moved on");
            report = next;
        }
    }
    doc.save()
}

fn photo(n: u8) -> PhotoRef {
    PhotoRef {
        sha256: hex::encode([n; 32]),
        size: 1000,
        width: 40,
        height: 30,
        at: AT,
    }
}

/// A value of `kind` that differs from what the stored report holds, written as `by`.
fn value(kind: Kind, by: &Viewer, path: &str, state: Status) -> ScalarValue {
    let text = |t: String| ScalarValue::Str(t.into());
    match kind {
        Kind::Text => text(format!("adversary at {path}")),
        Kind::Int | Kind::IntOrNull => ScalarValue::Int(AT.0 - 3_600_000),
        Kind::TextOrNull => text("51.5 -0.12 8".to_owned()),
        Kind::Bytes => ScalarValue::Bytes(vec![7; 16]),
        // One allowed step on from the state (or back, from Closed).
        Kind::Status => text(
            state
                .next_choices()
                .into_iter()
                .find(|s| *s != state)
                .unwrap_or(state)
                .as_str()
                .to_owned(),
        ),
        Kind::Update => text(
            serde_json::json!({"id": uuid::Uuid::from_u128(0xfeed), "at": AT.0, "author": by.name,
                "author_id": by.user_id.to_string(), "text": "adversary"})
            .to_string(),
        ),
        Kind::Tick => text(
            serde_json::to_string(&PlanTick::of(
                &PlanStep::new("Whoever reports", "Call it in"),
                &by.name,
                by.user_id,
                AT,
            ))
            .expect("a tick"),
        ),
        Kind::Photo => text(serde_json::to_string(&photo(2)).expect("a photo")),
        Kind::Witness => text(r#"{"name":"Olga Petrova"}"#.to_owned()),
    }
}

/// The object at `path` in `doc` (its winner), if it stands.
fn object_at(doc: &AutoCommit, path: &str) -> Option<ObjId> {
    let mut obj = ROOT;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let key = if part == "<id>" {
            doc.keys(&obj).next()?
        } else {
            part.to_owned()
        };
        match doc.get(&obj, key.as_str()).ok()?? {
            (Value::Object(ObjType::Map | ObjType::List), id) => obj = id,
            _ => return None,
        }
    }
    Some(obj)
}

/// Every case, for reports whose ids `next_id` hands out.
pub fn cases(people: &People, mut next_id: impl FnMut() -> ReportId) -> Vec<Case> {
    let mut out = Vec::new();
    for state in Status::ALL {
        for role in Role::ALL {
            for rule in policy::RULES {
                let keys: Vec<&str> = match rule.keys {
                    Keys::One(k) => vec![k],
                    Keys::Each(keys) => keys.to_vec(),
                    Keys::Id => vec!["<id>"],
                };
                for key in keys {
                    let writes: &[Write] = match rule.shape {
                        Shape::Scalar(_) => &[Write::Set, Write::Delete],
                        Shape::List(_) => &[Write::Set, Write::Insert, Write::Delete, Write::Create],
                        Shape::Map => &[Write::Create, Write::Delete],
                    };
                    for write in writes {
                        let id = next_id();
                        let stored = stored_in(id, state, people);
                        if let Some(case) = case(people, role, rule, key, state, *write, id, stored) {
                            out.push(case);
                        }
                    }
                }
            }
        }
    }
    out
}

/// One case, or `None` where the stored report has nothing to write into (the response
/// before triage).
#[allow(clippy::too_many_arguments)]
fn case(
    people: &People,
    role: Role,
    rule: &Rule,
    key: &str,
    state: Status,
    write: Write,
    id: ReportId,
    stored: Vec<u8>,
) -> Option<Case> {
    let by = people.of(role);
    let mut doc = AutoCommit::load(&stored)
        .expect("stored loads")
        .with_actor(actor(by));
    let before = doc.get_heads();
    let parent = object_at(&doc, rule.parent)?;
    // An existing action's id, or a new one for a new action.
    let key = if key == "<id>" {
        match write {
            Write::Create => uuid::Uuid::from_u128(0xac71).to_string(),
            _ => doc.keys(&parent).next()?,
        }
    } else {
        key.to_owned()
    };
    let path = Rule::child_path(rule.parent, &key, rule.keys);
    let shown = if rule.parent.is_empty() {
        key.clone()
    } else {
        format!("{}.{key}", rule.parent)
    };
    let standing = doc.get_all(&parent, key.as_str()).expect("readable").len();
    let set = |who: policy::Who| !rule.immutable && who.allows(role, state);
    let allowed = match (rule.shape, write) {
        (Shape::Scalar(kind), Write::Set) => {
            doc.put(&parent, key.as_str(), value(kind, by, &path, state))
                .expect("put");
            set(rule.set)
        }
        (_, Write::Delete) if !matches!(rule.shape, Shape::List(_)) => {
            if standing == 0 {
                return None;
            }
            doc.delete(&parent, key.as_str()).expect("delete");
            set(rule.delete)
        }
        (Shape::List(kind), Write::Set | Write::Insert | Write::Delete) => {
            let list = object_at(&doc, &path)?;
            match write {
                Write::Set => {
                    doc.put(&list, 0, value(kind, by, &path, state))
                        .expect("overwrite");
                    set(rule.insert) && set(rule.delete)
                }
                Write::Insert => {
                    let end = doc.length(&list);
                    doc.insert(&list, end, value(kind, by, &path, state))
                        .expect("insert");
                    set(rule.insert)
                }
                _ => {
                    doc.delete(&list, 0).expect("delete entry");
                    set(rule.delete)
                }
            }
        }
        (Shape::List(_) | Shape::Map, Write::Create) => {
            let kind = if rule.shape == Shape::Map {
                ObjType::Map
            } else {
                ObjType::List
            };
            doc.put_object(&parent, key.as_str(), kind).expect("make");
            set(rule.set) && (standing == 0 || MERGED_RIVALS.contains(&path.as_str()))
        }
        _ => return None,
    };
    doc.commit();
    let changes: Vec<Bytes> = doc
        .get_changes(&before)
        .iter()
        .map(|c| Bytes(c.raw_bytes().to_vec()))
        .collect();
    assert!(!changes.is_empty(), "{shown}: the case writes something");
    Some(Case {
        role,
        path: shown,
        state,
        write,
        allowed,
        stored,
        push: ReportPush {
            id,
            heads: doc.get_heads().iter().map(hash_hex).collect(),
            changes,
            document: None,
        },
    })
}

/// Whether a refusal came from the write policy (it names the path it refused), as
/// opposed to, say, the merged report failing validation.
#[must_use]
pub fn refused_by_policy(reason: &str) -> bool {
    reason.contains(" writes `")
}
