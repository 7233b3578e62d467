//! Access control over real HTTP: every role × every page, server function and sync
//! operation × own / same-team / other-team report, on both databases; what a field
//! employee's device receives from a database holding another team's reports; revoked
//! sessions; sign-in throttling.

use std::collections::{BTreeSet, HashMap};

use app::document::{ReportDoc, actor_for, actor_from_uuid, hash_hex};
use app::domain::access::Role;
use app::domain::{Report, ReportId, Timestamp};
use app::protocol::{Bytes, ErrorCode, ReportPush, SyncError, SyncRequest};
use leptos::server_fn::ServerFn;
use muster_tests::{
    Db, Device, T0, TestServer, add_user, add_user_with_session, client_with_session, on_both_databases,
    post_as,
};

on_both_databases!(
    every_change_is_tied_to_its_author_and_the_report_page_says_who_changed_what,
    every_role_on_every_route_and_report_is_allowed_or_denied_as_the_matrix_says,
    a_field_employee_receives_nothing_of_another_team,
    a_revoked_session_is_refused_at_once_even_after_days_offline,
    injury_details_are_seen_only_by_the_reporter_the_team_supervisors_and_admins,
);

/// Who acts: nobody signed in, or a person of a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Actor {
    Nobody,
    Field,
    Supervisor,
    Admin,
}

/// Which report an operation is about, seen from the actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Whose {
    /// Filed by the actor.
    Own,
    /// Filed by someone else of the actor's team.
    Team,
    /// Filed in another team.
    Other,
}

/// What each actor may do with each report, written out by hand (not computed by the
/// code under test): (read, write).
fn expected(actor: Actor, whose: Whose) -> (bool, bool) {
    match (actor, whose) {
        (Actor::Nobody, _) | (Actor::Field | Actor::Supervisor, Whose::Other) => (false, false),
        (Actor::Field, Whose::Own) | (Actor::Supervisor | Actor::Admin, _) => (true, true),
        (Actor::Field, Whose::Team) => (true, false),
    }
}

struct World {
    server: TestServer,
    tokens: HashMap<Actor, String>,
    names: HashMap<Actor, String>,
    users: HashMap<Actor, uuid::Uuid>,
    /// (filed by, id, title)
    reports: Vec<(&'static str, ReportId, String)>,
    /// A scenario and a drill of team A.
    drill: (uuid::Uuid, uuid::Uuid),
}

const TEAM_A: &str = "North site";
const TEAM_B: &str = "South site";

/// Files a report as `who` (user, token, session) over the sync API; returns its id.
async fn file(
    server: &TestServer,
    who: &(uuid::Uuid, String, uuid::Uuid),
    name: &str,
    n: u8,
    title: &str,
) -> ReportId {
    let mut device = Device::new(n);
    device.sign_in_as(who.0, who.2, &who.1);
    let mut report = Report::blank(ReportId::new_v7(T0, [n; 10]), T0, name);
    report.title = title.to_owned();
    report.location.place = "Yard".into();
    let id = device.create_report(&report);
    device.sync(&server.base).await.unwrap();
    id
}

async fn world(db: Db) -> Option<World> {
    let server = TestServer::start_on(db).await?;
    let store = &server.store;
    let mut tokens = HashMap::new();
    let mut names = HashMap::new();
    let mut users = HashMap::new();
    let mut sessions = HashMap::new();
    for (actor, login, role, teams) in [
        (Actor::Field, "fa", Role::Field, &[TEAM_A][..]),
        (Actor::Supervisor, "sa", Role::Supervisor, &[TEAM_A][..]),
        (Actor::Admin, "ad", Role::Admin, &[][..]),
    ] {
        let signed = add_user_with_session(store, login, role, teams).await;
        tokens.insert(actor, signed.1.clone());
        names.insert(actor, format!("{login} (test)"));
        users.insert(actor, signed.0);
        sessions.insert(actor, signed);
    }
    let teammate = add_user_with_session(store, "fa2", Role::Field, &[TEAM_A]).await;
    let stranger = add_user_with_session(store, "fb", Role::Field, &[TEAM_B]).await;
    let mut reports = Vec::new();
    for (who, signed, name, n) in [
        (
            "fa",
            sessions[&Actor::Field].clone(),
            names[&Actor::Field].clone(),
            1,
        ),
        (
            "sa",
            sessions[&Actor::Supervisor].clone(),
            names[&Actor::Supervisor].clone(),
            2,
        ),
        (
            "ad",
            sessions[&Actor::Admin].clone(),
            names[&Actor::Admin].clone(),
            3,
        ),
        ("fa2", teammate, "fa2 (test)".to_owned(), 4),
        ("fb", stranger, "fb (test)".to_owned(), 5),
    ] {
        let title = format!("Report filed by {who} q9z");
        let id = file(&server, &signed, &name, n, &title).await;
        reports.push((who, id, title));
    }
    let team_a = store
        .viewer(users[&Actor::Supervisor])
        .await
        .unwrap()
        .unwrap()
        .teams[0];
    let scenario = app::domain::drill::Scenario {
        id: uuid::Uuid::now_v7(),
        team: team_a,
        title: "Spill in the yard".into(),
        category: app::domain::Category::new("injury_illness"),
        objectives: vec!["Contain it".into()],
        injects: Vec::new(),
        version: 0,
        updated_at: T0,
    };
    store
        .save_scenario(&scenario, users[&Actor::Supervisor], T0)
        .await
        .unwrap();
    let drill = app::domain::drill::Drill {
        id: uuid::Uuid::now_v7(),
        scenario: scenario.id,
        team: team_a,
        opens_at: T0,
        due_at: T0,
        cadence: app::domain::drill::Cadence::Once,
        completed_at: None,
    };
    store
        .schedule_drill(&drill, users[&Actor::Supervisor], T0)
        .await
        .unwrap();
    Some(World {
        server,
        tokens,
        names,
        users,
        reports,
        drill: (scenario.id, drill.id),
    })
}

impl World {
    /// An actor of `actor`'s person (anyone's for nobody), made distinct by `n`.
    fn actor_of(&self, actor: Actor, n: u32) -> automerge::ActorId {
        let user = self.users.get(&actor).copied().unwrap_or_default();
        actor_for(user, uuid::Uuid::nil(), n.to_be_bytes())
    }

