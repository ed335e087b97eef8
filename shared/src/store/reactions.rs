//! Reactions on messages and replies. Each user's reaction with an emoji is its own item; the count
//! per emoji lives on the message (or reply) and changes in the same transaction, so a list shows it
//! without reading the reactions.

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::messages::{number, tx_update, value};
use super::{PostRef, Store, failed_at, from_item, keys, to_item};
use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, UserId};
use crate::model::Message;

/// The most distinct emoji one message carries.
pub const MAX_EMOJI: usize = 50;

/// One user's reaction with one emoji.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    pub reaction_id: String,
    pub org_id: OrgId,
    /// The message or reply it is on.
    pub message_id: MessageId,
    pub sender_id: UserId,
    pub emoji: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub created_at: String,
}

pub enum Reacted {
    New,
    /// The caller had reacted with this emoji already: their first reaction.
    Existing(Reaction),
}

impl Store {
    /// Adds `reaction` to `target` and counts it, in one transaction; the same user and emoji again
    /// changes nothing.
    pub async fn add_reaction(&self, target: &Message, reaction: &Reaction) -> Result<Reacted> {
        let key = keys::reaction(&target.room_id, &target.id, &reaction.emoji, &reaction.sender_id);
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(&key, reaction)?))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(Error::internal)?;
        let count = self
            .update_builder(&PostRef::of(target).key(&target.room_id))
            .update_expression(
                "SET reactions.#e = if_not_exists(reactions.#e, :zero) + :one, \
                 reacted_at.#e = if_not_exists(reacted_at.#e, :now)",
            )
            .condition_expression("attribute_exists(PK) AND (attribute_exists(reactions.#e) OR size(reactions) < :max)")
            .expression_attribute_names("#e", &reaction.emoji)
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":now", AttributeValue::S(reaction.created_at.clone()))
            // The map's `EMPTY_MAP_KEY` entry is not an emoji.
            .expression_attribute_values(":max", value(&(MAX_EMOJI + 1))?)
            // Tells a deleted message (nothing handed back) from one with too many emoji.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match self.transact(vec![TransactWriteItem::builder().put(put).build(), tx_update(count)?]).await? {
            Ok(()) => Ok(Reacted::New),
            Err(reasons) if failed_at(&reasons, 0) => {
                let first = match reasons.first().and_then(|r| r.item()) {
                    Some(item) => Some(from_item(item.clone())?),
                    None => self.get::<Reaction>(&key).await?,
                };
                first.map(Reacted::Existing).ok_or_else(|| Error::internal_msg("a reaction vanished while it was read"))
            }
            Err(reasons) if failed_at(&reasons, 1) && reasons[1].item().is_none_or(|item| item.is_empty()) => {
                Err(Error::not_found("message not found"))
            }
            Err(reasons) if failed_at(&reasons, 1) => {
                Err(Error::bad_request(format!("a message carries at most {MAX_EMOJI} different emoji")))
            }
            Err(_) => Err(Error::internal_msg("reacting failed a condition it cannot fail")),
        }
    }

    /// Every reaction on `target`, oldest first.
    pub async fn reactions(&self, target: &Message) -> Result<Vec<Reaction>> {
        let items = self.query_all(keys::room_pk(&target.room_id), &keys::reactions_prefix(&target.id), true).await?;
        let mut reactions = items.into_iter().map(from_item).collect::<Result<Vec<Reaction>>>()?;
        reactions.sort_by(|a, b| a.reaction_id.cmp(&b.reaction_id));
        Ok(reactions)
    }

    /// Removes `user`'s reaction with `emoji` and lowers the count, in one transaction; an emoji whose
    /// count reaches zero leaves the message.
    pub async fn remove_reaction(&self, target: &Message, emoji: &str, user: &UserId) -> Result<()> {
        if !target.reactions.contains_key(emoji) {
            return Err(Error::not_found("You have not reacted with this emoji"));
        }
        let target_key = PostRef::of(target).key(&target.room_id);
        let delete = super::tx::conditional_delete(self, &keys::reaction(&target.room_id, &target.id, emoji, user))?;
        let count = self
            .update_builder(&target_key)
            .update_expression("SET reactions.#e = reactions.#e - :one")
            // Without the entry the update itself would be invalid (a 500), not a failed condition.
            .condition_expression("attribute_exists(PK) AND attribute_exists(reactions.#e)")
            .expression_attribute_names("#e", emoji)
            .expression_attribute_values(":one", number(1));
        match self.transact(vec![delete, tx_update(count)?]).await? {
            Ok(()) => {}
            Err(reasons) if failed_at(&reasons, 0) => {
                return Err(Error::not_found("You have not reacted with this emoji"));
            }
            Err(reasons) if failed_at(&reasons, 1) => {
                return Err(Error::not_found("message not found"));
            }
            Err(_) => {
                return Err(Error::internal_msg("removing a reaction failed a condition it cannot fail"));
            }
        }
        if target.reactions.get(emoji).copied().unwrap_or_default() > 1 {
            return Ok(());
        }
        // The last one of this emoji, as far as we read: drop the emoji unless someone reacted since.
        let cleanup = self
            .update_item(&target_key)
            .update_expression("REMOVE reactions.#e, reacted_at.#e")
            .condition_expression("reactions.#e <= :zero")
            .expression_attribute_names("#e", emoji)
            .expression_attribute_values(":zero", number(0));
        self.update_if(cleanup).await.map(drop)
    }
}
