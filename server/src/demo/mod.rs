//! Demo mode: a dozen realistic incidents so a newcomer sees a populated app at once.
//!
//! Seeding goes through the same document and commit path as real syncs. Ids are fixed,
//! so seeding again is a no-op; times are relative to the first seeding, so the demo
//! always looks recent. One incident carries a real concurrent edit, so the
//! conflict display can be seen too.

use std::sync::Arc;

use app::document::{ReportDoc, actor_for, hash_hex};
use app::domain::access::{Ownership, Role, Viewer};
use app::domain::{
    Action, ActionKind, ActionState, Category, Effectiveness, GpsFix, Impact, Injury, Location, Outcome,
    Report, ReportId, Response, Review, Severity, Status, TimelineEntry, Timestamp, Treatment, Urgency,
    Witness,
};
use app::merge::merge_push_checked;
use app::protocol::{Bytes, ReportPush};

use crate::accounts::{AccountError, NewUser};
use crate::db::{Store, Writer};
use crate::sync::{ApplyError, Committer, Job};

mod drills;

const HOUR: i64 = 3_600_000;
/// The time encoded in the demo reports' fixed ids (2025-11-20 08:00 UTC).
const ID_BASE: i64 = 1_763_625_600_000;

struct Sample {
    hours_ago: i64,
    title: &'static str,
    category: &'static str,
    severity: Severity,
    status: Status,
    /// The gravest outcome the law requires reporting (injuries only).
    outcome: Outcome,
    place: &'static str,
    gps: Option<(f64, f64, f64)>,
    reporter: &'static str,
    people: &'static [&'static str],
    what: &'static str,
    actions: &'static str,
}

