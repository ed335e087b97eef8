//! Orgs and their members.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, ReturnConsumedCapacity, ReturnValue, TransactWriteItem,
};

use super::meter::Consumed;
use serde::Serialize;

use super::messages::{tx_update, value};
use super::{MembershipChange, Order, Store, failed_at, from_item, key_item, keys, sdk_error, string_attr, to_item};
use crate::error::{Error, Result};
use crate::ids::{OrgId, RoomId, UserId};
use crate::model::{Member, Org, Role, Room};
use crate::paging::{Direction, Page, PageRequest};

/// The org's item with its count of owners, which only the role changes' transactions touch.
#[derive(Serialize)]
struct OrgItem<'a> {
    #[serde(flatten)]
    org: &'a Org,
    owners: u32,
}

fn last_owner() -> Error {
    Error::conflict("The org's last owner can neither leave nor step down: make another member an owner first")
}

/// The index of each user's memberships: member items alone carry both the member's `_id` and the
/// `org_id`, so it holds nothing else, and org ids sort by creation.
pub const MEMBER_INDEX: &str = "ByMember";
pub const MEMBER_INDEX_PK: &str = "_id";
pub const MEMBER_INDEX_SK: &str = "org_id";

impl Store {
    /// Creates the org and its owner in one transaction.
    pub async fn create_org(&self, org: &Org, owner: &Member) -> Result<()> {
        let items = vec![
            self.put_new(&keys::org(&org.org_id), &OrgItem { org, owners: 1 })?,
            self.put_new(&keys::member(&org.org_id, &owner.id), owner)?,
        ];
        self.transact(items).await?.map_err(|_| Error::conflict("the org already exists"))
    }

    pub async fn org(&self, org: &OrgId) -> Result<Option<Org>> {
        self.get(&keys::org(org)).await
    }

    /// A member of the org; one who is leaving it (`deleted`) no longer counts.
    pub async fn member(&self, org: &OrgId, user: &UserId) -> Result<Option<Member>> {
        Ok(self.member_record(org, user).await?.filter(|member| !member.deleted))
    }

    /// The member's item as stored, leaving or not.
    pub async fn member_record(&self, org: &OrgId, user: &UserId) -> Result<Option<Member>> {
        self.get(&keys::member(org, user)).await
    }

