//! What every rule shares: the limits on text and lists, and the error a form shows beside
//! a field. A leaf: every part of the domain checks itself with these.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest free-text field (what happened, immediate actions), in characters.
pub const MAX_TEXT: usize = 10_000;
/// Longest short text (names, places, reporter), in characters.
pub const MAX_SHORT: usize = 200;
/// Most people that can be listed on one report.
pub const MAX_PEOPLE: usize = 100;
/// Most timeline entries one report can hold.
pub const MAX_TIMELINE: usize = 2_000;
/// One reason a report is not acceptable, named by field so a form can show it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name in the document (`title`, `location`, ...).
    pub field: String,
    /// What is wrong, in words a reporter understands.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