const SAMPLES: [Sample; 12] = [
    Sample {
        hours_ago: 2,
        title: "Forklift clipped pallet racking",
        category: "property_damage",
        severity: Severity::Moderate,
        status: Status::Reported,
        outcome: Outcome::None,
        place: "Warehouse B, aisle 14",
        gps: Some((53.4794, -2.2453, 6.0)),
        reporter: "Dana Okafor",
        people: &["Luis Ortega (driver)"],
        what: "While reversing, the forklift mast caught the upright of bay 14C. The upright is bent about 3 cm at knee height; no load fell.",
        actions: "Bay 14C emptied and taped off. Forklift parked and keys handed to the shift lead.",
    },
    Sample {
        hours_ago: 5,
        title: "Worker cut hand on sheet metal edge",
        category: "injury_illness",
        severity: Severity::Major,
        status: Status::Triaged,
        outcome: Outcome::Hospitalised,
        place: "Fabrication shop, press line 2",
        gps: None,
        reporter: "Priya Raman",
        people: &["Tom Becker (injured)", "Aisha Khan (first aider)"],
        what: "Tom was unloading blanks without cut-resistant gloves and the edge of a blank cut his left palm. Deep cut, about 4 cm.",
        actions: "First aid given, wound dressed. Tom taken to hospital, where he was kept in overnight to repair a tendon.",
    },
    Sample {
        hours_ago: 9,
        title: "Near miss: unsecured load on mezzanine",
        category: "near_miss",
        severity: Severity::Moderate,
        status: Status::Investigating,
        outcome: Outcome::None,
        place: "Distribution centre, mezzanine edge",
        gps: None,
        reporter: "Marek Nowak",
        people: &["Marek Nowak"],
        what: "A box slid off the mezzanine edge and landed on the walkway below, about two metres from a colleague. Kick plate missing on that section.",
        actions: "Walkway below closed. Temporary barrier placed along the edge.",
    },
    Sample {
        hours_ago: 20,
        title: "Diesel spill at refuelling point",
        category: "environmental_release",
        severity: Severity::Major,
        status: Status::Resolved,
        outcome: Outcome::None,
        place: "Depot yard, fuel island 1",
        gps: Some((51.4545, -2.5879, 12.0)),
        reporter: "Sam Whitfield",
        people: &["Sam Whitfield", "Kelly Grant"],
        what: "The nozzle auto-shutoff failed and about 40 litres of diesel overflowed onto the apron, some reaching the drain cover.",
        actions: "Spill kit used, drain covered, interceptor checked. Pump isolated and tagged out.",
    },
    Sample {
        hours_ago: 27,
        title: "Tailgating through secure door",
        category: "security",
        severity: Severity::Minor,
        status: Status::Closed,
        outcome: Outcome::None,
        place: "Head office, server room corridor",
        gps: None,
        reporter: "Jo Martins",
        people: &[],
        what: "An unknown person followed a contractor through the badge door to the server room corridor. Challenged, they said they were looking for the canteen.",
        actions: "Escorted out to reception. Badge logs saved.",
    },
    Sample {
        hours_ago: 33,
        title: "Van reversed into bollard",
        category: "vehicle",
        severity: Severity::Minor,
        status: Status::Reviewed,
        outcome: Outcome::None,
        place: "Customer site, Harbour Road loading dock",
        gps: Some((50.3714, -4.1422, 20.0)),
        reporter: "Ellis Brown",
        people: &["Ellis Brown (driver)"],
        what: "Reversing without a banksman, rear bumper hit a steel bollard at walking speed. Bumper cracked, no injuries.",
        actions: "Photographed the damage, informed the fleet desk.",
    },
    Sample {
        hours_ago: 41,
        title: "Conveyor motor tripped twice",
        category: "equipment_failure",
        severity: Severity::Moderate,
        status: Status::Triaged,
        outcome: Outcome::None,
        place: "Sortation hall, conveyor C3",
        gps: None,
        reporter: "Nadia Haddad",
        people: &[],
        what: "C3 drive motor tripped on overload at 06:10 and 06:45. Burning smell near the gearbox the second time.",
        actions: "Conveyor locked out. Maintenance called.",
    },
    Sample {
        hours_ago: 50,
        title: "Scanner network down in goods-in",
        category: "operational_outage",
        severity: Severity::Moderate,
        status: Status::Resolved,
        outcome: Outcome::None,
        place: "Goods-in office",
        gps: None,
        reporter: "Chris Adeyemi",
        people: &[],
        what: "Handheld scanners lost connection for 55 minutes; receipts were written on paper and keyed in later.",
        actions: "Switched to the paper fallback procedure. IT ticket raised.",
    },
    Sample {
        hours_ago: 70,
        title: "Slip on wet floor near handwash station",
        category: "injury_illness",
        severity: Severity::Minor,
        status: Status::Reported,
        outcome: Outcome::None,
        place: "Canteen, east entrance",
        gps: None,
        reporter: "Rosa Lindqvist",
        people: &["Ben Carter"],
        what: "Ben slipped on water pooled below the handwash station and bruised his elbow. No wet-floor sign was out.",
        actions: "Floor mopped, sign placed, facilities told the basin leaks.",
    },
    Sample {
        hours_ago: 96,
        title: "Gas smell reported in plant room",
        category: "other",
        severity: Severity::Critical,
        status: Status::Investigating,
        outcome: Outcome::None,
        place: "Building 2, basement plant room",
        gps: None,
        reporter: "Hamid Rezaei",
        people: &["Hamid Rezaei", "Grace Liu"],
        what: "Strong smell of gas on entering the plant room during the morning round. Detector had not alarmed.",
        actions: "Building 2 evacuated, gas supply isolated at the meter, utility emergency line called.",
    },
    Sample {
        hours_ago: 120,
        title: "Ladder with cracked stile in use",
        category: "near_miss",
        severity: Severity::Minor,
        status: Status::Closed,
        outcome: Outcome::None,
        place: "Stores, racking row A",
        gps: None,
        reporter: "Olga Petrova",
        people: &[],
        what: "Noticed a colleague using a step ladder whose left stile was cracked through. Nobody fell.",
        actions: "Ladder removed from use and labelled for disposal.",
    },
    Sample {
        hours_ago: 150,
        title: "Chemical drum leaking in bunded store",
        category: "environmental_release",
        severity: Severity::Moderate,
        status: Status::Reported,
        outcome: Outcome::None,
        place: "Chemical store, bund 3",
        gps: Some((52.2053, 0.1218, 9.0)),
        reporter: "Femi Adebayo",
        people: &[],
        what: "A 200 l drum of degreaser is weeping from the bottom seam; about 5 l contained in the bund.",
        actions: "Drum over-packed, bund contents absorbed, SDS checked.",
    },
];

