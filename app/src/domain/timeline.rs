//! A report's timeline: dated updates, each addressed to an audience.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;

/// Who an update is for. Everyone who may read a report can read all of it (the document
/// is theirs to sync): the audience says whom the update is addressed to and where it is
/// shown, not who may see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The response team (shown at the desk).
    #[default]
    Team,
    /// Also the person who reported it: shown on their phone with the report.
    Reporter,
}

impl Audience {
    /// Every audience, in form order.
    pub const ALL: [Audience; 2] = [Self::Team, Self::Reporter];

    /// The stored key.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Reporter => "reporter",
        }
    }

    /// A label for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Team => "The response team",
            Self::Reporter => "The team and the reporter (shown on their phone)",
        }
    }

    /// An audience from its stored key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == key)
    }
}

/// One dated entry in a report's timeline: what someone observed, did or decided.
///
/// Entries are only ever appended, never edited or removed, so concurrent additions from
/// several devices and supervisors all survive a merge.
///
/// In the document each entry is one scalar string (see `crate::document`), so it
/// implements `Reconcile` there rather than deriving it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Made where the entry was written; identifies it across merges.
    pub id: Uuid,
    /// When it was written.
    pub at: Timestamp,
    /// Who wrote it (their name as it was).
    pub author: String,
    /// Their user id (absent from entries written before the write policy): the sync
    /// gate accepts a new entry only from the person it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<Uuid>,
    /// What happened, was done or was decided.
    pub text: String,
    /// Whom it is for (absent from entries written before audiences: the team).
    #[serde(default)]
    pub audience: Audience,
}
