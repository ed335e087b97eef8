//! The table's definition, for DynamoDB Local and tests. template.yaml declares the same one in AWS.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

use super::inbox::{ACTIVITY_INDEX, ACTIVITY_PK, ACTIVITY_SK};
use super::keys::{PK, SK};
use super::orgs::{MEMBER_INDEX, MEMBER_INDEX_PK, MEMBER_INDEX_SK};
use crate::error::{Error, Result};

/// The attribute that holds an item's expiry (epoch seconds), for the table's TTL.
pub const TTL_ATTRIBUTE: &str = "ttl";

/// The table's global secondary indexes: name, partition key, sort key (strings, every attribute).
const INDEXES: [(&str, &str, &str); 2] =
    [(ACTIVITY_INDEX, ACTIVITY_PK, ACTIVITY_SK), (MEMBER_INDEX, MEMBER_INDEX_PK, MEMBER_INDEX_SK)];

/// Creates the table (PK/SK strings, on demand, a stream of new and old images, TTL on `ttl`, the
/// inbox's and the memberships' indexes), unless it exists; a table made before an index gets it.
pub async fn create_table(client: &Client, name: &str) -> Result<()> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(Error::internal)
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(Error::internal)
    };
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(Error::internal)?;
    let all = Projection::builder().projection_type(ProjectionType::All).build();
    let index_keys = |pk: &str, sk: &str| Ok::<_, Error>(vec![key(pk, KeyType::Hash)?, key(sk, KeyType::Range)?]);
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .attribute_definitions(attribute(PK)?)
        .attribute_definitions(attribute(SK)?)
        .stream_specification(stream);
    for (index, pk, sk) in INDEXES {
        let index = GlobalSecondaryIndex::builder()
            .index_name(index)
            .set_key_schema(Some(index_keys(pk, sk)?))
            .projection(all.clone())
            .build()
            .map_err(Error::internal)?;
        create = create.attribute_definitions(attribute(pk)?).attribute_definitions(attribute(sk)?);
        create = create.global_secondary_indexes(index);
    }
    match create.send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
            let table = client.describe_table().table_name(name).send().await.map_err(super::sdk_error)?;
            let indexes = table.table.and_then(|t| t.global_secondary_indexes).unwrap_or_default();
            // One index an update, as DynamoDB allows.
            for (index, pk, sk) in INDEXES {
                if indexes.iter().any(|existing| existing.index_name() == Some(index)) {
                    continue;
                }
                let create = CreateGlobalSecondaryIndexAction::builder()
                    .index_name(index)
                    .set_key_schema(Some(index_keys(pk, sk)?))
                    .projection(all.clone())
                    .build()
                    .map_err(Error::internal)?;
                client
                    .update_table()
                    .table_name(name)
                    .attribute_definitions(attribute(pk)?)
                    .attribute_definitions(attribute(sk)?)
                    .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
                    .send()
                    .await
                    .map_err(super::sdk_error)?;
            }
            return Ok(());
        }
        Err(err) => return Err(super::sdk_error(err)),
    }
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL_ATTRIBUTE)
        .build()
        .map_err(Error::internal)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(super::sdk_error)?;
    Ok(())
}
