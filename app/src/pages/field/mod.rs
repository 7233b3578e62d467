//! What a field employee uses on the phone, offline first: signing in, the report form and
//! its plan checklist, the outbox, a report's outcome, and the actions they own.

mod drill;
mod my_actions;
mod outbox;
mod plan_checklist;
mod report_form;
mod signin;

pub use drill::DrillPage;
pub use my_actions::MyActionsPage;
pub use outbox::OutboxPage;
pub use report_form::ReportFormPage;
pub use signin::{DemoAccount, DemoMode, SignInPage};
