//! Who may do what: roles, the signed-in person ([`Viewer`]), and the rules for reading
//! and writing a report. One definition, used by the sync endpoint, the desk's server
//! functions and the pages; pure, so every cell of the rules is tested here.
//!
//! * Field employees read their own reports and their teams' reports, and change only
//!   their own.
//! * Supervisors read and change their own reports and their teams' reports.
//! * Admins read and change everything.
//!
//! What a write may change within a report they may change is the write policy's
//! ([`super::policy`]), checked op by op at the sync boundary; a field employee files
//! reports in their own name ([`Viewer::check_new`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Report, Response, Status};

/// What a person may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reports incidents and follows their own and their team's.
    Field,
    /// Reviews and acts on their teams' reports.
    Supervisor,
    /// Manages people, teams and everything else.
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 3] = [Self::Field, Self::Supervisor, Self::Admin];

    /// The stored key.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Field => "field",
            Self::Supervisor => "supervisor",
            Self::Admin => "admin",
        }
    }

    /// The name people read.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Field => "Field employee",
            Self::Supervisor => "Supervisor",
            Self::Admin => "Administrator",
        }
    }

    /// Supervisors and admins act on reports (triage, status, updates on others' reports).
    #[must_use]
    pub fn acts_on_reports(self) -> bool {
        matches!(self, Self::Supervisor | Self::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.key() == s)
            .ok_or_else(|| format!("`{s}` is not a role (field, supervisor or admin)"))
    }
}

/// The signed-in person a request acts for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// Their user id.
    pub user_id: Uuid,
    /// The name shown on reports and timelines.
    pub name: String,
    /// What they sign in with.
    pub login: String,
    /// What they may do.
    pub role: Role,
    /// The teams (sites) they belong to; a field employee's reports go to the first.
    pub teams: Vec<Uuid>,
}

/// Who a stored report belongs to (from the server's records, never from the document).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ownership {
    /// The user whose device first stored it (`None`: stored before accounts existed).
    pub owner: Option<Uuid>,
    /// The team it was filed for.
    pub team: Option<Uuid>,
    /// Whether it is, or ever was, an injury or illness report, whose history holds
    /// privacy-sensitive details (read from the server's projection of the report; not
    /// part of what is recorded when a report is first stored).
    pub sensitive: bool,
}

/// The fields of a stored report that writes are checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guarded {
    /// Who filed it.
    pub reporter: String,
    /// Where it is in the workflow.
    pub status: Status,
    /// The response (assignment, investigation, actions, review).
    pub response: Response,
    /// The SHA-256 names of its photos.
    pub photos: Vec<String>,
}

impl Guarded {
    /// The guarded fields of `report`.
    #[must_use]
    pub fn of(report: &Report) -> Self {
        Self {
            reporter: report.reporter.clone(),
            status: report.status,
            response: report.response.clone(),
            photos: report.photos.iter().map(|p| p.sha256.clone()).collect(),
        }
    }
}

impl Viewer {
    /// The team a new report of theirs is filed for.
    #[must_use]
    pub fn home_team(&self) -> Option<Uuid> {
        self.teams.first().copied()
    }

    fn in_team(&self, team: Option<Uuid>) -> bool {
        team.is_some_and(|t| self.teams.contains(&t))
    }

    /// Whether they may read a report with this ownership.
    #[must_use]
    pub fn can_read(&self, of: Ownership) -> bool {
        self.role == Role::Admin || of.owner == Some(self.user_id) || self.in_team(of.team)
    }

