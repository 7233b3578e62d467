//! Categories: the kind of incident, an open set administrators extend.

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};

/// The category whose reports carry the OSHA Form 301 details and a regulatory outcome.
pub const INJURY_CATEGORY: &str = "injury_illness";

/// The kind of incident. A short lowercase key (`near_miss`); administrators add their
/// own ([`CategoryDef`]), so it is an open set checked by shape rather than a closed enum.
/// A device may hold a list older than the server's, so reports are not refused for a key
/// the server does not list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile)]
#[serde(transparent)]
pub struct Category(pub String);

impl Category {
    /// The categories every organisation starts with: (key, label).
    pub const DEFAULTS: [(&'static str, &'static str); 9] = [
        ("injury_illness", "Injury or illness"),
        ("near_miss", "Near miss"),
        ("property_damage", "Property damage"),
        ("environmental_release", "Environmental release"),
        ("security", "Security"),
        ("vehicle", "Vehicle"),
        ("equipment_failure", "Equipment failure"),
        ("operational_outage", "Operational outage"),
        ("other", "Other"),
    ];

    /// A category from its key.
    #[must_use]
    pub fn new(key: &str) -> Self {
        Self(key.to_owned())
    }

    /// A label for people: the default label, or the key made readable.
    #[must_use]
    pub fn label(&self) -> String {
        Self::DEFAULTS
            .iter()
            .find(|(k, _)| *k == self.0)
            .map_or_else(|| self.0.replace('_', " "), |(_, l)| (*l).to_owned())
    }

    /// Whether this is an injury or illness (which carries the OSHA Form 301 details).
    #[must_use]
    pub fn is_injury(&self) -> bool {
        self.0 == INJURY_CATEGORY
    }

    /// The key for a new category named `label`: lowercase letters, digits and `_`
    /// (`"Chemical spill"` → `chemical_spill`), if the label has any letters or digits.
    #[must_use]
    pub fn key_for(label: &str) -> Option<Self> {
        let mut key = String::new();
        for c in label.trim().chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                key.push(c);
            } else if !key.ends_with('_') && !key.is_empty() {
                key.push('_');
            }
        }
        let key: String = key.trim_end_matches('_').chars().take(40).collect();
        let key = Self(key.trim_end_matches('_').to_owned());
        key.is_well_formed().then_some(key)
    }

    /// Whether the key has the shape every category key has.
    #[must_use]
    pub fn is_well_formed(&self) -> bool {
        (1..=40).contains(&self.0.len())
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }
}

/// A category as administrators define it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryDef {
    /// The stored key, fixed once made.
    pub key: Category,
    /// The name people see.
    pub label: String,
    /// Offered for new reports (retired ones stay on the reports that have them).
    pub active: bool,
}

impl CategoryDef {
    /// The seeded categories, as defined before any administrator changes them.
    #[must_use]
    pub fn defaults() -> Vec<Self> {
        Category::DEFAULTS
            .iter()
            .map(|(key, label)| Self {
                key: Category::new(key),
                label: (*label).to_owned(),
                active: true,
            })
            .collect()
    }

    /// The label of `key` in `list`, else its default label or its key made readable.
    #[must_use]
    pub fn label_of(list: &[Self], key: &Category) -> String {
        list.iter()
            .find(|c| c.key == *key)
            .map_or_else(|| key.label(), |c| c.label.clone())
    }

    /// The label's rules, as a reason to refuse it.
    pub fn check_label(label: &str) -> Result<(), String> {
        let count = label.trim().chars().count();
        if count == 0 || count > 60 {
            return Err("Give the category a name of 1 to 60 characters.".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::domain::report::tests::sample;

    #[test]
    fn a_new_category_gets_a_key_from_its_label() {
        let key = |l: &str| Category::key_for(l).map(|c| c.0);
        assert_eq!(key("Chemical spill").as_deref(), Some("chemical_spill"));
        assert_eq!(
            key("  Slips, trips & falls! ").as_deref(),
            Some("slips_trips_falls")
        );
        assert_eq!(key("Fire 2").as_deref(), Some("fire_2"));
        assert_eq!(key("Éboulement").as_deref(), Some("boulement"));
        assert_eq!(key("!!!"), None);
        assert_eq!(key(&"a".repeat(60)).map(|k| k.len()), Some(40));
        let defs = CategoryDef::defaults();
        assert_eq!(
            CategoryDef::label_of(&defs, &Category::new("near_miss")),
            "Near miss"
        );
        assert_eq!(CategoryDef::label_of(&defs, &Category::new("fire_2")), "fire 2");
        assert!(CategoryDef::check_label(" ").is_err());
        assert!(CategoryDef::check_label("Fire").is_ok());
    }

    #[test]
    fn categories_are_checked_by_shape() {
        let mut r = sample();
        r.category = Category::new("Near Miss!");
        assert!(r.validate(Timestamp(1_764_000_000_000)).is_err());
        assert_eq!(Category::new("near_miss").label(), "Near miss");
        assert_eq!(Category::new("chemical_spill").label(), "chemical spill");
    }
}
