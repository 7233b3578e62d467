//! The response workflow an incident moves through:
//! reported → triaged → investigating → resolved → reviewed → closed, with reopen.

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};

/// Where an incident is in its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Reconcile)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Filed, not yet looked at.
    #[autosurgeon(rename = "reported")]
    Reported,
    /// A supervisor has set severity, priority and an owner.
    #[autosurgeon(rename = "triaged")]
    Triaged,
    /// Root cause is being established.
    #[autosurgeon(rename = "investigating")]
    Investigating,
    /// Corrective actions are in place.
    #[autosurgeon(rename = "resolved")]
    Resolved,
    /// The post-incident review is done.
    #[autosurgeon(rename = "reviewed")]
    Reviewed,
    /// Nothing further to do.
    #[autosurgeon(rename = "closed")]
    Closed,
}

impl Status {
    /// Every status, in workflow order.
    pub const ALL: [Status; 6] = [
        Self::Reported,
        Self::Triaged,
        Self::Investigating,
        Self::Resolved,
        Self::Reviewed,
        Self::Closed,
    ];

    /// The stored key.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reported => "reported",
            Self::Triaged => "triaged",
            Self::Investigating => "investigating",
            Self::Resolved => "resolved",
            Self::Reviewed => "reviewed",
            Self::Closed => "closed",
        }
    }

    /// A label for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Reported => "Reported",
            Self::Triaged => "Triaged",
            Self::Investigating => "Investigating",
            Self::Resolved => "Resolved",
            Self::Reviewed => "Reviewed",
            Self::Closed => "Closed",
        }
    }

    /// Parses a stored key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == key)
    }

    /// Whether an incident may move from `self` to `to`.
    ///
    /// Forward one step at a time; a resolved, reviewed or closed incident can be reopened
    /// (back to investigating). Staying put is always allowed.
    #[must_use]
    pub fn can_move_to(self, to: Status) -> bool {
        use Status::*;
        self == to
            || matches!(
                (self, to),
                (Reported, Triaged)
                    | (Triaged, Investigating)
                    | (Investigating, Resolved)
                    | (Resolved, Reviewed)
                    | (Reviewed, Closed)
                    | (Resolved | Reviewed | Closed, Investigating)
            )
    }

    /// Whether moving from `self` to `to` reopens a finished incident.
    #[must_use]
    pub fn is_reopen(self, to: Status) -> bool {
        to == Self::Investigating && matches!(self, Self::Resolved | Self::Reviewed | Self::Closed)
    }

    /// The status that stands when several people moved an incident concurrently: each
    /// write is (the status written, the status it replaced, if known).
    ///
    /// A reopen wins: someone found the incident needs more work, and a concurrent close
    /// must not bury that. Otherwise the furthest status wins, so a stale move made offline
    /// (triaging a report someone has since resolved) never drags the incident back.
    /// Either way the values stay visible as a conflict until a person chooses.
    #[must_use]
    pub fn settle(writes: &[(Status, Option<Status>)]) -> Option<Status> {
        if writes
            .iter()
            .any(|(to, from)| from.is_some_and(|from| from.is_reopen(*to)))
        {
            return Some(Self::Investigating);
        }
        writes.iter().map(|(to, _)| *to).max()
    }

    /// The statuses reachable from here, including staying put.
    #[must_use]
    pub fn next_choices(self) -> Vec<Status> {
        Self::ALL.into_iter().filter(|s| self.can_move_to(*s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Status::{self, *};

    #[test]
    fn every_pair_of_statuses_is_decided() {
        let allowed = [
            (Reported, Triaged),
            (Triaged, Investigating),
            (Investigating, Resolved),
            (Resolved, Reviewed),
            (Reviewed, Closed),
            (Resolved, Investigating),
            (Reviewed, Investigating),
            (Closed, Investigating),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                let expected = from == to || allowed.contains(&(from, to));
                assert_eq!(from.can_move_to(to), expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn concurrent_moves_settle_on_a_reopen_else_the_furthest() {
        // A close and a reopen of a reviewed incident: the reopen stands.
        assert_eq!(
            Status::settle(&[(Closed, Some(Reviewed)), (Investigating, Some(Reviewed))]),
            Some(Investigating)
        );
        // A stale triage against a resolution: the resolution stands.
        assert_eq!(
            Status::settle(&[(Triaged, Some(Reported)), (Resolved, Some(Investigating))]),
            Some(Resolved)
        );
        // Investigating reached by the normal step is not a reopen.
        assert_eq!(
            Status::settle(&[(Investigating, Some(Triaged)), (Closed, Some(Reviewed))]),
            Some(Closed)
        );
        assert_eq!(
            Status::settle(&[(Triaged, None), (Reported, None)]),
            Some(Triaged)
        );
        assert_eq!(Status::settle(&[]), None);
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(
                    from.is_reopen(to),
                    to == Investigating && from.can_move_to(to) && from > to,
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn keys_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::from_key(s.as_str()), Some(s));
        }
        assert_eq!(Status::from_key("archived"), None);
    }
}
