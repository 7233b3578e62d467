//! The write policy of the report document, declared once: for every path, which roles
//! may set, insert or delete it, in which workflow states, and what it may hold.
//!
//! The sync gate (`document::gate`) checks every operation of every uploaded change
//! against this table, on the document as it stood before that change; nothing else
//! decides what a write may do. SECURITY.md shows the table as [`render`] writes it (a
//! test keeps the two the same).
//!
//! Reasons behind the rows:
//! * `id`, `reporter`, `reported_at`, `schema_version`, `location` (the map), `drill`
//!   (the drill a drill report was filed in; a real report has none) and an action's `id`
//!   are written only with the object that holds them: never changed after. So a report's
//!   kind, real or drill, is decided when it is created, for every role.
//! * The reporter edits the facts and her own judgement of them only while the report is
//!   Reported; once triaged they are the supervisor's (a supervisor corrects them while
//!   the report is open, not once it is closed: reopen it first).
//! * The status is moved only by supervisors and administrators, one allowed step at a
//!   time from the stored, settled status (see [`super::Status::can_move_to`]); a new
//!   report starts Reported; Reviewed needs the review's summary and lessons.
//! * Timeline updates, plan ticks and photos are append-only for everyone: nobody edits
//!   or removes an entry. A new timeline update or tick names the person who pushes it,
//!   by user id, with a time no later than the server's clock plus [`CLOCK_SKEW_MS`].
//! * The response (assignment, investigation, actions, review) is the supervisor's;
//!   actions are never removed, and an action's progress may be recorded after the
//!   incident closes (effectiveness checks come later).
//! * Any path not in the table, and any object the table does not know (a rival list, a
//!   re-created map), is refused; so are counters, marks and objects inside lists.

use std::fmt::Write as _;

use super::Status;
use super::access::Role;

/// How far in the future of the server's clock a new entry's time may be (device clocks
/// drift; a phone that says "tomorrow" is wrong, not early).
pub const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// A set of workflow states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct States(u8);

impl States {
    /// No state.
    pub const NONE: States = States(0);
    /// Every state.
    pub const ALL: States = States(0b11_1111);
    /// Only while the report is Reported (before triage).
    pub const REPORTED: States = States(1);
    /// Every state but Closed.
    pub const OPEN: States = States(0b01_1111);

    fn bit(status: Status) -> u8 {
        let index = Status::ALL.iter().position(|s| *s == status).unwrap_or(0);
        1 << index
    }

    /// Whether `status` is in the set.
    #[must_use]
    pub fn contains(self, status: Status) -> bool {
        self.0 & Self::bit(status) != 0
    }

