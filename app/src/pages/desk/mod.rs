//! The supervisor's desk: the incident list, an incident's page with its response
//! (investigation, actions, review), and alerts.

mod alerts;
mod incidents;
mod response;

pub use alerts::AlertsPage;
pub use incidents::{IncidentListPage, IncidentPage};
