//! The supervisor's desk: the incident list, an incident's page with its response
//! (investigation, actions, review), and alerts.

mod alerts;
mod drills;
mod incidents;
mod response;

pub use alerts::AlertsPage;
pub use drills::{DrillBoardPage, DrillRunPage};
pub use incidents::{IncidentListPage, IncidentPage};
