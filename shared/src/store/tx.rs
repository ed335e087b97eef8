//! The pieces of transactions, built the same way by every item kind.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::Serialize;

use super::{Store, key_item, keys::Key, to_item};
use crate::error::{Error, Result};

impl Store {
    /// Writes `value` under `key`, replacing what is there.
    pub(crate) fn put(&self, key: &Key, value: &impl Serialize) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(key, value)?))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Writes `value` under `key` only where nothing is stored yet.
    pub(crate) fn put_new(&self, key: &Key, value: &impl Serialize) -> Result<TransactWriteItem> {
        Ok(TransactWriteItem::builder().put(self.new_item(key, value)?).build())
    }

    /// `put_new`'s write, to send alone (`put_if`).
    pub(crate) fn new_item(&self, key: &Key, value: &impl Serialize) -> Result<Put> {
        Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(key, value)?))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(Error::internal)
    }

    pub(crate) fn delete(&self, key: &Key) -> Result<TransactWriteItem> {
        let delete =
            Delete::builder().table_name(self.table()).set_key(Some(key_item(key))).build().map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

/// Deletes the item at `key`, failing the transaction when there is none.
pub(crate) fn conditional_delete(store: &Store, key: &Key) -> Result<TransactWriteItem> {
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key_item(key)))
        .condition_expression("attribute_exists(PK)")
        .build()
        .map_err(Error::internal)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}