fn report_of(index: usize, sample: &Sample, now: Timestamp) -> Report {
    let reported = Timestamp(now.0 - sample.hours_ago * HOUR);
    let random = [u8::try_from(index + 1).unwrap_or(u8::MAX); 10];
    Report {
        id: ReportId::new_v7(Timestamp(ID_BASE - sample.hours_ago * HOUR), random),
        title: sample.title.to_owned(),
        what_happened: sample.what.to_owned(),
        category: Category::new(sample.category),
        severity: sample.severity,
        // The demo judged impact and urgency alike, from the severity.
        impact: match sample.severity {
            Severity::Critical | Severity::Major => Impact::High,
            Severity::Moderate => Impact::Medium,
            Severity::Minor => Impact::Low,
        },
        urgency: match sample.severity {
            Severity::Critical => Urgency::High,
            Severity::Major | Severity::Moderate => Urgency::Medium,
            Severity::Minor => Urgency::Low,
        },
        outcome: sample.outcome,
        occurred_at: Timestamp(reported.0 - HOUR / 2),
        reported_at: reported,
        location: Location {
            gps: sample.gps.map(|(latitude, longitude, accuracy_m)| GpsFix {
                latitude,
                longitude,
                accuracy_m,
            }),
            place: sample.place.to_owned(),
        },
        reporter: sample.reporter.to_owned(),
        people_involved: sample.people.iter().map(|p| (*p).to_owned()).collect(),
        immediate_actions: sample.actions.to_owned(),
        timeline: Vec::new(),
        status: Status::Reported,
        plan_ticks: Vec::new(),
        response: if sample.title.starts_with("Ladder") {
            ladder_review(reported)
        } else {
            Response::default()
        },
        injury: if sample.category == "injury_illness" {
            slip_injury()
        } else {
            Injury::default()
        },
        witnesses: if sample.title.starts_with("Slip") {
            vec![Witness {
                name: "Rosa Lindqvist".to_owned(),
                contact: "Canteen team, ext. 214".to_owned(),
                statement: "Saw Ben lose his footing by the basin; the floor there was wet and unmarked."
                    .to_owned(),
            }]
        } else {
            Vec::new()
        },
        photos: Vec::new(),
        drill: None,
    }
}

/// The canteen slip's OSHA 301 details (privacy-sensitive: the demo's field employee of
/// another team sees the report but not these).
fn slip_injury() -> Injury {
    Injury {
        employee: "Ben Carter".to_owned(),
        job_title: "Kitchen porter".to_owned(),
        work_began: "06:00".to_owned(),
        activity: "Carrying a tray of cups from the handwash station to the servery.".to_owned(),
        how: "Slipped on water pooled below the leaking basin and fell onto his left side.".to_owned(),
        injury: "Bruised elbow".to_owned(),
        body_part: "Left elbow".to_owned(),
        object: "Wet floor".to_owned(),
        treatment: Treatment::FirstAid,
        died_on: String::new(),
    }
}