    fn client(&self, actor: Actor) -> reqwest::Client {
        match self.tokens.get(&actor) {
            Some(token) => client_with_session(token),
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// The report `whose` is, from `actor`'s side.
    fn report(&self, actor: Actor, whose: Whose) -> (ReportId, String) {
        let by = match (actor, whose) {
            (Actor::Field, Whose::Own) | (Actor::Nobody, Whose::Own) => "fa",
            (Actor::Supervisor, Whose::Own) => "sa",
            (Actor::Admin, Whose::Own) => "ad",
            (_, Whose::Team) => "fa2",
            (_, Whose::Other) => "fb",
        };
        let (_, id, title) = self.reports.iter().find(|(who, ..)| *who == by).unwrap();
        (*id, title.clone())
    }

    async fn text(&self, actor: Actor, path: &str) -> (u16, String) {
        let response = self
            .client(actor)
            .get(format!("{}{path}", self.server.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        // A page whose body stalls says which.
        let body = response.text().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        (status, body)
    }

    async fn server_fn(&self, actor: Actor, path: &str, form: &str) -> (u16, String) {
        let response = self
            .client(actor)
            .post(format!("{}{path}", self.server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The report as stored now (read as an administrator would).
    async fn current(&self, id: ReportId) -> (Report, Vec<u8>) {
        let stored = self.server.store.load_doc(id).await.unwrap().unwrap();
        let doc = ReportDoc::load(&stored.doc, actor_from_uuid(uuid::Uuid::nil())).unwrap();
        (doc.read().unwrap(), stored.doc)
    }

    async fn sync(&self, actor: Actor, reports: Vec<ReportPush>) -> (u16, Vec<u8>) {
        let request = SyncRequest::new(uuid::Uuid::from_u128(0xd0), reports);
        post_as(
            &reqwest::Client::new(),
            &self.server.base,
            self.tokens.get(&actor).map(String::as_str),
            serde_json::to_vec(&request).unwrap(),
        )
        .await
        .unwrap()
    }

    /// Pushes `change` to the stored report from a device of `actor` (distinct by `n`);
    /// returns the status and the report as pushed.
    async fn push_edit(
        &self,
        actor: Actor,
        id: ReportId,
        n: u32,
        change: impl FnOnce(&mut Report),
    ) -> (u16, Report) {
        let (report, doc) = self.current(id).await;
        let mut device_doc = ReportDoc::load(&doc, self.actor_of(actor, n)).unwrap();
        let old_heads = device_doc.heads();
        let mut pushed = report.clone();
        change(&mut pushed);
        device_doc.edit(&report, &pushed, T0).unwrap();
        let push = ReportPush {
            id,
            heads: device_doc.heads().iter().map(hash_hex).collect(),
            changes: device_doc
                .changes_since(&old_heads)
                .into_iter()
                .map(Bytes)
                .collect(),
            document: None,
        };
        (self.sync(actor, vec![push]).await.0, pushed)
    }

    /// Every report operation, as `actor` on the report `whose`: (operation, allowed?).
    async fn report_operations(&self, actor: Actor, whose: Whose, n: &mut u32) -> Vec<(&'static str, bool)> {
        let (id, title) = self.report(actor, whose);
        let mut out = Vec::new();
        let (_, page) = self.text(actor, &format!("/incidents/{id}")).await;
        out.push(("GET /incidents/:id", page.contains(&title)));
        let (_, list) = self.text(actor, "/incidents").await;
        out.push(("GET /incidents", list.contains(&title)));
        let (status, csv) = self.text(actor, "/export/incidents.csv").await;
        out.push(("GET /export/incidents.csv", status == 200 && csv.contains(&title)));
        let (_, listed) = self.server_fn(actor, app::desk::ListIncidents::PATH, "").await;
        out.push((app::desk::ListIncidents::PATH, listed.contains(&title)));
        let (_, got) = self
            .server_fn(actor, app::desk::GetIncident::PATH, &format!("id={id}"))
            .await;
        out.push((app::desk::GetIncident::PATH, got.contains(&title)));

        *n += 1;
        let (base, _) = self.current(id).await;
        let mut edited = base.clone();
        edited.what_happened = format!("Edited through the desk {n}");
        let body = serde_json::json!({ "base": base, "edited": edited }).to_string();
        let response = self
            .client(actor)
            .post(format!("{}{}", self.server.base, app::desk::EditIncident::PATH))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let edit_ok = response.status().is_success();
        out.push((app::desk::EditIncident::PATH, edit_ok));
        let stored_edit = self.current(id).await.0.what_happened == edited.what_happened;
        assert_eq!(
            stored_edit, edit_ok,
            "{actor:?} edit of {whose:?}: stored iff allowed"
        );

        let before = self.current(id).await.0.timeline.len();
        let (status, _) = self
            .server_fn(
                actor,
                app::desk::AddUpdate::PATH,
                &format!("id={id}&text=Update%20{n}&audience=team"),
            )
            .await;
        let after = self.current(id).await.0.timeline.len();
        assert_eq!(
            after > before,
            status == 200,
            "{actor:?} update of {whose:?}: stored iff allowed"
        );
        out.push((app::desk::AddUpdate::PATH, status == 200));

        // Settling a field with no concurrent values writes nothing but answers as a write.
        let before = self.server.store.load_doc(id).await.unwrap().unwrap().heads;
        let (status, _) = self
            .server_fn(
                actor,
                app::desk::ChooseValue::PATH,
                &format!("id={id}&field=title&value=Anything"),
            )
            .await;
        assert_eq!(
            self.server.store.load_doc(id).await.unwrap().unwrap().heads,
            before
        );
        out.push((app::desk::ChooseValue::PATH, status == 200));

        let before = self.current(id).await.0.response.actions.len();
        let body = serde_json::json!({
            "id": id,
            "action": { "kind": "corrective", "text": format!("Action {n}"), "owner": "", "due_at": null },
        })
        .to_string();
        let response = self
            .client(actor)
            .post(format!("{}{}", self.server.base, app::desk::AddAction::PATH))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let added = response.status().is_success();
        let after = self.current(id).await.0.response.actions.len();
        assert_eq!(
            after > before,
            added,
            "{actor:?} action on {whose:?}: stored iff allowed"
        );
        out.push((app::desk::AddAction::PATH, added));

        let pull = ReportPush {
            id,
            heads: Vec::new(),
            changes: Vec::new(),
            document: None,
        };
        let (status, bytes) = self.sync(actor, vec![pull]).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        out.push((
            "POST /api/sync (pull)",
            status == 200 && text.contains("\"changes\":[\""),
        ));

        *n += 1;
        let text = format!("Pushed by a device {n}");
        let (status, pushed) = self
            .push_edit(actor, id, *n, |r| r.immediate_actions = text)
            .await;
        let stored_push = self.current(id).await.0.immediate_actions == pushed.immediate_actions;
        assert_eq!(
            stored_push,
            status == 200,
            "{actor:?} push to {whose:?}: stored iff allowed"
        );
        out.push(("POST /api/sync (push)", status == 200));

        // A photo the report names (added by an administrator's device).
        *n += 1;
        let bytes = muster_tests::jpeg(16, 16, u64::from(*n));
        let named = app::domain::PhotoRef::of(&bytes, T0).unwrap();
        let photo = named.clone();
        let (status, _) = self
            .push_edit(Actor::Admin, id, *n, |r| r.photos.push(photo))
            .await;
        assert_eq!(status, 200);
        let client = self.client(actor);
        let base = self.server.base.as_str();
        let sha = named.sha256.as_str();
        let head = muster_tests::photo_request(&client, base, reqwest::Method::HEAD, id, sha, None).await;
        out.push((
            "HEAD /api/reports/{id}/photos/{sha256}",
            head.status == 200 && head.offset == Some(0),
        ));
        let upload = muster_tests::upload_photo(&client, base, id, sha, &bytes, 0).await;
        let stored = self.server.store.photo(id, sha).await.unwrap().is_some();
        assert_eq!(
            stored,
            upload.status == 204,
            "{actor:?} photo upload to {whose:?}: stored iff allowed"
        );
        out.push(("PATCH /api/reports/{id}/photos/{sha256}", upload.status == 204));
        if !stored {
            let admin = self.client(Actor::Admin);
            assert_eq!(
                muster_tests::upload_photo(&admin, base, id, sha, &bytes, 0)
                    .await
                    .status,
                204
            );
        }
        let got = muster_tests::photo_request(&client, base, reqwest::Method::GET, id, sha, None).await;
        out.push((
            "GET /api/reports/{id}/photos/{sha256}",
            got.status == 200 && got.body == bytes,
        ));
        out
    }

    /// Operations on no report: (operation, allowed?).
    /// The team of the world's drill.
    async fn drill_team(&self) -> uuid::Uuid {
        let store = &self.server.store;
        store.drill(self.drill.1).await.unwrap().unwrap().team
    }

    async fn other_operations(&self, actor: Actor) -> Vec<(&'static str, bool)> {
        let mut out = Vec::new();
        for path in ["/", "/report", "/login"] {
            let (status, _) = self.text(actor, path).await;
            out.push((path, status == 200));
        }
        let (status, page) = self.text(actor, "/admin/quarantine").await;
        out.push((
            "GET /admin/quarantine",
            status == 200 && page.contains("Nothing is quarantined."),
        ));
        let (status, _) = self.server_fn(actor, app::desk::ListQuarantined::PATH, "").await;
        out.push((app::desk::ListQuarantined::PATH, status == 200));
        let (status, body) = self.text(actor, "/api/plans").await;
        out.push(("GET /api/plans", status == 200 && body.starts_with('[')));
        let (status, page) = self.text(actor, "/admin/plans").await;
        out.push((
            "GET /admin/plans",
            status == 200 && page.contains("data-testid=\"plan-form-injury_illness\""),
        ));
        let (status, _) = self.server_fn(actor, app::admin::ListPlans::PATH, "").await;
        out.push((app::admin::ListPlans::PATH, status == 200));
        let (status, _) = self
            .server_fn(
                actor,
                app::admin::SavePlan::PATH,
                "category=near_miss&steps=Tell%20the%20supervisor",
            )
            .await;
        out.push((app::admin::SavePlan::PATH, status == 200));
        let (status, page) = self.text(actor, "/admin/categories").await;
        out.push((
            "GET /admin/categories",
            status == 200 && page.contains("data-testid=\"category-form-injury_illness\""),
        ));
        let (status, _) = self.server_fn(actor, app::admin::ListCategories::PATH, "").await;
        out.push((app::admin::ListCategories::PATH, status == 200));
        let (status, _) = self
            .server_fn(
                actor,
                app::admin::SaveCategory::PATH,
                "key=near_miss&label=Near%20miss&active=true",
            )
            .await;
        out.push((app::admin::SaveCategory::PATH, status == 200));
        // What fills it comes from the device: the list the sync answer brings its owner.
        let (status, _) = self.text(actor, "/actions").await;
        out.push(("GET /actions", status == 200));
        let (status, _) = self.text(actor, "/alerts").await;
        out.push(("/alerts", status == 200));
        // Every report of this world is not judged yet, so P1: the log has deliveries.
        let (status, page) = self.text(actor, "/admin/webhooks").await;
        out.push((
            "GET /admin/webhooks",
            status == 200 && page.contains("data-testid=\"deliveries\""),
        ));
        let (status, _) = self.server_fn(actor, app::desk::ListDeliveries::PATH, "").await;
        out.push((app::desk::ListDeliveries::PATH, status == 200));
        let (status, _) = self.text(actor, "/api/me").await;
        out.push(("GET /api/me", status == 200));
        // Drills: the phone's page is a shell filled from the device; the desk's pages and
        // functions are the supervisors' and administrators' (of the drill's team).
        let (status, _) = self.text(actor, "/drill").await;
        out.push(("/drill", status == 200));
        let (status, page) = self.text(actor, "/drills").await;
        out.push((
            "GET /drills",
            status == 200 && page.contains("data-testid=\"schedule-form\""),
        ));
        let (scenario, drill) = self.drill;
        let (status, page) = self.text(actor, &format!("/drills/{drill}")).await;
        out.push((
            "GET /drills/:id",
            status == 200 && page.contains("data-testid=\"run-measures\""),
        ));
        let (status, _) = self.server_fn(actor, app::drills::GetDrillBoard::PATH, "").await;
        out.push((app::drills::GetDrillBoard::PATH, status == 200));
        let (status, body) = self
            .server_fn(actor, app::drills::DrillRun::PATH, &format!("id={drill}"))
            .await;
        out.push((
            app::drills::DrillRun::PATH,
            status == 200 && body.contains("Contain it"),
        ));
        let (status, _) = self
            .server_fn(
                actor,
                app::drills::SaveScenario::PATH,
                &format!(
                    "id={scenario}&team={}&title=Spill&category=injury_illness&objectives=Contain%20it&injects=",
                    self.drill_team().await
                ),
            )
            .await;
        out.push((app::drills::SaveScenario::PATH, status == 200));
        let (status, _) = self
            .server_fn(
                actor,
                app::drills::ScheduleDrill::PATH,
                &format!("scenario={scenario}&opens=2026-01-01&due=2026-01-31&cadence=once"),
            )
            .await;
        out.push((app::drills::ScheduleDrill::PATH, status == 200));
        let (status, _) = self
            .server_fn(
                actor,
                app::drills::SaveDrillReview::PATH,
                &format!("id={drill}&ratings[0]=performed&strengths=Fast&improvements=None"),
            )
            .await;
        out.push((app::drills::SaveDrillReview::PATH, status == 200));
        let action = app::domain::Action::new(
            uuid::Uuid::now_v7(),
            app::domain::ActionKind::Corrective,
            "Restock the spill kit",
            "",
            None,
        );
        for (path, body) in [
            (
                app::drills::AddDrillAction::PATH,
                serde_json::json!({ "id": drill, "action": { "kind": "corrective", "text": "Restock", "owner": "", "due_at": null } }),
            ),
            (
                app::drills::UpdateDrillAction::PATH,
                serde_json::json!({ "id": drill, "action": action }),
            ),
        ] {
            let response = self
                .client(actor)
                .post(format!("{}{path}", self.server.base))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            out.push((path, response.status().is_success()));
        }
        let (status, page) = self.text(actor, "/admin/people").await;
        out.push((
            "GET /admin/people",
            status == 200 && page.contains("data-testid=\"people\"") && page.contains("(fa)"),
        ));
        let (status, _) = self.server_fn(actor, app::admin::ListPeople::PATH, "").await;
        out.push((app::admin::ListPeople::PATH, status == 200));
        let login = format!("invited{}", index(actor));
        let (status, _) = self
            .server_fn(
                actor,
                app::admin::InvitePerson::PATH,
                &format!("login={login}&name=Invited&role=field&teams=North%20site&password="),
            )
            .await;
        let created = self
            .server
            .store
            .users()
            .await
            .unwrap()
            .iter()
            .any(|u| u.login == login);
        assert_eq!(
            created,
            status == 200,
            "{actor:?}: an account exists iff the invitation was allowed"
        );
        out.push((app::admin::InvitePerson::PATH, status == 200));
        let victim = self.users[&Actor::Field];
        let (status, _) = self
            .server_fn(
                actor,
                app::admin::SetPersonRole::PATH,
                &format!("id={victim}&role=field&teams=North%20site"),
            )
            .await;
        out.push((app::admin::SetPersonRole::PATH, status == 200));
        let (status, _) = self
            .server_fn(
                actor,
                app::admin::SetPersonActive::PATH,
                &format!("id={victim}&active=true"),
            )
            .await;
        out.push((app::admin::SetPersonActive::PATH, status == 200));
        let (status, _) = self
            .server_fn(
                actor,
                app::admin::RevokeSession::PATH,
                &format!("id={}", uuid::Uuid::from_u128(0xdead)),
            )
            .await;
        out.push((app::admin::RevokeSession::PATH, status == 200));
        let (status, _) = self.sync(actor, Vec::new()).await;
        out.push(("POST /api/sync", status == 200));
        for path in ["/healthz", "/readyz"] {
            let (status, _) = self.text(actor, path).await;
            out.push((path, status == 200));
        }
        out
    }
}

/// What each actor may do apart from reports: (operation, [nobody, field, supervisor, admin]).
fn other_matrix() -> [(&'static str, [bool; 4]); 37] {
    [
        ("/drill", [true, true, true, true]),
        ("GET /drills", [false, false, true, true]),
        ("GET /drills/:id", [false, false, true, true]),
        (app::drills::GetDrillBoard::PATH, [false, false, true, true]),
        (app::drills::DrillRun::PATH, [false, false, true, true]),
        (app::drills::SaveScenario::PATH, [false, false, true, true]),
        (app::drills::ScheduleDrill::PATH, [false, false, true, true]),
        (app::drills::SaveDrillReview::PATH, [false, false, true, true]),
        (app::drills::AddDrillAction::PATH, [false, false, true, true]),
        (app::drills::UpdateDrillAction::PATH, [false, false, true, true]),
        ("GET /admin/categories", [false, false, false, true]),
        (app::admin::ListCategories::PATH, [false, false, false, true]),
        (app::admin::SaveCategory::PATH, [false, false, false, true]),
        ("GET /api/plans", [false, true, true, true]),
        ("GET /admin/plans", [false, false, false, true]),
        (app::admin::ListPlans::PATH, [false, false, false, true]),
        (app::admin::SavePlan::PATH, [false, false, false, true]),
        ("/alerts", [true, true, true, true]),
        ("GET /admin/webhooks", [false, false, false, true]),
        (app::desk::ListDeliveries::PATH, [false, false, false, true]),
        ("GET /actions", [true, true, true, true]),
        ("/", [true, true, true, true]),
        ("/report", [true, true, true, true]),
        ("/login", [true, true, true, true]),
        ("GET /admin/quarantine", [false, false, false, true]),
        (app::desk::ListQuarantined::PATH, [false, false, false, true]),
        ("GET /api/me", [false, true, true, true]),
        ("GET /admin/people", [false, false, false, true]),
        (app::admin::ListPeople::PATH, [false, false, false, true]),
        (app::admin::InvitePerson::PATH, [false, false, false, true]),
        (app::admin::SetPersonRole::PATH, [false, false, false, true]),
        (app::admin::SetPersonActive::PATH, [false, false, false, true]),
        (app::admin::RevokeSession::PATH, [false, false, false, true]),
        ("POST /api/sync", [false, true, true, true]),
        ("/healthz", [true, true, true, true]),
        ("/readyz", [true, true, true, true]),
        // Signing in and out are tried in the throttling and revocation tests.
        ("POST /login, POST /logout", [true, true, true, true]),
    ]
}

/// Which report operation each route is (the matrix's rows), read or write.
fn report_operations() -> [(&'static str, bool); 14] {
    [
        // Uploads (and asking how far one got) add to the report; fetching reads it.
        ("HEAD /api/reports/{id}/photos/{sha256}", true),
        ("PATCH /api/reports/{id}/photos/{sha256}", true),
        ("GET /api/reports/{id}/photos/{sha256}", false),
        ("GET /incidents/:id", false),
        ("GET /incidents", false),
        ("GET /export/incidents.csv", false),
        (app::desk::ListIncidents::PATH, false),
        (app::desk::GetIncident::PATH, false),
        (app::desk::EditIncident::PATH, true),
        (app::desk::AddUpdate::PATH, true),
        (app::desk::ChooseValue::PATH, true),
        (app::desk::AddAction::PATH, true),
        ("POST /api/sync (pull)", false),
        ("POST /api/sync (push)", true),
    ]
}

fn index(actor: Actor) -> usize {
    match actor {
        Actor::Nobody => 0,
        Actor::Field => 1,
        Actor::Supervisor => 2,
        Actor::Admin => 3,
    }
}

async fn every_role_on_every_route_and_report_is_allowed_or_denied_as_the_matrix_says(db: Db) {
    // Every route the server has must be in the matrix.
    let mut routes: BTreeSet<String> = leptos_axum::generate_route_list(app::App)
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    routes.extend(leptos::server_fn::axum::server_fn_paths().map(|(p, _)| p.to_owned()));
    routes.extend(server::api_routes().iter().map(|r| r.path.to_owned()));
    let covered: BTreeSet<String> = report_operations()
        .iter()
        .map(|(op, _)| *op)
        .chain(other_matrix().iter().map(|(op, _)| *op))
        .flat_map(|op| op.split(", "))
        .map(|op| {
            let path = op.split_once(' ').map_or(op, |(_, p)| p);
            path.split(" (").next().unwrap().replace(":id", "{id}")
        })
        .collect();
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !covered.contains(&r.replace(":id", "{id}")))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from the access matrix: {missing:?}"
    );

    let Some(world) = world(db).await else { return };
    let mut n = 0;
    let mut failures = Vec::new();
    for actor in [Actor::Nobody, Actor::Field, Actor::Supervisor, Actor::Admin] {
        for whose in [Whose::Own, Whose::Team, Whose::Other] {
            if actor == Actor::Nobody && whose == Whose::Own {
                continue;
            }
            let (read, write) = expected(actor, whose);
            for (op, allowed) in world.report_operations(actor, whose, &mut n).await {
                let is_write = report_operations().iter().find(|(o, _)| *o == op).unwrap().1;
                // The response (actions, investigation, review) is for supervisors and
                // admins only, even on a field employee's own report.
                let responds = op == app::desk::AddAction::PATH;
                let want = if responds {
                    write && actor != Actor::Field
                } else if is_write {
                    write
                } else {
                    read
                };
                if allowed != want {
                    failures.push(format!(
                        "{actor:?} {whose:?} {op}: allowed={allowed}, expected {want}"
                    ));
                }
            }
        }
        for (op, allowed) in world.other_operations(actor).await {
            let want = other_matrix().iter().find(|(o, _)| *o == op).unwrap().1[index(actor)];
            if allowed != want {
                failures.push(format!("{actor:?} {op}: allowed={allowed}, expected {want}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "access matrix broken:\n{}",
        failures.join("\n")
    );

    // Field rules hold whoever writes: a field employee cannot move the status of their
    // own report or change who filed it; nobody can change the reporter.
    let (id, _) = world.report(Actor::Field, Whose::Own);
    for (actor, change) in [
        (Actor::Field, "status"),
        (Actor::Field, "reporter"),
        (Actor::Supervisor, "reporter"),
        (Actor::Admin, "reporter"),
    ] {
        let (report, doc) = world.current(id).await;
        let mut device_doc = ReportDoc::load(&doc, world.actor_of(actor, 0xf1e1d)).unwrap();
        let old = device_doc.heads();
        let mut edited = report.clone();
        if change == "status" {
            edited.status = app::domain::Status::Triaged;
        } else {
            edited.reporter = "Someone Else".into();
        }
        device_doc.edit(&report, &edited, T0).unwrap();
        let push = ReportPush {
            id,
            heads: device_doc.heads().iter().map(hash_hex).collect(),
            changes: device_doc.changes_since(&old).into_iter().map(Bytes).collect(),
            document: None,
        };
        let snapshot = world.server.snapshot().await;
        let (status, bytes) = world.sync(actor, vec![push]).await;
        assert_eq!(status, 422, "{actor:?} changing {change}");
        let error: SyncError = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(error.rejected[0].id, id);
        let reason = &error.rejected[0].reason;
        assert!(
            reason.contains(change) || reason.contains("who filed"),
            "{actor:?}: {reason}"
        );
        assert_eq!(world.server.snapshot().await, snapshot, "nothing stored");
    }
    // A supervisor may move the status.
    let (report, _) = world.current(id).await;
    let mut triaged = report.clone();
    triaged.status = app::domain::Status::Triaged;
    let body = serde_json::json!({ "base": report, "edited": triaged }).to_string();
    let response = world
        .client(Actor::Supervisor)
        .post(format!("{}{}", world.server.base, app::desk::EditIncident::PATH))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let _ = &world.names;
}

/// The OSHA 301 details are privacy-sensitive: a teammate who may read the report sees it
/// at the desk without them and cannot hold its document on a device (before or after it
/// became an injury report); the reporter, the team's supervisor and an administrator see
/// them; the CSV export never carries them.
async fn injury_details_are_seen_only_by_the_reporter_the_team_supervisors_and_admins(db: Db) {
    let Some(world) = world(db).await else { return };
    let (id, _) = world.report(Actor::Field, Whose::Own);
    let token = world.tokens[&Actor::Field].clone();
    let field = world.users[&Actor::Field];
    let secret = "Fractured left wrist q7x";
    let mut phone = Device::new(40);
    phone.sign_in_as(field, uuid::Uuid::nil(), &token);
    phone.follow(id);
    phone.sync_all(&world.server.base).await.unwrap();
    // A teammate's device holds the report while it is not an injury report.
    let (teammate_id, teammate_token, _) =
        add_user_with_session(&world.server.store, "fa3", Role::Field, &[TEAM_A]).await;
    let teammate = world.server.store.viewer(teammate_id).await.unwrap().unwrap();
    let mut colleague = Device::new(41);
    colleague.sign_in_as(teammate.user_id, uuid::Uuid::nil(), &teammate_token);
    colleague.follow(id);
    colleague.sync_all(&world.server.base).await.unwrap();
    assert!(colleague.has(id));
    phone.edit(id, |r| {
        r.category = app::domain::Category::new("injury_illness");
        r.injury.injury = secret.to_owned();
        r.injury.employee = "Pat Field".to_owned();
        r.injury.treatment = app::domain::Treatment::EmergencyRoom;
        r.witnesses.push(app::domain::Witness {
            name: "Lee Witness".to_owned(),
            contact: String::new(),
            statement: "Saw it.".to_owned(),
        });
    });
    phone.sync_all(&world.server.base).await.unwrap();

    // The teammate's device gets nothing more of it, and a fresh one cannot pull it.
    let answer = colleague.sync(&world.server.base).await.unwrap();
    assert!(!serde_json::to_string(&answer).unwrap().contains(&id.to_string()));
    assert!(!colleague.read(id).injury.injury.contains("q7x"));
    let mut fresh = Device::new(42);
    fresh.sign_in_as(teammate.user_id, uuid::Uuid::nil(), &teammate_token);
    fresh.follow(id);
    match fresh.try_sync(&world.server.base).await {
        Err(muster_tests::SyncFailure::Refused(_, error)) => {
            assert_eq!(error.error, ErrorCode::RejectedReports);
            assert!(
                error.rejected[0].reason.contains("privacy-sensitive"),
                "{}",
                error.rejected[0].reason
            );
        }
        other => panic!("a teammate's device was sent an injury report: {other:?}"),
    }
    assert_eq!(fresh.try_read(id), None, "nothing of it arrived");

    // At the desk: the teammate reads the report without the details.
    let desk = world.server.desk();
    let seen = app::desk::IncidentDesk::detail(&desk, &teammate, id)
        .await
        .unwrap()
        .unwrap();
    assert!(seen.private_withheld);
    assert_eq!(seen.report.injury, app::domain::Injury::default());
    assert_eq!(seen.report.witnesses.len(), 1, "witnesses are not private");
    let (status, page) = world
        .client(Actor::Field)
        .get(format!("{}/incidents/{id}", world.server.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        page.text().await.unwrap().contains(secret),
        "the reporter sees them"
    );
    let teammate_page = client_with_session(&teammate_token)
        .get(format!("{}/incidents/{id}", world.server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!teammate_page.contains(secret));
    assert!(teammate_page.contains("injury-withheld"));
    for actor in [Actor::Supervisor, Actor::Admin] {
        let (status, page) = world.text(actor, &format!("/incidents/{id}")).await;
        assert_eq!(status, 200);
        assert!(page.contains(secret), "{actor:?} sees them");
        let (_, csv) = world.text(actor, "/export/incidents.csv").await;
        assert!(
            csv.contains(&id.to_string()) && !csv.contains("q7x"),
            "{actor:?}'s export leaves them out"
        );
    }

    // The reporter changes their mind about the category: the details are cleared, but
    // the history still holds them, so the report stays off colleagues' devices.
    phone.edit(id, |r| {
        r.category = app::domain::Category::new("near_miss");
        r.injury = app::domain::Injury::default();
    });
    phone.sync_all(&world.server.base).await.unwrap();
    let mut later = Device::new(43);
    later.sign_in_as(teammate.user_id, uuid::Uuid::nil(), &teammate_token);
    later.follow(id);
    assert!(
        matches!(
            later.try_sync(&world.server.base).await,
            Err(muster_tests::SyncFailure::Refused(..))
        ),
        "a report that was an injury report stays off colleagues' devices"
    );
    assert_eq!(later.try_read(id), None);
    let answer = colleague.sync(&world.server.base).await.unwrap();
    assert!(!serde_json::to_string(&answer).unwrap().contains(&id.to_string()));
}

async fn a_field_employee_receives_nothing_of_another_team(db: Db) {
    let Some(world) = world(db).await else { return };
    let (other, other_title) = world.report(Actor::Field, Whose::Other);
    let (team, team_title) = world.report(Actor::Field, Whose::Team);
    // The other team's report changes, over and over, on the server.
    let (stranger_report, _) = world.current(other).await;
    let desk = world.server.desk();
    let admin = world
        .server
        .store
        .viewer(world.users[&Actor::Admin])
        .await
        .unwrap()
        .unwrap();
    for k in 0..3 {
        let mut edited = stranger_report.clone();
        edited.what_happened = format!("Another team's business {k}");
        let base = world.current(other).await.0;
        app::desk::IncidentDesk::edit(&desk, &admin, base, edited)
            .await
            .unwrap();
    }
    // A field employee of the first team: a fresh device, a device that asks for the
    // other team's report by id, and a device that follows both.
    let token = world.tokens[&Actor::Field].clone();
    let field = world.users[&Actor::Field];
    let mut device = Device::new(9);
    device.sign_in_as(field, uuid::Uuid::nil(), &token);
    device.follow(other);
    device.follow(team);
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let request = serde_json::to_vec(&device.request()).unwrap();
        let (status, bytes) = post_as(&reqwest::Client::new(), &world.server.base, Some(&token), request)
            .await
            .unwrap();
        bodies.push((status, bytes));
    }
    for (status, bytes) in &bodies {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(&other_title), "the other team's title leaked");
        // Only the refusal may name the id; never a change or heads of it.
        if *status == 200 {
            assert!(
                !text.contains(&other.to_string()),
                "the other team's report was sent: {text}"
            );
        } else {
            let error: SyncError = serde_json::from_slice(bytes).unwrap();
            assert_eq!(error.error, ErrorCode::RejectedReports);
            assert!(error.rejected.iter().all(|r| r.id == other));
        }
    }
    // Without the forbidden pull, the device syncs and holds its team's report only.
    let mut device = Device::new(10);
    device.sign_in_as(field, uuid::Uuid::nil(), &token);
    device.follow(team);
    device.sync_all(&world.server.base).await.unwrap();
    assert!(device.has(team));
    assert_eq!(device.read(team).title, team_title);
    assert!(!device.has(other));
}

async fn a_revoked_session_is_refused_at_once_even_after_days_offline(db: Db) {
    let Some(server) = TestServer::start_on(db).await else {
        return;
    };
    let store = &server.store;
    let (user, token, session) = add_user_with_session(store, "fr", Role::Field, &["North"]).await;
    let mut device = Device::new(1);
    device.sign_in_as(user, session, &token);
    let mut report = Report::blank(ReportId::new_v7(T0, [1; 10]), T0, "fr (test)");
    report.title = "Filed before the revocation".into();
    report.location.place = "Gate".into();
    let id = device.create_report(&report);
    device.sync(&server.base).await.unwrap();

    // Offline for days: edits pile up; meanwhile an administrator revokes the session.
    for k in 0..5 {
        device.edit(id, |r| r.what_happened = format!("Offline note {k}"));
    }
    let sessions = store.sessions_of(user).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(
        store
            .revoke_session(sessions[0].id, Timestamp(T0.0 + 1))
            .await
            .unwrap()
    );
    let snapshot = server.snapshot().await;
    match device.try_sync(&server.base).await {
        Err(muster_tests::SyncFailure::Refused(401, error)) => {
            assert_eq!(error.error, ErrorCode::SignedOut);
            assert!(error.message.contains("sign in again"), "{}", error.message);
        }
        other => panic!("a revoked session must be refused, got {other:?}"),
    }
    assert_eq!(server.snapshot().await, snapshot, "nothing stored");
    assert!(device.has_pending(), "the device keeps its changes");
    let me = client_with_session(&token)
        .get(format!("{}/api/me", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);

    // Signing in again gives a new session that syncs what was kept.
    let (cookie, fresh) = muster_tests::sign_in(&server.base, "fr", "fr-password-1", "harness")
        .await
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    device.session = Some(fresh);
    device.sync_all(&server.base).await.unwrap();
    assert!(!device.has_pending());

    // Deactivating the person ends every session of theirs too.
    store.set_active(user, false, Timestamp(T0.0 + 2)).await.unwrap();
    device.edit(id, |r| r.what_happened = "After deactivation".into());
    assert!(matches!(
        device.try_sync(&server.base).await,
        Err(muster_tests::SyncFailure::Refused(401, _))
    ));
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_and_nothing_says_which_part_was_wrong() {
    let server = TestServer::start().await;
    add_user(&server.store, "target", Role::Field, &["North"]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let attempt = |login: &'static str, password: &'static str| {
        let http = http.clone();
        let url = format!("{}/login", server.base);
        async move {
            let response = http
                .post(url)
                .form(&[("login", login), ("password", password)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 303);
            let to = response.headers()["location"].to_str().unwrap().to_owned();
            (to, response.headers().get("set-cookie").is_some())
        }
    };
    // An unknown login and a wrong password read the same.
    assert_eq!(
        attempt("nobody-here", "whatever-password").await.0,
        "/login?error=wrong"
    );
    for _ in 0..4 {
        assert_eq!(
            attempt("target", "wrong-password-0").await,
            ("/login?error=wrong".to_owned(), false)
        );
    }
    // The fifth failure: from now on, waits; even the right password is held back.
    assert_eq!(
        attempt("target", "wrong-password-0").await.0,
        "/login?error=wrong"
    );
    let (to, cookie) = attempt("target", "target-password-1").await;
    assert!(to.starts_with("/login?wait="), "{to}");
    assert!(!cookie);
    // Once the wait is over, the right password works.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (to, cookie) = attempt("target", "target-password-1").await;
    assert_eq!(to, "/");
    assert!(cookie);
}

#[tokio::test]
async fn an_administrator_invites_people_ends_a_lost_phones_session_and_deactivates_people() {
    let server = TestServer::start().await;
    let (_, admin) = add_user(&server.store, "boss", Role::Admin, &[]).await;
    let admin = client_with_session(&admin);
    let call = |path: &'static str, form: String| {
        let admin = admin.clone();
        let url = format!("{}{path}", server.base);
        async move {
            let response = admin
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    // Invited with a made-up first password, shown once.
    let (status, body) = call(
        app::admin::InvitePerson::PATH,
        "login=Nia&name=Nia%20Field&role=field&teams=Dock%2C%20Yard&password=".into(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let invited: app::admin::Invited = serde_json::from_str(&body).unwrap();
    assert_eq!(invited.login, "nia");
    assert!(invited.password.len() >= 16);
    let sign_in = || async {
        muster_tests::sign_in(&server.base, "nia", &invited.password, "Nia's phone")
            .await
            .unwrap()
            .1
    };
    let phone = sign_in().await;
    let base = server.base.clone();
    let me = |token: String| {
        let url = format!("{base}/api/me");
        async move { client_with_session(&token).get(url).send().await.unwrap() }
    };
    let answer: app::protocol::Me = me(phone.clone()).await.json().await.unwrap();
    assert_eq!(answer.viewer.role, Role::Field);
    assert_eq!(answer.viewer.teams.len(), 2, "Dock (home) and Yard");

    // The people list shows the phone's session; ending it signs that phone out.
    let (_, listed) = call(app::admin::ListPeople::PATH, String::new()).await;
    let people: Vec<app::admin::Person> = serde_json::from_str(&listed).unwrap();
    let nia = people.iter().find(|p| p.login == "nia").unwrap();
    assert_eq!(nia.sessions.len(), 1);
    assert_eq!(nia.sessions[0].device, "Nia's phone");
    let laptop = sign_in().await;
    let (status, _) = call(
        app::admin::RevokeSession::PATH,
        format!("id={}", nia.sessions[0].id),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me(phone).await.status(), 401, "the lost phone is signed out");
    assert_eq!(
        me(laptop.clone()).await.status(),
        200,
        "her other session still works"
    );

    // A new role and team take effect on the next request.
    let (status, _) = call(
        app::admin::SetPersonRole::PATH,
        format!("id={}&role=supervisor&teams=Yard", nia.id),
    )
    .await;
    assert_eq!(status, 200);
    let answer: app::protocol::Me = me(laptop.clone()).await.json().await.unwrap();
    assert_eq!(answer.viewer.role, Role::Supervisor);
    assert_eq!(answer.viewer.teams.len(), 1);
    let (status, body) = call(
        app::admin::SetPersonRole::PATH,
        format!("id={}&role=supervisor&teams=", nia.id),
    )
    .await;
    assert_ne!(status, 200, "supervisors need a team: {body}");

    // Deactivated: every session ends, and signing in is refused.
    let (status, _) = call(
        app::admin::SetPersonActive::PATH,
        format!("id={}&active=false", nia.id),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me(laptop).await.status(), 401);
    assert!(
        server
            .store
            .check_credentials("nia", &invited.password)
            .await
            .unwrap()
            .is_none()
    );
}

async fn every_change_is_tied_to_its_author_and_the_report_page_says_who_changed_what(db: Db) {
    let Some(world) = world(db).await else { return };
    let (id, _) = world.report(Actor::Field, Whose::Own);
    let push_as = |actor: automerge::ActorId| {
        let world = &world;
        async move {
            let (report, doc) = world.current(id).await;
            let mut device_doc = ReportDoc::load(&doc, actor).unwrap();
            let old = device_doc.heads();
            let mut edited = report.clone();
            edited.what_happened = "Written under someone else's name".into();
            device_doc.edit(&report, &edited, T0).unwrap();
            ReportPush {
                id,
                heads: device_doc.heads().iter().map(hash_hex).collect(),
                changes: device_doc.changes_since(&old).into_iter().map(Bytes).collect(),
                document: None,
            }
        }
    };
    // The field employee pushes a change made under the supervisor's actor, and one under
    // an actor of no one: both refused, nothing stored.
    for foreign in [
        world.actor_of(Actor::Supervisor, 1),
        actor_from_uuid(uuid::Uuid::from_u128(0xabc)),
    ] {
        let snapshot = world.server.snapshot().await;
        let (status, bytes) = world.sync(Actor::Field, vec![push_as(foreign).await]).await;
        assert_eq!(status, 422);
        let error: SyncError = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(error.rejected[0].reason, app::merge::FOREIGN_ACTOR);
        assert_eq!(world.server.snapshot().await, snapshot);
    }
    // A new report written under someone else's actor is refused too.
    let mut doc = ReportDoc::create(
        &{
            let mut r = Report::blank(ReportId::new_v7(T0, [77; 10]), T0, "fa (test)");
            r.title = "Forged".into();
            r.location.place = "Yard".into();
            r
        },
        world.actor_of(Actor::Supervisor, 2),
        T0,
    )
    .unwrap();
    let forged = ReportPush {
        id: ReportId::new_v7(T0, [77; 10]),
        heads: doc.heads().iter().map(hash_hex).collect(),
        changes: Vec::new(),
        document: Some(Bytes(doc.save())),
    };
    assert_eq!(world.sync(Actor::Field, vec![forged]).await.0, 422);

    // Their own change goes through; the supervisor adds an update on the desk.
    let (status, _) = world
        .sync(Actor::Field, vec![push_as(world.actor_of(Actor::Field, 3)).await])
        .await;
    assert_eq!(status, 200);
    let (_, body) = world
        .server_fn(
            Actor::Supervisor,
            app::desk::AddUpdate::PATH,
            &format!("id={id}&text=Checked&audience=team"),
        )
        .await;
    assert_eq!(body, "null", "{body}");
    let detail = app::desk::IncidentDesk::detail(
        &world.server.desk(),
        &world
            .server
            .store
            .viewer(world.users[&Actor::Admin])
            .await
            .unwrap()
            .unwrap(),
        id,
    )
    .await
    .unwrap()
    .unwrap();
    let lines: Vec<(String, String, Vec<String>)> = detail
        .history
        .iter()
        .map(|l| (l.who.clone(), l.device.clone(), l.fields.clone()))
        .collect();
    assert_eq!(lines.len(), detail.change_count);
    assert_eq!(lines[0].0, "fa (test)", "{lines:?}");
    assert_eq!(lines[0].1, "harness", "the session's device: {lines:?}");
    assert_eq!(lines[0].2, ["created"]);
    let edit = lines.iter().find(|l| l.2 == ["what_happened"]).unwrap();
    assert_eq!(edit.0, "fa (test)");
    let update = lines.last().unwrap();
    assert_eq!(update.0, "sa (test)");
    assert_eq!(update.1, "the desk");
    assert_eq!(update.2, ["timeline"]);
    // The page shows it too.
    let (_, page) = world.text(Actor::Supervisor, &format!("/incidents/{id}")).await;
    assert!(page.contains("data-testid=\"history\""));
    assert!(
        page.contains("sa (test) · the desk"),
        "the page names the desk update"
    );
}

#[tokio::test]
async fn the_first_administrator_is_created_from_the_command_line() {
    let db = muster_tests::TestDb::new(Db::Sqlite).await.unwrap();
    let run = |args: &[&str], env_password: Option<&str>, stdin: &str| {
        let mut command = std::process::Command::new(muster_tests::server_bin!());
        command
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env_remove("MUSTER_ADMIN_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(p) = env_password {
            command.env("MUSTER_ADMIN_PASSWORD", p);
        }
        let mut child = command.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let made = run(
        &["create-admin", "root", "Root Admin"],
        Some("a long admin passphrase"),
        "",
    );
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(String::from_utf8_lossy(&made.stdout).contains("created administrator root"));
    let typed = run(
        &["create-admin", "second", "Second Admin"],
        None,
        "typed on stdin 123\n",
    );
    assert!(
        typed.status.success(),
        "{}",
        String::from_utf8_lossy(&typed.stderr)
    );
    // A short password, a taken login, missing arguments: refused with a reason.
    let short = run(&["create-admin", "third", "Third"], Some("short"), "");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("12 to 256"));
    let taken = run(
        &["create-admin", "root", "Again"],
        Some("another long passphrase"),
        "",
    );
    assert!(String::from_utf8_lossy(&taken.stderr).contains("taken"));
    assert!(
        !run(&["create-admin", "lonely"], Some("a long admin passphrase"), "")
            .status
            .success()
    );

    let store = db.store().await;
    let root = store
        .check_credentials("root", "a long admin passphrase")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.viewer(root).await.unwrap().unwrap().role, Role::Admin);
    assert!(
        store
            .check_credentials("second", "typed on stdin 123")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_report_followed_once_stops_arriving_when_its_reader_changes_team() {
    let server = TestServer::start().await;
    let store = &server.store;
    let (mover, token, session) = add_user_with_session(store, "mover", Role::Field, &["North"]).await;
    let (mate, mate_token, mate_session) =
        add_user_with_session(store, "mate", Role::Field, &["North"]).await;
    let mut teammate = Device::new(1);
    teammate.sign_in_as(mate, mate_session, &mate_token);
    let mut report = Report::blank(ReportId::new_v7(T0, [5; 10]), T0, "mate (test)");
    report.title = "Leaking valve".into();
    report.location.place = "Boiler room".into();
    let id = teammate.create_report(&report);
    teammate.sync(&server.base).await.unwrap();

    // Same team: the mover follows it and gets its updates.
    let mut device = Device::new(2);
    device.sign_in_as(mover, session, &token);
    device.follow(id);
    device.sync_all(&server.base).await.unwrap();
    assert!(device.has(id));
    teammate.edit(id, |r| r.what_happened = "Dripping since Monday".into());
    teammate.sync(&server.base).await.unwrap();
    device.sync_all(&server.base).await.unwrap();
    assert_eq!(device.read(id).what_happened, "Dripping since Monday");

    // Moved to another site: later changes no longer reach them.
    store
        .set_role_and_teams(mover, Role::Field, &["South".to_owned()], T0)
        .await
        .unwrap();
    teammate.edit(id, |r| {
        r.what_happened = "Valve replaced; confidential note".into()
    });
    teammate.sync(&server.base).await.unwrap();
    let answer = device.sync(&server.base).await.unwrap();
    assert!(answer.feed.is_empty(), "nothing of the old team's report");
    assert_eq!(device.read(id).what_happened, "Dripping since Monday");
    device.sync_all(&server.base).await.unwrap();
    assert_ne!(device.read(id).what_happened, "Valve replaced; confidential note");
}
