//! A member's Web Push subscriptions in an org: one item each beside their rows, keyed by a digest of
//! the endpoint (a browser subscribing again replaces its keys), and a count that caps them, kept
//! in the same transactions.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::messages::{tx_update, value};
use super::{Store, failed_at, from_item, keys};
use crate::error::{Error, Result};
use crate::ids::{OrgId, SubscriptionId, UserId};
use crate::push::{MAX_SUBSCRIPTIONS, NewSubscription, SubscriptionKeys};

/// A subscription as kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub subscription_id: SubscriptionId,
    pub endpoint: String,
    pub keys: SubscriptionKeys,
    pub created_at: String,
}

/// Whether a subscription was new.
pub enum Subscribed {
    New(Subscription),
    /// The endpoint (this subscription id) was kept already: its keys are the ones given now.
    Renewed(SubscriptionId),
}

/// The id of the subscription at `endpoint`: 128 bits of its SHA-256, base64url.
fn subscription_id(endpoint: &str) -> Result<SubscriptionId> {
    SubscriptionId::parse(URL_SAFE_NO_PAD.encode(&Sha256::digest(endpoint.as_bytes())[..16]))
}

impl Store {
    /// Keeps a checked subscription of `user`'s; 409 past `MAX_SUBSCRIPTIONS`.
    pub async fn subscribe(&self, org: &OrgId, user: &UserId, new: &NewSubscription) -> Result<Subscribed> {
        let subscription = Subscription {
            subscription_id: subscription_id(&new.endpoint)?,
            endpoint: new.endpoint.clone(),
            keys: new.keys.clone(),
            created_at: crate::time::now(),
        };
        let key = keys::push_subscription(org, user, &subscription.subscription_id);
        // Twice at most: a subscription forgotten between the put and its renewal is kept anew.
        for _ in 0..2 {
            let count = self
                .update_builder(&keys::push_count(org, user))
                .update_expression("ADD subscriptions :one")
                .condition_expression("attribute_not_exists(subscriptions) OR subscriptions < :max")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":max", value(&MAX_SUBSCRIPTIONS)?);
            let reasons = match self.transact(vec![self.put_new(&key, &subscription)?, tx_update(count)?]).await? {
                Ok(()) => return Ok(Subscribed::New(subscription)),
                Err(reasons) => reasons,
            };
            if failed_at(&reasons, 1) && !failed_at(&reasons, 0) {
                return Err(Error::conflict(format!(
                    "At most {MAX_SUBSCRIPTIONS} subscriptions a member: remove one of your browsers first"
                )));
            }
            if !failed_at(&reasons, 0) {
                return Err(Error::internal_msg("keeping a subscription failed no condition of its own"));
            }
            let renewed = self
                .update_item(&key)
                .update_expression("SET #keys = :keys")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_names("#keys", "keys")
                .expression_attribute_values(":keys", value(&new.keys)?);
            if self.update_if(renewed).await? {
                return Ok(Subscribed::Renewed(subscription.subscription_id));
            }
        }
        Err(Error::Throttled("a subscription kept being removed while it was renewed".into()))
    }

    /// `user`'s subscriptions in `org`.
    pub async fn subscriptions(&self, org: &OrgId, user: &UserId) -> Result<Vec<Subscription>> {
        let items = self.query_all(keys::user_rooms_pk(org, user), keys::PUSH_PREFIX, true).await?;
        items.into_iter().map(from_item).collect()
    }

    /// Forgets a subscription of `user`'s; 404 when there is none.
    pub async fn unsubscribe(&self, org: &OrgId, user: &UserId, subscription_id: &SubscriptionId) -> Result<()> {
        let count = self
            .update_builder(&keys::push_count(org, user))
            .update_expression("ADD subscriptions :less")
            .expression_attribute_values(":less", AttributeValue::N("-1".into()));
        let gone = super::tx::conditional_delete(self, &keys::push_subscription(org, user, subscription_id))?;
        match self.transact(vec![gone, tx_update(count)?]).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Err(Error::not_found("No such subscription")),
            Err(_) => Err(Error::internal_msg("forgetting a subscription failed no condition of its own")),
        }
    }
}