/// The closed ladder near miss, investigated and reviewed, so a newcomer sees a whole
/// response and the lessons its reporter is shown.
fn ladder_review(reported: Timestamp) -> Response {
    let action = |n: u128, kind, text: &str, state, check| Action {
        state,
        check,
        ..Action::new(
            uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 + n),
            kind,
            text,
            "",
            Some(Timestamp(reported.0 + 72 * HOUR)),
        )
    };
    Response {
        assignee: String::new(),
        due_at: Some(Timestamp(reported.0 + 96 * HOUR)),
        whys: vec![
            "A cracked ladder was in use.".into(),
            "Nobody had checked it before use.".into(),
            "Ladders are not on the pre-use inspection list.".into(),
        ],
        factors: vec!["Busy stock count".into(), "Only one step ladder in Stores".into()],
        actions: vec![
            action(
                1,
                ActionKind::Corrective,
                "Add ladders to the weekly pre-use inspection list",
                ActionState::Done,
                Effectiveness::Effective,
            ),
            action(
                2,
                ActionKind::Preventive,
                "Buy a second step ladder for Stores",
                ActionState::Done,
                Effectiveness::NotChecked,
            ),
        ],
        review: Review {
            summary: "A step ladder with a cracked stile was used during the stock count; nobody fell."
                .into(),
            root_cause: "Ladders were missing from the pre-use inspection list.".into(),
            went_well: "The colleague who noticed stopped the work at once.".into(),
            lessons:
                "Check a ladder's stiles and feet before every use, and tag a damaged one out straight away."
                    .into(),
            ..Review::default()
        },
    }
}

/// The demo's teams (sites).
pub const DEMO_TEAMS: [&str; 2] = ["Warehouse North", "Depot South"];

/// The demo's people, one of each role: (login, password, name, role, teams). Their
/// passwords are public (README): demo mode is for trying Muster out, never for real data.
pub const DEMO_USERS: [(&str, &str, &str, Role, &[&str]); 4] = [
    (
        "dana",
        "dana-field-demo",
        "Dana Okafor",
        Role::Field,
        &["Warehouse North"],
    ),
    (
        "sam",
        "sam-supervisor-demo",
        "Sam Okafor",
        Role::Supervisor,
        &["Warehouse North"],
    ),
    (
        "kelly",
        "kelly-supervisor-demo",
        "Kelly Grant",
        Role::Supervisor,
        &["Depot South"],
    ),
    ("admin", "admin-muster-demo", "Alex Admin", Role::Admin, &[]),
];

/// The demo accounts as the sign-in page lists them.
#[must_use]
pub fn accounts() -> app::pages::DemoMode {
    app::pages::DemoMode(
        DEMO_USERS
            .iter()
            .map(|(login, password, _, role, teams)| app::pages::DemoAccount {
                login: (*login).to_owned(),
                password: (*password).to_owned(),
                role: role.label().to_owned(),
                teams: if teams.is_empty() {
                    "all".to_owned()
                } else {
                    teams.join(", ")
                },
            })
            .collect(),
    )
}

/// Creates the demo people that do not exist yet; returns how many were added.
pub async fn seed_users(store: &Store, now: Timestamp) -> Result<usize, AccountError> {
    let existing: Vec<String> = store.users().await?.into_iter().map(|u| u.login).collect();
    let mut added = 0;
    for (login, password, name, role, teams) in DEMO_USERS {
        if existing.iter().any(|e| e == login) {
            continue;
        }
        store
            .create_user(
                NewUser {
                    login: login.to_owned(),
                    name: name.to_owned(),
                    role,
                    password: password.to_owned(),
                    teams: teams.iter().map(|t| (*t).to_owned()).collect(),
                },
                now,
            )
            .await?;
        added += 1;
    }
    Ok(added)
}

