//! Administration: people and teams, response plans, categories, quarantined documents
//! and the webhook's delivery log.

mod categories;
mod people;
mod plans;
mod quarantine;
mod webhooks;

pub use categories::CategoriesPage;
pub use people::PeoplePage;
pub use plans::PlansPage;
pub use quarantine::QuarantinePage;
pub use webhooks::WebhooksPage;
