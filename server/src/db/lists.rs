//! The reference lists devices hold: response plans and categories, and their version.

use super::*;

/// How long a read of the lists' version is reused. This instance's own changes to plans
/// and categories reach devices at once; another instance's within this time.
pub(super) const LISTS_VERSION_TTL: Duration = Duration::from_secs(2);

impl Store {
    /// A short version of the reference lists devices keep (response plans and
    /// categories): the first 8 bytes of a SHA-256 over each plan's category and when it
    /// changed and each category's key and when it changed, in hex, so a device that holds
    /// them is not sent them again. Read at most every 2 s (every sync
    /// asks).
    #[tracing::instrument(name = "db.lists_version", skip_all)]
    pub async fn lists_version(&self) -> Result<String, DbError> {
        if let Some((read_at, version)) = &*self.cached_lists_version()
            && read_at.elapsed() < LISTS_VERSION_TTL
        {
            return Ok(version.clone());
        }
        #[derive(sqlx::FromRow)]
        struct Row {
            list: String,
            item: String,
            updated_at: i64,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query(
                "SELECT 'plan' AS list, category AS item, updated_at FROM plans
                 UNION ALL SELECT 'category', key, updated_at FROM categories
                 ORDER BY list, item",
            )
            .fetch_all(&self.pool)
            .await,
            "reading the lists' versions",
        )?;
        let mut hash = sha2::Sha256::new();
        for row in &rows {
            hash.update(format!("{}:{}@{}\n", row.list, row.item, row.updated_at));
        }
        let version = hex::encode(&hash.finalize()[..8]);
        *self.cached_lists_version() = Some((std::time::Instant::now(), version.clone()));
        Ok(version)
    }

    pub(super) fn cached_lists_version(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(std::time::Instant, String)>> {
        // A poisoned cache is only a stale cache.
        self.lists_version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every report category, active or retired, in the order forms list them.
    #[tracing::instrument(name = "db.categories", skip_all)]
    pub async fn categories(&self) -> Result<Vec<app::domain::CategoryDef>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            key: String,
            label: String,
            active: i64,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query("SELECT key, label, active FROM categories ORDER BY position, key")
                .fetch_all(&self.pool)
                .await,
            "reading categories",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| app::domain::CategoryDef {
                key: app::domain::Category(r.key),
                label: r.label,
                active: r.active == 1,
            })
            .collect())
    }

    /// Adds a category (listed last) or changes one's label and whether it is offered.
    /// Keys never change: reports hold them.
    #[tracing::instrument(name = "db.save_category", skip_all)]
    pub async fn save_category(
        &self,
        category: &app::domain::CategoryDef,
        now: Timestamp,
    ) -> Result<(), DbError> {
        let result = sqlx::query(&self.sql(
            "INSERT INTO categories (key, label, position, active, updated_at)
             VALUES ($1, $2, (SELECT COALESCE(MAX(position), 0) + 1 FROM categories), $3, $4)
             ON CONFLICT (key) DO UPDATE SET label = excluded.label, active = excluded.active,
               updated_at = excluded.updated_at",
        ))
        .bind(category.key.0.clone())
        .bind(category.label.trim().to_owned())
        .bind(i64::from(category.active))
        .bind(now.0)
        .execute(&self.pool)
        .await
        .context("saving a category");
        *self.cached_lists_version() = None;
        result.map(|_| ())
    }

    /// Every response plan, by category.
    #[tracing::instrument(name = "db.plans", skip_all)]
    pub async fn plans(&self) -> Result<Vec<app::domain::Plan>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            category: String,
            steps: String,
            updated_at: i64,
        }
        let rows: Vec<Row> = rows_of(
            sqlx::query("SELECT category, steps, updated_at FROM plans ORDER BY category")
                .fetch_all(&self.pool)
                .await,
            "reading response plans",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(app::domain::Plan {
                    category: app::domain::Category(r.category),
                    steps: serde_json::from_str(&r.steps).ok()?,
                    updated_at: Timestamp(r.updated_at),
                })
            })
            .collect())
    }

    /// Replaces the response plan of `category` (no steps: removes it).
    #[tracing::instrument(name = "db.set_plan", skip_all)]
    pub async fn set_plan(
        &self,
        category: &str,
        steps: &[app::domain::PlanStep],
        by: uuid::Uuid,
        now: Timestamp,
    ) -> Result<(), DbError> {
        let result = self.write_plan(category, steps, by, now).await;
        *self.cached_lists_version() = None;
        result
    }

    pub(super) async fn write_plan(
        &self,
        category: &str,
        steps: &[app::domain::PlanStep],
        by: uuid::Uuid,
        now: Timestamp,
    ) -> Result<(), DbError> {
        if steps.is_empty() {
            sqlx::query(&self.sql("DELETE FROM plans WHERE category = $1"))
                .bind(category.to_owned())
                .execute(&self.pool)
                .await
                .context("removing a response plan")?;
            return Ok(());
        }
        sqlx::query(&self.sql(
            "INSERT INTO plans (category, steps, updated_at, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (category) DO UPDATE SET steps = excluded.steps, updated_at = excluded.updated_at,
               updated_by = excluded.updated_by",
        ))
        .bind(category.to_owned())
        .bind(serde_json::to_string(steps).unwrap_or_else(|_| "[]".to_owned()))
        .bind(now.0)
        .bind(by.to_string())
        .execute(&self.pool)
        .await
        .context("saving a response plan")?;
        Ok(())
    }
}