/// The demo's response plans: (category, steps as the plan editor takes them).
const DEMO_PLANS: [(&str, &str); 2] = [
    (
        "injury_illness",
        "Whoever reports: Make the area safe before helping\n\
         Whoever reports: Call a first aider (ext. 2222)\n\
         First aider: Treat the injured person; call 112 if in doubt\n\
         Whoever reports: Tell the supervisor on duty\n\
         Supervisor: Keep the scene as it is until photos are taken",
    ),
    (
        "environmental_release",
        "Whoever reports: Stop the source if it is safe to\n\
         Whoever reports: Contain the spill with the nearest spill kit\n\
         Supervisor: Check whether it reached a drain; if so, call the environment agency",
    ),
];

/// Seeds the demo's response plans for categories that have none.
async fn seed_plans(store: &Store, now: Timestamp) -> Result<(), DemoError> {
    let existing = store.plans().await?;
    for (category, steps) in DEMO_PLANS {
        if existing.iter().any(|p| p.category.0 == category) {
            continue;
        }
        let steps = app::domain::Plan::parse_steps(steps).unwrap_or_default();
        store.set_plan(category, &steps, uuid::Uuid::nil(), now).await?;
    }
    Ok(())
}

/// Seeds the sample incidents that are not stored yet (the demo people first, so they
/// can own them). Returns how many incidents were added.
pub async fn seed(committer: &Committer, now: Timestamp) -> Result<usize, DemoError> {
    let store = committer.store();
    seed_users(store, now).await?;
    seed_plans(store, now).await?;
    let north = store.ensure_team(DEMO_TEAMS[0], now).await?;
    let south = store.ensure_team(DEMO_TEAMS[1], now).await?;
    let person = |login: &'static str| async move {
        let id = store
            .users()
            .await?
            .into_iter()
            .find(|u| u.login == login)
            .map(|u| u.id);
        match id {
            Some(id) => Ok::<_, DemoError>(store.viewer(id).await?),
            None => Ok(None),
        }
    };
    let (Some(dana), Some(sam), Some(kelly), Some(admin)) = (
        person("dana").await?,
        person("sam").await?,
        person("kelly").await?,
        person("admin").await?,
    ) else {
        return Ok(0);
    };
    let reports: Vec<Report> = SAMPLES
        .iter()
        .enumerate()
        .map(|(index, sample)| report_of(index, sample, now))
        .collect();
    let ids: Vec<ReportId> = reports.iter().map(|r| r.id).collect();
    let stored = store.ownership(&ids).await?;
    let mut added = 0;
    for (index, (sample, report)) in SAMPLES.iter().zip(reports).enumerate() {
        // Only stored if not there yet: seeding again changes nothing.
        if stored.contains_key(&report.id) {
            continue;
        }
        let owner = Ownership {
            owner: (sample.reporter == "Dana Okafor").then_some(dana.user_id),
            team: Some(if index % 3 == 2 { south } else { north }),
            sensitive: false,
        };
        // Each step is written and pushed as the person who made it, through the same
        // write policy as every device's sync.
        let filer = if owner.owner.is_some() { &dana } else { &sam };
        for (by, push) in demo_history(index, sample, report, filer, &sam, &admin, now) {
            let merge = move |stored: Option<&[u8]>| merge_push_checked(stored, &push, now, &by);
            let writer = Writer {
                device: None,
                owner,
                from: Some(crate::db::Sender {
                    user: filer.user_id,
                    session: None,
                }),
            };
            let job = Job {
                id: ids[index],
                merge: Arc::new(merge),
            };
            committer.apply(writer, vec![job], now).await?;
        }
        added += 1;
    }
    drills::seed(committer, (north, south), &dana, &sam, &kelly, now).await?;
    Ok(added)
}

/// The demo's salt in actor ids (see [`actor_for`]): fixed, so the seed is the same
/// every time.
const DEMO_SALT: [u8; 4] = [0xde, 0xe0, 0, 0];