    /// Whether they may read the privacy-sensitive parts of a report with this ownership
    /// (the OSHA 301 injury details): whoever filed it, its team's supervisors and
    /// administrators, but not every colleague who may read the report.
    #[must_use]
    pub fn can_read_private(&self, of: Ownership) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Supervisor => of.owner == Some(self.user_id) || self.in_team(of.team),
            Role::Field => of.owner == Some(self.user_id),
        }
    }

    /// Whether their devices may hold the whole document of a report with this ownership
    /// (sync hands out documents whole, with every part and its history): they may read
    /// it, and if it is sensitive, its private parts too.
    #[must_use]
    pub fn can_hold(&self, of: Ownership) -> bool {
        self.can_read(of) && (!of.sensitive || self.can_read_private(of))
    }

    /// Whether they may change a report with this ownership.
    #[must_use]
    pub fn can_write(&self, of: Ownership) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Supervisor => of.owner == Some(self.user_id) || self.in_team(of.team),
            Role::Field => of.owner == Some(self.user_id),
        }
    }

    /// The rule for filing a new report that the write policy's per-path rows do not
    /// express: a field employee files reports in their own name. (Everything else a
    /// write may do is decided op by op by [`super::policy`].)
    pub fn check_new(&self, report: &Report) -> Result<(), String> {
        if self.role == Role::Field && report.reporter.trim() != self.name.trim() {
            return Err(format!(
                "you can only file reports in your own name ({})",
                self.name
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ReportId, Timestamp};

    const NOW: Timestamp = Timestamp(1_764_000_000_000);

    fn viewer(role: Role) -> Viewer {
        Viewer {
            user_id: Uuid::from_u128(1),
            name: "Ana Field".into(),
            login: "ana".into(),
            role,
            teams: vec![Uuid::from_u128(10)],
        }
    }

    const OWN: Ownership = Ownership {
        owner: Some(Uuid::from_u128(1)),
        team: Some(Uuid::from_u128(10)),
        sensitive: false,
    };
    const SAME_TEAM: Ownership = Ownership {
        owner: Some(Uuid::from_u128(2)),
        team: Some(Uuid::from_u128(10)),
        sensitive: false,
    };
    const OTHER_TEAM: Ownership = Ownership {
        owner: Some(Uuid::from_u128(3)),
        team: Some(Uuid::from_u128(20)),
        sensitive: false,
    };
    const UNOWNED: Ownership = Ownership {
        owner: None,
        team: None,
        sensitive: false,
    };

    #[test]
    fn only_those_who_may_read_the_private_parts_hold_a_sensitive_report_on_a_device() {
        let sensitive = |of: Ownership| Ownership {
            sensitive: true,
            ..of
        };
        // (role, ownership, private, hold sensitive)
        let table = [
            (Role::Field, OWN, true, true),
            (Role::Field, SAME_TEAM, false, false),
            (Role::Field, OTHER_TEAM, false, false),
            (Role::Supervisor, OWN, true, true),
            (Role::Supervisor, SAME_TEAM, true, true),
            (Role::Supervisor, OTHER_TEAM, false, false),
            (Role::Admin, OTHER_TEAM, true, true),
            (Role::Admin, UNOWNED, true, true),
        ];
        for (role, of, private, hold) in table {
            let v = viewer(role);
            assert_eq!(v.can_read_private(of), private, "{role:?} {of:?}");
            assert_eq!(v.can_hold(sensitive(of)), hold, "{role:?} {of:?}");
            assert_eq!(v.can_hold(of), v.can_read(of), "{role:?} {of:?}: not sensitive");
        }
    }

    #[test]
    fn every_role_against_every_ownership() {
        // (role, ownership, read, write)
        let table = [
            (Role::Field, OWN, true, true),
            (Role::Field, SAME_TEAM, true, false),
            (Role::Field, OTHER_TEAM, false, false),
            (Role::Field, UNOWNED, false, false),
            (Role::Supervisor, OWN, true, true),
            (Role::Supervisor, SAME_TEAM, true, true),
            (Role::Supervisor, OTHER_TEAM, false, false),
            (Role::Supervisor, UNOWNED, false, false),
            (Role::Admin, OWN, true, true),
            (Role::Admin, SAME_TEAM, true, true),
            (Role::Admin, OTHER_TEAM, true, true),
            (Role::Admin, UNOWNED, true, true),
        ];
        for (role, of, read, write) in table {
            let v = viewer(role);
            assert_eq!(v.can_read(of), read, "{role} read {of:?}");
            assert_eq!(v.can_write(of), write, "{role} write {of:?}");
            assert!(!write || read, "whoever writes also reads");
        }
    }

    fn report(reporter: &str, status: Status) -> Report {
        let mut r = Report::blank(ReportId::new_v7(NOW, [1; 10]), NOW, reporter);
        r.status = status;
        r
    }

    #[test]
    fn field_employees_file_reports_in_their_own_name() {
        let field = viewer(Role::Field);
        assert!(field.check_new(&report("Ana Field", Status::Reported)).is_ok());
        assert!(field.check_new(&report(" Ana Field ", Status::Reported)).is_ok());
        assert!(
            field
                .check_new(&report("Someone Else", Status::Reported))
                .is_err()
        );
        for role in [Role::Supervisor, Role::Admin] {
            assert!(
                viewer(role)
                    .check_new(&report("Someone Else", Status::Reported))
                    .is_ok()
            );
        }
    }

    #[test]
    fn roles_read_back_from_their_keys() {
        for role in Role::ALL {
            assert_eq!(role.key().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
