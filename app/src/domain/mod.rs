//! The pure incident domain: reports, severity, priority, categories, locations, the
//! workflow and the response (assignment, investigation, actions, review).
//!
//! No IO, no clock, no randomness: time and ids are passed in.

pub mod access;
pub mod plan;
pub mod priority;
pub mod report;
pub mod response;
pub mod workflow;

pub use plan::{Plan, PlanStep, PlanTick};
pub use priority::{Clock, Impact, Outcome, Priority, Urgency};
pub use report::{
    Audience, Category, FieldError, GpsFix, Location, Report, ReportId, Severity, TimelineEntry, Timestamp,
};
pub use response::{Action, ActionKind, ActionState, Effectiveness, Response, Review};
pub use workflow::Status;