    /// Gives `member` the role `role` on the strength of `by`'s role, in one transaction with the
    /// org's count of owners, which never drops below one: 409 when it would (the last owner), or
    /// when the member's role or membership changed since it was read; 403 when `by`'s did.
    pub async fn change_role(&self, member: &Member, role: Role, by: &Member) -> Result<Member> {
        if member.role == role {
            return Ok(member.clone());
        }
        let update = self
            .update_builder(&keys::member(&member.org_id, &member.id))
            .update_expression("SET #role = :to")
            .condition_expression("#role = :from AND deleted = :no")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":to", value(&role)?)
            .expression_attribute_values(":from", value(&member.role)?)
            .expression_attribute_values(":no", AttributeValue::Bool(false));
        let items = vec![tx_update(update)?];
        self.as_member(items, member, Some(role), by).await?;
        Ok(Member { role, ..member.clone() })
    }

    /// Runs `items`, a change to `member` whose role goes to `to` (`None`: they leave), with what
    /// keeps it honest: `by` (when another member) still holds the role the change was allowed on,
    /// and the org's count of owners follows, keeping one. Item 0 is the change to `member`.
    async fn as_member(
        &self,
        mut items: Vec<TransactWriteItem>,
        member: &Member,
        to: Option<Role>,
        by: &Member,
    ) -> Result<()> {
        let by_at = (by.id != member.id).then_some(items.len());
        if by_at.is_some() {
            items.push(self.still_holds(by)?);
        }
        let owners_at = items.len();
        items.extend(self.owners_change(&member.org_id, member.role, to)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => {
                Err(Error::conflict("The member's role or membership changed meanwhile: read it again"))
            }
            Err(reasons) if by_at.is_some_and(|at| failed_at(&reasons, at)) => {
                Err(Error::forbidden("Your own role changed meanwhile"))
            }
            Err(reasons) if failed_at(&reasons, owners_at) && member.role == Role::Owner => Err(last_owner()),
            Err(_) => Err(Error::conflict("The org changed meanwhile: try again")),
        }
    }

    /// A transaction's check that `member` still holds the role they were read with: what they do
    /// on the strength of it stands or falls with it, so a demotion racing their request wins whole.
    pub(crate) fn still_holds(&self, member: &Member) -> Result<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::member(&member.org_id, &member.id))))
            .condition_expression("#role = :role AND deleted = :no")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":role", value(&member.role)?)
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// The change to the org's count of owners when a member goes from `from` to `to` (`None` for
    /// leaving the org): one less only while another owner is left.
    fn owners_change(&self, org: &OrgId, from: Role, to: Option<Role>) -> Result<Option<TransactWriteItem>> {
        let update = self.update_builder(&keys::org(org));
        let update = match (from == Role::Owner, to == Some(Role::Owner)) {
            // `create_org` writes the count; an org made before it was kept has its one owner.
            (false, true) => update
                .update_expression("SET owners = if_not_exists(owners, :one) + :one")
                .condition_expression("attribute_exists(PK)"),
            (true, false) => {
                update.update_expression("SET owners = owners - :one").condition_expression("owners > :one")
            }
            _ => return Ok(None),
        };
        tx_update(update.expression_attribute_values(":one", AttributeValue::N("1".into()))).map(Some)
    }

    /// Takes `member` out of their org and out of each of its rooms there, as `by` asked (the member
    /// themself, or a manager). Their access ends first (the member item is marked `deleted`, which
    /// every check reads as "not a member", so nobody can add them to a room meanwhile), with an
    /// owner's place in the count of owners, which keeps one; then each room lets them go; then the
    /// item goes. A run that stops half-way leaves the mark, and running it again (or the member
    /// accepting an invite) finishes the job; a run that finds the member back (a new membership,
    /// another `joined_at`) leaves them be.
    pub async fn remove_from_org(&self, member: &Member, by: &Member) -> Result<()> {
        let (org, user) = (&member.org_id, &member.id);
        if !member.deleted {
            let mark = self
                .update_builder(&keys::member(org, user))
                .update_expression("SET deleted = :yes")
                .condition_expression("#role = :role AND deleted = :no")
                .expression_attribute_names("#role", "role")
                .expression_attribute_values(":role", value(&member.role)?)
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":no", AttributeValue::Bool(false));
            self.as_member(vec![tx_update(mark)?], member, None, by).await?;
        }
        let first_page = PageRequest { limit: 25, cursor: None };
        let still_leaving =
            |record: Option<Member>| record.is_some_and(|r| r.deleted && r.joined_at == member.joined_at);
        // Each pass removes what it read, so the first page is always what is left.
        while still_leaving(self.member_record(org, user).await?) {
            let page =
                self.query_page(keys::user_rooms_pk(org, user), keys::ROOM_PREFIX, Order::OldestFirst, &first_page);
            let listed = page.await?.items;
            if listed.is_empty() {
                // What else is theirs alone beside their rows: push subscriptions (and their count)
                // and settings. A member back one day starts afresh.
                let own = self.query_all(keys::user_rooms_pk(org, user), keys::PUSH_ITEMS_PREFIX, true).await?;
                let mut own: Vec<keys::Key> = own.iter().filter_map(super::item_key).collect();
                own.push(keys::settings(org, user));
                self.delete_many(&own).await?;
                let gone = Delete::builder()
                    .table_name(self.table())
                    .set_key(Some(key_item(&keys::member(org, user))))
                    .condition_expression("deleted = :yes AND joined_at = :joined")
                    .expression_attribute_values(":yes", AttributeValue::Bool(true))
                    .expression_attribute_values(":joined", value(&member.joined_at)?)
                    .build()
                    .map_err(Error::internal)?;
                // A failed condition: another run finished first, or the member is back.
                let _ = self.transact(vec![TransactWriteItem::builder().delete(gone).build()]).await?;
                break;
            }
            for item in listed {
                let Some(room_id) = string_attr(&item, "room_id").and_then(|id| RoomId::parse(id).ok()) else {
                    continue;
                };
                let room: Option<Room> = self.get(&keys::room(&room_id)).await?;
                match room {
                    Some(room) if room.has_member(user) => {
                        let change = MembershipChange { add: Vec::new(), remove: vec![user.clone()] };
                        self.change_membership(room, &change).await?;
                    }
                    // A list entry without its membership: only the entry is left to go.
                    _ => self.delete_many(&[keys::user_room(org, user, &room_id)]).await?,
                }
            }
        }
        Ok(())
    }

    /// The caller's membership of `org`, or 403.
    pub async fn org_member(&self, org: &OrgId, user: &UserId) -> Result<Member> {
        self.member(org, user).await?.ok_or_else(|| Error::forbidden("You are not a member of this organization"))
    }

    /// Adds a member; 409 when they already are one.
    pub async fn add_member(&self, member: &Member) -> Result<()> {
        let key = keys::member(&member.org_id, &member.id);
        let put = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(to_item(&key, member)?))
            .condition_expression("attribute_not_exists(PK)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match self.metered(put, |o| o.consumed_capacity.units()) {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(Error::conflict("This user is already a member of the organization"))
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// A page of the orgs `user` belongs to, oldest first, each with the org: one Query of the
    /// membership index and one BatchGet of the orgs. Orgs being left are left out.
    pub async fn orgs_of(&self, user: &UserId, page: &PageRequest) -> Result<Page<(Member, Org)>> {
        let direction = page.cursor.as_ref().map_or(Direction::After, |c| c.direction);
        let start = match &page.cursor {
            None => None,
            Some(cursor) => {
                let org = OrgId::parse(cursor.sort_key.as_str()).map_err(|_| Error::bad_request("invalid cursor"))?;
                let mut start = super::key_item(&keys::member(&org, user));
                start.insert(MEMBER_INDEX_PK.into(), AttributeValue::S(user.to_string()));
                start.insert(MEMBER_INDEX_SK.into(), AttributeValue::S(org.to_string()));
                Some(start)
            }
        };
        let query = self
            .client
            .query()
            .table_name(self.table())
            .index_name(MEMBER_INDEX)
            .key_condition_expression("#user = :user")
            .expression_attribute_names("#user", MEMBER_INDEX_PK)
            .expression_attribute_values(":user", AttributeValue::S(user.to_string()))
            .scan_index_forward(direction == Direction::After)
            .limit(i32::try_from(page.limit + 1).map_err(Error::internal)?)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let output = self.metered(query.send().await, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
        let evaluated_past = output.last_evaluated_key.filter(|key| !key.is_empty());
        let memberships = super::paged(output.items.unwrap_or_default(), page, MEMBER_INDEX_SK, evaluated_past);
        let mut memberships = memberships.try_map(from_item::<Member>)?;
        memberships.items.retain(|member| !member.deleted);
        self.joined(memberships, |member| keys::org(&member.org_id)).await
    }

    /// Every member of the org (those leaving it left out): whom an org's event is for.
    pub async fn member_ids(&self, org: &OrgId) -> Result<Vec<UserId>> {
        let items = self.query_all(keys::members_pk(org), keys::MEMBER_PREFIX, true).await?;
        let members = items.into_iter().map(from_item::<Member>).collect::<Result<Vec<_>>>()?;
        Ok(members.into_iter().filter(|member| !member.deleted).map(|member| member.id).collect())
    }

    /// A page of the org's members; those leaving it are left out.
    pub async fn list_members(&self, org: &OrgId, page: &PageRequest) -> Result<Page<Member>> {
        let page = self.query_page(keys::members_pk(org), keys::MEMBER_PREFIX, Order::OldestFirst, page).await?;
        let mut page = page.try_map(from_item::<Member>)?;
        page.items.retain(|member| !member.deleted);
        Ok(page)
    }

    /// Sets the given fields of a member's item (`changes` serialises to the fields to set) and
    /// returns the member as now stored; 404 when there is no such member.
    pub async fn update_member(&self, org: &OrgId, user: &UserId, changes: &impl Serialize) -> Result<Member> {
        let fields: super::Item = serde_dynamo::to_item(changes).map_err(Error::internal)?;
        if fields.is_empty() {
            return self.member(org, user).await?.ok_or_else(|| Error::not_found("No such member"));
        }
        let mut update = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&keys::member(org, user))))
            .condition_expression("attribute_exists(PK)")
            .return_values(ReturnValue::AllNew);
        let mut sets = Vec::with_capacity(fields.len());
        for (i, (name, value)) in fields.into_iter().enumerate() {
            sets.push(format!("#f{i} = :v{i}"));
            update = update
                .expression_attribute_names(format!("#f{i}"), name)
                .expression_attribute_values(format!(":v{i}"), value);
        }
        let sent = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match self.metered(sent, |o| o.consumed_capacity.units()) {
            Ok(output) => from_item(output.attributes.unwrap_or_default()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(Error::not_found("No such member"))
            }
            Err(err) => Err(sdk_error(err)),
        }
    }
}
