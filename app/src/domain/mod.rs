//! The pure incident domain: reports, severity, priority, categories, locations and the
//! workflow.
//!
//! No IO, no clock, no randomness: time and ids are passed in.

pub mod access;
pub mod priority;
pub mod report;
pub mod workflow;

pub use priority::{Clock, Impact, Outcome, Priority, Urgency};
pub use report::{
    Category, FieldError, GpsFix, Location, Report, ReportId, Severity, TimelineEntry, Timestamp,
};
pub use workflow::Status;