    /// For people: "all", "none", "open (not Closed)" or the states' labels.
    #[must_use]
    pub fn label(self) -> String {
        match self {
            Self::ALL => "all".to_owned(),
            Self::NONE => "—".to_owned(),
            Self::OPEN => "open".to_owned(),
            _ => Status::ALL
                .into_iter()
                .filter(|s| self.contains(*s))
                .map(Status::label)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Which roles may do one kind of write, in which states (indexed like [`Role::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Who([States; 3]);

impl Who {
    /// Nobody, ever.
    pub const NOBODY: Who = Who([States::NONE; 3]);
    /// Everyone, in every state.
    pub const EVERYONE: Who = Who([States::ALL; 3]);
    /// The facts: the reporter while Reported, supervisors and administrators while open.
    pub const FACTS: Who = Who([States::REPORTED, States::OPEN, States::OPEN]);
    /// The response: supervisors and administrators while open.
    pub const RESPONSE: Who = Who([States::NONE, States::OPEN, States::OPEN]);
    /// Action progress: supervisors and administrators, also after closing.
    pub const PROGRESS: Who = Who([States::NONE, States::ALL, States::ALL]);
    /// The status: supervisors and administrators (each move checked by the workflow).
    pub const WORKFLOW: Who = Who([States::NONE, States::ALL, States::ALL]);

    /// The states in which `role` may do this.
    #[must_use]
    pub fn states(self, role: Role) -> States {
        let index = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
        self.0[index]
    }

    /// Whether `role` may do this while the report is `status`.
    #[must_use]
    pub fn allows(self, role: Role, status: Status) -> bool {
        self.states(role).contains(status)
    }
}

/// What a scalar (or a list's entries) may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    Text,
    /// A whole number (a time in ms, a schema version).
    Int,
    /// A whole number or null.
    IntOrNull,
    /// Text or null (a GPS fix).
    TextOrNull,
    /// Bytes (a UUID).
    Bytes,
    /// A workflow status key.
    Status,
    /// A timeline update (JSON), signed by the pusher.
    Update,
    /// A ticked plan step (JSON), signed by the pusher.
    Tick,
    /// A photo reference (JSON).
    Photo,
    /// A witness (JSON).
    Witness,
}

impl Kind {
    /// Whether an entry of this kind must name the person who pushes it.
    #[must_use]
    pub fn signed(self) -> bool {
        matches!(self, Self::Update | Self::Tick)
    }

    fn label(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Int => "integer",
            Self::IntOrNull => "integer or null",
            Self::TextOrNull => "text or null",
            Self::Bytes => "bytes",
            Self::Status => "status key",
            Self::Update => "update JSON, signed",
            Self::Tick => "tick JSON, signed",
            Self::Photo => "photo JSON",
            Self::Witness => "witness JSON",
        }
    }
}

/// What lives at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A scalar of this kind.
    Scalar(Kind),
    /// A map (its keys have rows of their own).
    Map,
    /// A list of scalars of this kind.
    List(Kind),
}

/// The last part of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// One key.
    One(&'static str),
    /// Each of these keys.
    Each(&'static [&'static str]),
    /// Any key that is a UUID (an action's id).
    Id,
}

impl Keys {
    /// Whether `key` is one of these.
    #[must_use]
    pub fn matches(self, key: &str) -> bool {
        match self {
            Self::One(k) => k == key,
            Self::Each(keys) => keys.contains(&key),
            Self::Id => uuid::Uuid::parse_str(key).is_ok_and(|id| id.to_string() == key),
        }
    }
}

/// One row of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The path of the map holding it (`""` for the document's root).
    pub parent: &'static str,
    /// Its key(s) in that map.
    pub keys: Keys,
    /// What it holds.
    pub shape: Shape,
    /// Who may write it: put a scalar, or make the map or list (only where none stands).
    pub set: Who,
    /// Who may insert into it (lists). Overwriting a list entry replaces it, so it needs
    /// both `insert` and `delete`.
    pub insert: Who,
    /// Who may delete it (a map key) or from it (list entries).
    pub delete: Who,
    /// Written only in the change that makes the map holding it; never after.
    pub immutable: bool,
}

impl Rule {
    /// The path of what this row describes, with `<key>` for [`Keys::Id`].
    #[must_use]
    pub fn path(&self) -> String {
        let last = match self.keys {
            Keys::One(k) => k.to_owned(),
            Keys::Each(keys) => format!("{{{}}}", keys.join(", ")),
            Keys::Id => "<id>".to_owned(),
        };
        if self.parent.is_empty() {
            last
        } else {
            format!("{}.{last}", self.parent)
        }
    }

    /// The path of the object at `key` under an object at `parent` (the form rows use).
    #[must_use]
    pub fn child_path(parent: &str, key: &str, keys: Keys) -> String {
        let last = if keys == Keys::Id { "<id>" } else { key };
        if parent.is_empty() {
            last.to_owned()
        } else {
            format!("{parent}.{last}")
        }
    }
}

const fn scalar(parent: &'static str, keys: Keys, kind: Kind, set: Who) -> Rule {
    Rule {
        parent,
        keys,
        shape: Shape::Scalar(kind),
        set,
        insert: Who::NOBODY,
        delete: set,
        immutable: false,
    }
}

const fn fixed(parent: &'static str, key: &'static str, shape: Shape) -> Rule {
    Rule {
        parent,
        keys: Keys::One(key),
        shape,
        set: Who::EVERYONE,
        insert: Who::NOBODY,
        delete: Who::NOBODY,
        immutable: true,
    }
}

const fn map(parent: &'static str, keys: Keys, set: Who) -> Rule {
    Rule {
        parent,
        keys,
        shape: Shape::Map,
        set,
        insert: Who::NOBODY,
        delete: Who::NOBODY,
        immutable: false,
    }
}

/// A list whose entries are only ever added.
const fn append_only(parent: &'static str, key: &'static str, kind: Kind, insert: Who) -> Rule {
    Rule {
        parent,
        keys: Keys::One(key),
        shape: Shape::List(kind),
        set: insert,
        insert,
        delete: Who::NOBODY,
        immutable: false,
    }
}

/// A list edited freely by those who may write it.
const fn list(parent: &'static str, key: &'static str, kind: Kind, who: Who) -> Rule {
    Rule {
        parent,
        keys: Keys::One(key),
        shape: Shape::List(kind),
        set: who,
        insert: who,
        delete: who,
        immutable: false,
    }
}

const REPORT: &str = "report";
const LOCATION: &str = "report.location";
const INJURY: &str = "report.injury";
const RESPONSE: &str = "report.response";
const ACTIONS: &str = "report.response.actions";
const ACTION: &str = "report.response.actions.<id>";
const REVIEW: &str = "report.response.review";

/// The injury details' keys (OSHA Form 301), in form order.
pub const INJURY_KEYS: &[&str] = &[
    "employee",
    "job_title",
    "work_began",
    "activity",
    "how",
    "injury",
    "body_part",
    "object",
    "treatment",
    "died_on",
];
/// The review's parts.
pub const REVIEW_KEYS: &[&str] = &[
    "summary",
    "impact",
    "timeline",
    "went_well",
    "went_badly",
    "root_cause",
    "actions",
    "lessons",
];

/// The whole policy, one row per path.
pub const RULES: &[Rule] = &[
    fixed("", "schema_version", Shape::Scalar(Kind::Int)),
    fixed("", "report", Shape::Map),
    fixed(REPORT, "id", Shape::Scalar(Kind::Bytes)),
    fixed(REPORT, "reporter", Shape::Scalar(Kind::Text)),
    fixed(REPORT, "reported_at", Shape::Scalar(Kind::Int)),
    fixed(REPORT, "drill", Shape::Scalar(Kind::Text)),
    scalar(
        REPORT,
        Keys::Each(&["title", "what_happened", "immediate_actions", "category"]),
        Kind::Text,
        Who::FACTS,
    ),
    scalar(REPORT, Keys::One("occurred_at"), Kind::Int, Who::FACTS),
    scalar(
        REPORT,
        Keys::Each(&["severity", "impact", "urgency", "outcome"]),
        Kind::Text,
        Who::FACTS,
    ),
    Rule {
        delete: Who::NOBODY,
        ..scalar(REPORT, Keys::One("status"), Kind::Status, Who::WORKFLOW)
    },
    fixed(REPORT, "location", Shape::Map),
    scalar(LOCATION, Keys::One("gps"), Kind::TextOrNull, Who::FACTS),
    scalar(LOCATION, Keys::One("place"), Kind::Text, Who::FACTS),
    list(REPORT, "people_involved", Kind::Text, Who::FACTS),
    list(REPORT, "witnesses", Kind::Witness, Who::FACTS),
    map(REPORT, Keys::One("injury"), Who::FACTS),
    scalar(INJURY, Keys::Each(INJURY_KEYS), Kind::Text, Who::FACTS),
    append_only(REPORT, "timeline", Kind::Update, Who::EVERYONE),
    append_only(REPORT, "plan_ticks", Kind::Tick, Who::EVERYONE),
    append_only(REPORT, "photos", Kind::Photo, Who::EVERYONE),
    map(REPORT, Keys::One("response"), Who::RESPONSE),
    scalar(RESPONSE, Keys::One("assignee"), Kind::Text, Who::RESPONSE),
    scalar(RESPONSE, Keys::One("due_at"), Kind::IntOrNull, Who::RESPONSE),
    list(RESPONSE, "whys", Kind::Text, Who::RESPONSE),
    list(RESPONSE, "factors", Kind::Text, Who::RESPONSE),
    map(RESPONSE, Keys::One("actions"), Who::RESPONSE),
    map(ACTIONS, Keys::Id, Who::RESPONSE),
    Rule {
        immutable: true,
        delete: Who::NOBODY,
        ..scalar(ACTION, Keys::One("id"), Kind::Text, Who::RESPONSE)
    },
    scalar(
        ACTION,
        Keys::Each(&["kind", "text", "owner", "state", "check", "check_note"]),
        Kind::Text,
        Who::PROGRESS,
    ),
    scalar(ACTION, Keys::One("due_at"), Kind::IntOrNull, Who::PROGRESS),
    map(RESPONSE, Keys::One("review"), Who::RESPONSE),
    scalar(REVIEW, Keys::Each(REVIEW_KEYS), Kind::Text, Who::RESPONSE),
];

/// Lists whose rival copies (made at once by two replicas) are all read, so a second
/// one is not refused.
pub const MERGED_RIVALS: &[&str] = &["report.photos"];

/// The row for `key` in the map at `parent`, if the policy has one.
#[must_use]
pub fn rule(parent: &str, key: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.parent == parent && r.keys.matches(key))
}

/// The row for the object at `path`, if it is a map or list the policy knows.
#[must_use]
pub fn object_rule(path: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| matches!(r.shape, Shape::Map | Shape::List(_)) && r.path() == path)
}

/// The table in Markdown, as SECURITY.md shows it.
#[must_use]
pub fn render() -> String {
    let mut out = String::from(
        "| Path | Holds | Set (F / S / A) | Insert (F / S / A) | Delete (F / S / A) | Note |\n|---|---|---|---|---|---|\n",
    );
    let who = |w: Who| {
        Role::ALL
            .iter()
            .map(|r| w.states(*r).label())
            .collect::<Vec<_>>()
            .join(" / ")
    };
    for rule in RULES {
        let holds = match rule.shape {
            Shape::Scalar(kind) => kind.label().to_owned(),
            Shape::Map => "map".to_owned(),
            Shape::List(kind) => format!("list of {}", kind.label()),
        };
        let mut note = Vec::new();
        if rule.immutable {
            note.push("only with its map, never after");
        }
        if matches!(rule.shape, Shape::List(_)) && rule.delete == Who::NOBODY {
            note.push("append-only");
        }
        if rule.shape == Shape::Scalar(Kind::Status) {
            note.push("one workflow step from the settled status; Reviewed needs the review");
        }
        if MERGED_RIVALS.contains(&rule.path().as_str()) {
            note.push("rival lists are read together");
        }
        let insert = if matches!(rule.shape, Shape::List(_)) {
            who(rule.insert)
        } else {
            "n/a".to_owned()
        };
        let _ = writeln!(
            out,
            "| `{}` | {holds} | {} | {insert} | {} | {} |",
            rule.path(),
            if rule.immutable {
                "at creation".to_owned()
            } else {
                who(rule.set)
            },
            who(rule.delete),
            note.join("; ")
        );
    }
    out
}

/// How many cells the table decides: paths × roles × states × kinds of write.
#[must_use]
pub fn cells() -> usize {
    let paths: usize = RULES
        .iter()
        .map(|r| match r.keys {
            Keys::Each(keys) => keys.len(),
            Keys::One(_) | Keys::Id => 1,
        })
        .sum();
    paths * Role::ALL.len() * Status::ALL.len() * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_exactly_one_row() {
        for (i, a) in RULES.iter().enumerate() {
            for b in &RULES[i + 1..] {
                let overlap = a.parent == b.parent
                    && match (a.keys, b.keys) {
                        (Keys::One(x), k) | (k, Keys::One(x)) => k.matches(x),
                        (Keys::Each(xs), Keys::Each(ys)) => xs.iter().any(|x| ys.contains(x)),
                        (Keys::Id, _) | (_, Keys::Id) => true,
                    };
                assert!(!overlap, "{} and {} overlap", a.path(), b.path());
            }
        }
        // Every parent is itself a map in the table (or the root).
        for rule in RULES {
            assert!(
                rule.parent.is_empty() || object_rule(rule.parent).is_some_and(|p| p.shape == Shape::Map),
                "{} has no parent map",
                rule.path()
            );
        }
    }

    #[test]
    fn the_starting_point_holds() {
        use Role::{Admin, Field, Supervisor};
        let set = |parent: &str, key: &str| rule(parent, key).unwrap();
        for key in ["id", "reporter", "reported_at"] {
            assert!(set(REPORT, key).immutable, "{key}");
        }
        let title = set(REPORT, "title");
        assert!(title.set.allows(Field, Status::Reported));
        assert!(!title.set.allows(Field, Status::Triaged));
        let severity = set(REPORT, "severity");
        assert!(!severity.set.allows(Field, Status::Triaged));
        assert!(severity.set.allows(Supervisor, Status::Triaged));
        assert!(!severity.set.allows(Supervisor, Status::Closed));
        for list in ["timeline", "plan_ticks", "photos"] {
            let r = set(REPORT, list);
            assert!(r.insert.allows(Field, Status::Closed), "{list}");
            assert_eq!(r.delete, Who::NOBODY, "{list}");
        }
        assert!(!set(REPORT, "status").set.allows(Field, Status::Reported));
        assert!(set(REPORT, "status").set.allows(Admin, Status::Closed));
        assert!(rule(REPORT, "nickname").is_none());
        assert!(rule(ACTIONS, "not-an-id").is_none());
        assert!(rule(ACTIONS, "0190aaaa-0000-7000-8000-000000000001").is_some());
    }

    /// SECURITY.md shows the table as `render` writes it. `MUSTER_WRITE_POLICY=1`
    /// writes it there.
    #[test]
    fn security_md_shows_the_policy() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../SECURITY.md");
        let text = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- policy:begin -->\n", "<!-- policy:end -->");
        let start = text.find(begin).expect("SECURITY.md has the policy markers") + begin.len();
        let stop = text.find(end).expect("SECURITY.md has the policy markers");
        if std::env::var_os("MUSTER_WRITE_POLICY").is_some() {
            let updated = format!("{}{}{}", &text[..start], render(), &text[stop..]);
            std::fs::write(path, updated).unwrap();
            return;
        }
        assert_eq!(
            &text[start..stop],
            render(),
            "SECURITY.md's policy table is stale: run MUSTER_WRITE_POLICY=1 cargo test -p app policy"
        );
    }

    #[test]
    fn the_table_renders_one_line_per_row() {
        let table = render();
        assert_eq!(table.lines().count(), RULES.len() + 2);
        assert!(table.contains("| `report.title` |") || table.contains("`report.{title"));
        assert!(cells() > RULES.len() * 18);
    }
}
