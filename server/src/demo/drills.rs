//! The demo's drills: a scenario for each demo team, a completed run of one (with its
//! drill report, its review and an improvement action for Dana), and a drill due soon.
//! Written through the same paths as phones and the desk; fixed ids, so seeding again
//! changes nothing.

use std::sync::Arc;

use app::document::{ReportDoc, actor_for, hash_hex};
use app::domain::access::{Ownership, Viewer};
use app::domain::drill::{AfterAction, Cadence, Drill, Happening, ObjectiveRating, Rating, Scenario};
use app::domain::{
    Action, ActionKind, Category, DrillEvent, PlanStep, PlanTick, Report, ReportId, Severity, Timestamp,
};
use app::merge::merge_push_checked;
use app::protocol::{Bytes, ReportPush};
use uuid::Uuid;

use super::{DEMO_SALT, DemoError};
use crate::db::{Sender, Store, Writer};
use crate::sync::{Committer, Job};

const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;

/// The fixed ids: North's scenario, South's, North's completed drill, South's drill due
/// soon, the completed run's drill report.
const IDS: [u128; 5] = [
    0x0190_0000_0000_7000_8000_0000_0000_d001,
    0x0190_0000_0000_7000_8000_0000_0000_d002,
    0x0190_0000_0000_7000_8000_0000_0000_d003,
    0x0190_0000_0000_7000_8000_0000_0000_d004,
    0x0190_0000_0000_7000_8000_0000_0000_d005,
];

fn id(n: usize) -> Uuid {
    Uuid::from_u128(IDS[n])
}

/// Seeds the drills, unless they are there already.
pub(super) async fn seed(
    committer: &Committer,
    (north, south): (Uuid, Uuid),
    dana: &Viewer,
    sam: &Viewer,
    kelly: &Viewer,
    now: Timestamp,
) -> Result<(), DemoError> {
    let store = committer.store();
    if store.scenario(id(0)).await?.is_some() {
        return Ok(());
    }
    let scenarios = [
        Scenario {
            id: id(0),
            team: north,
            title: "Worker falls from the loading dock".into(),
            category: Category::new("injury_illness"),
            objectives: vec![
                "Report the fall within two minutes".into(),
                "Make the dock safe before helping".into(),
                "First aider reaches the injured within five minutes".into(),
            ],
            injects: Scenario::parse_injects(
                "0:30 A reversing truck is still backing up to dock 2\n\
                 1:30 First aider: the worker says he cannot feel his left leg\n\
                 3 A visitor walks onto the dock to take photos",
            )
            .unwrap_or_default(),
            version: 1,
            updated_at: now,
        },
        Scenario {
            id: id(1),
            team: south,
            title: "Diesel spill at the fuel bay".into(),
            category: Category::new("environmental_release"),
            objectives: vec![
                "Stop the source within three minutes".into(),
                "Contain the spill before it reaches the drain".into(),
            ],
            injects: Scenario::parse_injects(
                "0:45 The pump's shut-off valve is stuck\n\
                 2 Supervisor: rain is forecast within the hour",
            )
            .unwrap_or_default(),
            version: 1,
            updated_at: now,
        },
    ];
    for scenario in &scenarios {
        store.save_scenario(scenario, sam.user_id, now).await?;
    }
    // North's last quarter's drill, run three weeks ago.
    let run_at = Timestamp(now.0 - 21 * DAY);
    let done = Drill {
        id: id(2),
        scenario: id(0),
        team: north,
        opens_at: Timestamp(now.0 - 30 * DAY),
        due_at: Timestamp(now.0 - 14 * DAY),
        cadence: Cadence::Quarterly,
        completed_at: None,
    };
    store.schedule_drill(&done, sam.user_id, now).await?;
    // South's, due in five days.
    let soon = Drill {
        id: id(3),
        scenario: id(1),
        team: south,
        opens_at: Timestamp(now.0 - 2 * DAY),
        due_at: Timestamp(now.0 + 5 * DAY),
        cadence: Cadence::Monthly,
        completed_at: None,
    };
    store.schedule_drill(&soon, kelly.user_id, now).await?;
    file_drill_report(committer, north, dana, run_at, now).await?;
    // What Dana's and Sam's phones recorded; Sam's end completes it and schedules the next.
    let event = |n: u128, happening, minutes: i64| DrillEvent {
        id: Uuid::from_u128(IDS[2] + (n << 16)),
        drill: id(2),
        happening,
        at: Timestamp(run_at.0 + minutes * MINUTE / 2),
    };
    store
        .record_events(
            dana.user_id,
            &[north],
            &[
                event(1, Happening::Started, 0),
                event(2, Happening::Acknowledged(0), 2),
                event(3, Happening::Acknowledged(1), 4),
            ],
            now,
        )
        .await?;
    store
        .record_events(
            sam.user_id,
            &[north],
            &[
                event(4, Happening::Started, 1),
                event(5, Happening::Acknowledged(1), 5),
                event(6, Happening::Acknowledged(2), 7),
                event(7, Happening::Ended, 16),
            ],
            now,
        )
        .await?;
    let rate = |objective: &str, rating| ObjectiveRating {
        objective: objective.to_owned(),
        rating: Some(rating),
    };
    store
        .save_drill_review(
            id(2),
            &AfterAction {
                ratings: vec![
                    rate("Report the fall within two minutes", Rating::Performed),
                    rate("Make the dock safe before helping", Rating::SomeChallenges),
                    rate(
                        "First aider reaches the injured within five minutes",
                        Rating::MajorChallenges,
                    ),
                ],
                strengths: "The fall was reported within a minute, with the dock number.".into(),
                improvements: "Nobody stopped the reversing truck; the first aider's radio was off.".into(),
                updated_at: None,
            },
            sam.user_id,
            now,
        )
        .await?;
    store
        .save_drill_action(
            id(2),
            &Action::new(
                Uuid::from_u128(IDS[2] + 0xac),
                ActionKind::Corrective,
                "Add \"stop all vehicles at the dock\" to the first step of the injury plan briefing",
                &dana.user_id.to_string(),
                Some(Timestamp(now.0 + 10 * DAY)),
            ),
            now,
        )
        .await?;
    Ok(())
}

