//! What a profile may hold.

use dm_shared::model::{Profile, Visibility};
use dm_shared::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const MAX_FIELD: usize = 256;
const MAX_BIO: usize = 1_000;

/// The profile fields a request sets; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bio: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pronouns: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence: Option<Visibility>,
    /// The member's own settings, as a JSON Merge Patch: kept in their settings item, never here.
    #[serde(default, skip_serializing)]
    settings: Option<Value>,
}

impl ProfileChanges {
    fn as_object(&self) -> Result<Map<String, Value>> {
        match serde_json::to_value(self).map_err(Error::internal)? {
            Value::Object(fields) => Ok(fields),
            _ => Err(Error::internal_msg("profile changes are not an object")),
        }
    }

    /// The change to the member's settings, if any (a JSON Merge Patch of the seed's `settings`).
    pub fn settings(&self) -> Option<&Value> {
        self.settings.as_ref()
    }

    /// The presence visibility asked for, if the change sets it.
    pub fn presence(&self) -> Option<Visibility> {
        self.presence
    }

    pub fn check(&self) -> Result<()> {
        for (name, value) in self.as_object()? {
            let value = value.as_str().unwrap_or_default();
            let max = if name == "bio" { MAX_BIO } else { MAX_FIELD };
            if value.chars().count() > max {
                return Err(Error::bad_request(format!("{name} is longer than {max} characters")));
            }
            if name != "bio" && value.chars().any(char::is_control) {
                return Err(Error::bad_request(format!("{name} holds control characters")));
            }
        }
        // Do-not-disturb windows are read in it.
        if let Some(zone) = self.time_zone.as_deref().filter(|zone| !zone.is_empty())
            && jiff::tz::TimeZone::get(zone).is_err()
        {
            return Err(Error::bad_request("time_zone is an IANA time zone name, such as Europe/Paris"));
        }
        Ok(())
    }

    /// `profile` with these changes applied: a new member's (added, or joining by invite), whose
    /// settings are theirs to set later.
    pub fn apply(&self, profile: Profile) -> Result<Profile> {
        if self.settings.is_some() {
            return Err(Error::bad_request("settings are the member's own: they set them through their profile"));
        }
        self.check()?;
        let mut merged = serde_json::to_value(profile).map_err(Error::internal)?;
        if let Value::Object(fields) = &mut merged {
            fields.extend(self.as_object()?);
        }
        serde_json::from_value(merged).map_err(Error::internal)
    }
}

/// A display name of 1 to 100 characters, trimmed.
pub fn check_name(name: &str, field: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::bad_request(format!("{field} must be 1 to 100 characters")));
    }
    Ok(name.to_owned())
}

pub fn check_email(email: &str) -> Result<String> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(Error::bad_request("email is not a valid address"));
    }
    Ok(email.to_owned())
}
