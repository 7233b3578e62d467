//! Response plans: what to do when an incident of a category happens, as ordered steps,
//! each for a role. Administrators write them; every device keeps a copy so they open
//! offline; while reporting, the reporter ticks the steps done, and each tick is kept in
//! the report's document with its time.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::validation::{MAX_SHORT, MAX_TEXT};
use super::{Category, Timestamp};

/// Most steps in one plan.
pub const MAX_STEPS: usize = 50;
/// Most ticks one report can hold.
pub const MAX_TICKS: usize = 500;

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    /// Stable while the step's role and text stay the same (a hash of both), so a tick
    /// keeps pointing at its step when other steps are added, removed or moved.
    pub id: String,
    /// Who does it ("Whoever reports", "First aider", "Supervisor").
    pub role: String,
    /// What to do.
    pub text: String,
}

impl PlanStep {
    /// A step, its id made from its role and text.
    #[must_use]
    pub fn new(role: &str, text: &str) -> Self {
        let (role, text) = (role.trim(), text.trim());
        let digest = Sha256::digest(format!("{role}\n{text}").as_bytes());
        Self {
            id: hex::encode(&digest[..8]),
            role: role.to_owned(),
            text: text.to_owned(),
        }
    }
}

/// The response plan of one category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The category it is for.
    pub category: Category,
    /// Its steps, in order.
    pub steps: Vec<PlanStep>,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

impl Plan {
    /// Reads the steps from text, one per line as `role: what to do` (a line without a
    /// role is for whoever reports). Blank lines are skipped.
    pub fn parse_steps(text: &str) -> Result<Vec<PlanStep>, String> {
        let steps: Vec<PlanStep> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| match line.split_once(':') {
                Some((role, step)) if !role.trim().is_empty() && !step.trim().is_empty() => {
                    PlanStep::new(role, step)
                }
                _ => PlanStep::new(WHOEVER_REPORTS, line),
            })
            .collect();
        if steps.len() > MAX_STEPS {
            return Err(format!("A plan has at most {MAX_STEPS} steps."));
        }
        if steps
            .iter()
            .any(|s| s.role.chars().count() > MAX_SHORT || s.text.chars().count() > MAX_TEXT)
        {
            return Err(format!(
                "Keep each role under {MAX_SHORT} characters and each step under {MAX_TEXT}."
            ));
        }
        let mut ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("Two steps are the same; say each once.".to_owned());
        }
        Ok(steps)
    }

    /// The steps as the editor shows them (the inverse of [`Plan::parse_steps`]).
    #[must_use]
    pub fn steps_text(&self) -> String {
        self.steps
            .iter()
            .map(|s| format!("{}: {}", s.role, s.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The role of a step written without one.
pub const WHOEVER_REPORTS: &str = "Whoever reports";

/// A step ticked done while reporting. Kept in the report's document (append-only), with
/// the step's words as they were, so the report says what was done even after the plan
/// changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTick {
    /// The step's id.
    pub step: String,
    /// The step's role and text when it was ticked.
    pub role: String,
    /// What was done.
    pub text: String,
    /// When it was ticked (the device's clock).
    pub at: Timestamp,
    /// Who ticked it (their name as it was).
    pub by: String,
    /// Their user id (absent from ticks made before the write policy): the sync gate
    /// accepts a new tick only from the person it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_id: Option<uuid::Uuid>,
}

impl PlanTick {
    /// A tick of `step` by the person `by` (user `by_id`) at `at`.
    #[must_use]
    pub fn of(step: &PlanStep, by: &str, by_id: uuid::Uuid, at: Timestamp) -> Self {
        Self {
            step: step.id.clone(),
            role: step.role.clone(),
            text: step.text.clone(),
            at,
            by: by.to_owned(),
            by_id: Some(by_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_one_per_line_with_roles_and_ids_stable_under_reordering() {
        let steps = Plan::parse_steps(
            "Whoever reports: Make the area safe\n\n First aider : Treat the injured\nCall the supervisor",
        )
        .unwrap();
        let roles: Vec<&str> = steps.iter().map(|s| s.role.as_str()).collect();
        assert_eq!(roles, ["Whoever reports", "First aider", WHOEVER_REPORTS]);
        assert_eq!(steps[1].text, "Treat the injured");
        let moved =
            Plan::parse_steps("First aider: Treat the injured\nWhoever reports: Make the area safe").unwrap();
        assert_eq!(moved[0].id, steps[1].id, "a step keeps its id when moved");
        assert_ne!(steps[0].id, steps[1].id);
        let plan = Plan {
            category: Category::new("injury_illness"),
            steps: steps.clone(),
            updated_at: Timestamp(0),
        };
        assert_eq!(Plan::parse_steps(&plan.steps_text()).unwrap(), steps);
    }

    #[test]
    fn plans_are_bounded_and_say_each_step_once() {
        assert!(
            Plan::parse_steps(&"Step\n".repeat(2)).is_err(),
            "the same step twice"
        );
        let many: String = (0..=MAX_STEPS).map(|i| format!("Step {i}\n")).collect();
        assert!(Plan::parse_steps(&many).is_err());
    }
}
