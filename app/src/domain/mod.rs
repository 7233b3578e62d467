//! The pure incident domain: reports, severity, priority, categories, locations, the
//! workflow, the response (assignment, investigation, actions, review) and photos.
//!
//! No IO, no clock, no randomness: time and ids are passed in.

/// The methods of a closed set of values stored by key: `ALL`, `as_str`, `label`,
/// `from_key`, and its `Reconcile` (written into documents as its key), so each key is
/// spelled once.
macro_rules! keyed {
    ($t:ident { $($v:ident = $key:literal, $label:literal;)+ }) => {
        impl $t {
            /// Every value, in the order forms list them.
            pub const ALL: &'static [$t] = &[$(Self::$v),+];

            /// The stored key.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $key),+ }
            }

            /// A label for people.
            #[must_use]
            pub fn label(self) -> &'static str {
                match self { $(Self::$v => $label),+ }
            }

            /// A value from its stored key.
            #[must_use]
            pub fn from_key(key: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == key)
            }
        }

        impl autosurgeon::Reconcile for $t {
            type Key<'a> = autosurgeon::reconcile::NoKey;

            fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.as_str())
            }
        }
    };
}

/// Writes a list field as it stands, entry by entry. A report's lists are written whole
/// only into a new document (`ReportDoc::create`); every later edit writes entries
/// (`document::edit`). So this skips autosurgeon's diff of old and new entries, whose code
/// the phone would otherwise download for every list type. Entries already in the list
/// are replaced.
pub(crate) fn list_as_is<T: autosurgeon::Reconcile, R: autosurgeon::Reconciler>(
    items: &[T],
    mut reconciler: R,
) -> Result<(), R::Error> {
    use autosurgeon::reconcile::SeqReconciler;
    let mut seq = reconciler.seq()?;
    for i in (0..seq.len()?).rev() {
        seq.delete(i)?;
    }
    for (i, item) in items.iter().enumerate() {
        seq.insert(i, item)?;
    }
    Ok(())
}

pub mod access;
pub mod category;
pub mod drill;
pub mod ids;
pub mod injury;
pub mod location;
pub mod photo;
pub mod plan;
pub mod policy;
pub mod priority;
pub mod report;
pub mod response;
pub mod timeline;
pub mod validation;
pub mod workflow;

pub use category::{Category, CategoryDef, INJURY_CATEGORY};
pub use drill::{Drill, DrillEvent, ReportKind, Scenario};
pub use ids::{ReportId, Timestamp};
pub use injury::{Injury, Treatment, Witness};
pub use location::{GpsFix, Location};
pub use photo::PhotoRef;
pub use plan::{Plan, PlanStep, PlanTick};
pub use priority::{Clock, Impact, Outcome, Priority, Urgency};
pub use report::{Report, Severity};
pub use response::{Action, ActionKind, ActionState, Effectiveness, Response, Review};
pub use timeline::{Audience, TimelineEntry};
pub use validation::FieldError;
pub use workflow::Status;