/// Dana's drill report of the completed run, with two plan steps ticked, pushed as her
/// phone would.
async fn file_drill_report(
    committer: &Committer,
    north: Uuid,
    dana: &Viewer,
    run_at: Timestamp,
    now: Timestamp,
) -> Result<(), DemoError> {
    let store: &Store = committer.store();
    let report_id = ReportId(id(4));
    if !store.ownership(&[report_id]).await?.is_empty() {
        return Ok(());
    }
    let filed_at = Timestamp(run_at.0 + 70_000);
    let mut report = Report::blank(report_id, filed_at, &dana.name);
    report.title = "DRILL: worker fell from dock 2".into();
    report.what_happened = "Drill: a worker stepped back off dock 2 and fell about 1.2 m.".into();
    report.category = Category::new("injury_illness");
    report.severity = Severity::Major;
    report.location.place = "Warehouse North, dock 2".into();
    report.drill = Some(id(2));
    report.plan_ticks = [
        ("Whoever reports", "Make the area safe before helping", 100_000),
        ("Whoever reports", "Call a first aider (ext. 2222)", 150_000),
    ]
    .into_iter()
    .map(|(role, text, after)| {
        PlanTick::of(
            &PlanStep::new(role, text),
            &dana.name,
            dana.user_id,
            Timestamp(run_at.0 + after),
        )
    })
    .collect();
    let Ok(mut doc) = ReportDoc::create(&report, actor_for(dana.user_id, Uuid::nil(), DEMO_SALT), filed_at)
    else {
        return Ok(());
    };
    let push = ReportPush {
        id: report_id,
        heads: doc.heads().iter().map(hash_hex).collect(),
        changes: doc.changes_since(&[]).into_iter().map(Bytes).collect(),
        document: None,
    };
    let by = dana.clone();
    let merge = move |stored: Option<&[u8]>| merge_push_checked(stored, &push, now, &by);
    let writer = Writer {
        device: None,
        owner: Ownership {
            owner: Some(dana.user_id),
            team: Some(north),
            sensitive: true,
        },
        from: Some(Sender {
            user: dana.user_id,
            session: None,
        }),
    };
    committer
        .apply(
            writer,
            vec![Job {
                id: report_id,
                merge: Arc::new(merge),
            }],
            now,
        )
        .await?;
    Ok(())
}