/// A sample's history as pushes, each with the person who makes it: filed by `filer`;
/// walked through the workflow by `sam` (with the ladder's review on the way); for one
/// sample, re-rated at once by `sam` and `admin` (a conflict to show).
fn demo_history(
    index: usize,
    sample: &Sample,
    report: Report,
    filer: &Viewer,
    sam: &Viewer,
    admin: &Viewer,
    now: Timestamp,
) -> Vec<(Viewer, ReportPush)> {
    let mut pushes = Vec::new();
    let at_step = |step: i64| Timestamp((report.reported_at.0 + HOUR * step).min(now.0));
    let filed = Report {
        response: Response::default(),
        ..report.clone()
    };
    let Ok(mut doc) = ReportDoc::create(
        &filed,
        actor_for(filer.user_id, uuid::Uuid::nil(), DEMO_SALT),
        filed.reported_at,
    ) else {
        return pushes;
    };
    let id = filed.id;
    let mut since = Vec::new();
    let mut push = |doc: &mut ReportDoc, since: &mut Vec<automerge::ChangeHash>, by: &Viewer| {
        let changes: Vec<Bytes> = doc.changes_since(since).into_iter().map(Bytes).collect();
        *since = doc.heads();
        pushes.push((
            by.clone(),
            ReportPush {
                id,
                heads: since.iter().map(hash_hex).collect(),
                changes,
                document: None,
            },
        ));
    };
    push(&mut doc, &mut since, filer);
    let mut current = filed;
    doc.set_actor(actor_for(sam.user_id, uuid::Uuid::nil(), DEMO_SALT));
    let mut response = report.response.clone();
    if sample.status >= Status::Reviewed && response.review.summary.is_empty() {
        // Reviewed needs a review, in the demo as anywhere.
        response.review.summary = format!("{}: dealt with on the day, no one hurt.", sample.title);
        response.review.lessons =
            "Reporting it straight away let the team act before anyone was hurt.".into();
    }
    if response != Response::default() {
        // The supervisor's investigation and review, written before they are needed.
        let next = Report {
            response,
            ..current.clone()
        };
        let _ = doc.edit(&current, &next, at_step(1));
        current = next;
    }
    // A supervisor walked it through the workflow.
    for (step, status) in Status::ALL.into_iter().enumerate().skip(1) {
        if current.status == sample.status {
            break;
        }
        let at = at_step(i64::try_from(step).unwrap_or(1));
        let mut next = Report {
            status,
            ..current.clone()
        };
        next.timeline.push(TimelineEntry {
            id: uuid::Uuid::from_u128((u128::try_from(index).unwrap_or(0) << 8) | step as u128),
            at,
            author: sam.name.clone(),
            author_id: Some(sam.user_id),
            text: format!("Moved to {}.", status.label()),
            audience: Default::default(),
        });
        let _ = doc.edit(&current, &next, at);
        current = next;
    }
    if doc.heads() != since {
        push(&mut doc, &mut since, sam);
    }
    if index == 2 {
        // Two people re-rated this one at the same time: show the conflict.
        let at = at_step(2);
        let base = doc.clone();
        for (by, severity) in [(sam, Severity::Major), (admin, Severity::Critical)] {
            let mut rater = base.clone();
            rater.set_actor(actor_for(by.user_id, uuid::Uuid::nil(), DEMO_SALT));
            let rated = Report {
                severity,
                ..current.clone()
            };
            let _ = rater.edit(&current, &rated, at);
            let mut from = since.clone();
            push(&mut rater, &mut from, by);
        }
    }
    pushes
}

/// Why the demo could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The demo people could not be created.
    #[error("demo accounts: {0}")]
    Accounts(#[from] AccountError),
    /// A database read failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The demo incidents could not be stored.
    #[error("demo incidents: {0}")]
    Apply(#[from] ApplyError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_a_valid_report() {
        for (i, s) in SAMPLES.iter().enumerate() {
            let now = Timestamp(ID_BASE);
            let r = report_of(i, s, now);
            assert_eq!(r.validate(now), Ok(()), "{}", s.title);
        }
    }
}
