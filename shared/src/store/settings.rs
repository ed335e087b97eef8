//! A member's own settings, one item beside their rows, changed only where it was read (a version),
//! so two changes at once never lose one.

use serde::{Deserialize, Serialize};

use super::{Store, keys};
use crate::error::{Error, Result};
use crate::ids::{OrgId, UserId};
use crate::notifications::Settings;

/// The settings as stored, with the version a change is conditioned on.
#[derive(Default, Serialize, Deserialize)]
pub struct StoredSettings {
    #[serde(flatten)]
    pub settings: Settings,
    #[serde(default)]
    pub version: u64,
}

impl Store {
    /// A member's settings (the defaults until they change one).
    pub async fn settings(&self, org: &OrgId, user: &UserId) -> Result<StoredSettings> {
        Ok(self.get(&keys::settings(org, user)).await?.unwrap_or_default())
    }

    /// Many members' settings in one batch read, in the order of `users`.
    pub async fn settings_of(&self, org: &OrgId, users: &[UserId]) -> Result<Vec<Settings>> {
        let wanted: Vec<_> = users.iter().map(|user| keys::settings(org, user)).collect();
        let found = if wanted.is_empty() { Vec::new() } else { self.get_many(&wanted).await? };
        found
            .into_iter()
            .map(|item| Ok(item.map(super::from_item::<StoredSettings>).transpose()?.unwrap_or_default().settings))
            .collect()
    }

    /// Stores `settings` over `read` (what they were made from): 409 when they changed meanwhile.
    pub async fn save_settings(
        &self,
        org: &OrgId,
        user: &UserId,
        read: &StoredSettings,
        settings: Settings,
    ) -> Result<()> {
        let stored = StoredSettings { settings, version: read.version + 1 };
        let mut put = self.new_item(&keys::settings(org, user), &stored)?;
        if read.version > 0 {
            put.condition_expression = Some("version = :read".into());
            put.expression_attribute_values =
                Some([(":read".to_owned(), super::messages::value(&read.version)?)].into_iter().collect());
        }
        match self.put_if(put).await? {
            true => Ok(()),
            false => Err(Error::conflict("Your settings changed meanwhile: read them again")),
        }
    }
}
