//! `dm-wru`: write units per message by room size, priced from the table's stream as AWS prices them.
//!
//! For each room size, one member sends ten-word messages at human pace (each one settled, so each is
//! a stream batch of its own), and every item change the message caused is read back from the
//! table's stream: the send's transaction, the projector's and the push's writes, whoever made them.
//! Each change costs one write unit per KB of the larger of its images; each global secondary index
//! whose keys the item holds costs one more write (two when the change moves the item's index keys);
//! the send's transactional items count twice. Failed conditional writes leave no record and are not
//! counted (none happen at this pace).
//!
//! ```text
//! dm-wru [--messages N] [--sizes 2,10,50]   N messages a size (default 5)
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use dm_local::{Options, Stack};
use dm_shared::stream::Change;
use dm_shared::stream::api::read_record;
use serde_dynamo::AttributeValue;
use serde_json::{Value, json};

/// The table's global secondary indexes, by their key attributes (every attribute projected).
const INDEXES: [(&str, &str); 2] = [("activity_pk", "activity_sk"), ("_id", "org_id")];
/// Ten words, as the measure is defined.
const TEN_WORDS: &str = "quick brown foxes jumped over seven lazy sleeping hound dogs";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut messages = 5;
    let mut sizes = vec![2, 10, 50];
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match (arg.as_str(), rest.next()) {
            ("--messages", Some(n)) => messages = n.parse().expect("--messages takes a number"),
            ("--sizes", Some(list)) => sizes = list.split(',').map(|n| n.parse().expect("sizes are numbers")).collect(),
            _ => {
                eprintln!("usage: dm-wru [--messages N] [--sizes 2,10,50]");
                std::process::exit(2);
            }
        }
    }
    let mut options = Options::from_env();
    options.data_dir = None;
    options.scheduler = false;
    options.rate_limit = 0;
    options.dynamodb_endpoint = std::env::var("DM_DYNAMODB_ENDPOINT").ok();
    let stack = Stack::start(options).await.expect("the local stack starts");
    let api = Api { router: stack.api() };
    let mut stream = Stream::open(&stack).await;

    println!("Write units per ten-word message, from the table's stream, {messages} messages a room size\n");
    println!("| members | write units per message | of which |");
    println!("| --- | --- | --- |");
    for size in sizes {
        // Ids as long as an identity provider's (a Cognito `sub` is 36 characters): the log's entries
        // and head list a room's members.
        let members: Vec<String> = (0..size).map(|n| format!("{n:04}-{}", "x".repeat(31))).collect();
        let (_, org) = api.call("POST", "/api/v1/orgs", &members[0], Some(json!({ "name": "wru" }))).await;
        let org = org["org_id"].as_str().expect("an org").to_owned();
        for member in &members[1..] {
            let body = json!({ "member_id": member, "email": format!("{member}@example.com") });
            api.call("POST", &format!("/api/v1/org/{org}/members"), &members[0], Some(body)).await;
        }
        let body = json!({ "room_user_ids": members[1..] });
        let (_, room) = api.call("POST", &format!("/api/v1/org/{org}/room"), &members[0], Some(body)).await;
        let room = room["room_id"].as_str().expect("a room").to_owned();
        // Everyone has written once: each row holds a marker and a last message, as in a live room.
        for member in &members {
            api.send(&org, &room, member).await;
        }
        stack.settled().await.expect("the stream settles");
        stream.skip().await;
        let mut kinds: BTreeMap<&'static str, f64> = BTreeMap::new();
        for n in 0..messages {
            api.send(&org, &room, &members[n % 2]).await;
            stack.settled().await.expect("the stream settles");
            for change in stream.read().await {
                let (kind, units) = price(&change);
                *kinds.entry(kind).or_default() += units;
            }
        }
        let per = |units: f64| units / messages as f64;
        let total: f64 = kinds.values().sum();
        let parts: Vec<String> = kinds.iter().map(|(kind, units)| format!("{kind} {:.1}", per(*units))).collect();
        println!("| {size} | {:.1} | {} |", per(total), parts.join(", "));
    }
}

struct Api {
    router: axum::Router,
}

impl Api {
    async fn call(&self, method: &str, path: &str, user: &str, body: Option<Value>) -> (u16, Value) {
        let method = method.parse().expect("a method");
        dm_local::call_as(&self.router, (method, path), user, body, &[]).await
    }

    /// A ten-word message from `sender`, with an idempotency key as a careful client sends it.
    async fn send(&self, org: &str, room: &str, sender: &str) {
        let body = json!({ "sender_id": sender, "message": TEN_WORDS });
        let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
        let key = ulid::Ulid::new().to_string();
        let post = (axum::http::Method::POST, path.as_str());
        let (status, _) = dm_local::call_as(&self.router, post, sender, Some(body), &[("idempotency-key", &key)]).await;
        assert_eq!(status, 201, "a message is sent");
    }
}

/// The table's stream, read from where it was last read.
struct Stream {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    iterators: BTreeMap<String, Option<String>>,
}

impl Stream {
    async fn open(stack: &Stack) -> Self {
        let state = &stack.state;
        let table =
            state.store.client().describe_table().table_name(state.store.table()).send().await.expect("a table");
        let arn = table.table.and_then(|t| t.latest_stream_arn).expect("the table's stream");
        Self { client: dm_local::streams_client(state), arn, iterators: BTreeMap::new() }
    }

    /// Every record not read yet, from every shard.
    async fn read(&mut self) -> Vec<Change> {
        let described = self.client.describe_stream().stream_arn(&self.arn).send().await.expect("the stream");
        for shard in described.stream_description.and_then(|d| d.shards).unwrap_or_default() {
            let id = shard.shard_id.expect("a shard id");
            if !self.iterators.contains_key(&id) {
                let start = self.client.get_shard_iterator().stream_arn(&self.arn).shard_id(&id);
                let started =
                    start.shard_iterator_type(ShardIteratorType::TrimHorizon).send().await.expect("an iterator");
                self.iterators.insert(id, started.shard_iterator);
            }
        }
        let mut changes = Vec::new();
        for iterator in self.iterators.values_mut() {
            while let Some(at) = iterator.take() {
                let read = self.client.get_records().shard_iterator(at).send().await.expect("records");
                let records = read.records.unwrap_or_default();
                let done = records.is_empty();
                changes.extend(records.into_iter().filter_map(read_record).map(|(_, change)| change));
                *iterator = read.next_shard_iterator;
                if done {
                    break;
                }
            }
        }
        changes
    }

    /// Passes over what is there now (a room's setup).
    async fn skip(&mut self) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.read().await;
    }
}

/// What one item change costs, and what kind of item it is.
fn price(change: &Change) -> (&'static str, f64) {
    let image = change.new.as_ref().or(change.old.as_ref()).expect("an image");
    let key = |name: &str| match image.get(name) {
        Some(AttributeValue::S(value)) => value.clone(),
        _ => String::new(),
    };
    let (pk, sk) = (key("PK"), key("SK"));
    let kind = match (pk.as_str(), sk.as_str()) {
        (pk, sk) if pk.starts_with("ROOM#") && pk.contains("#TERM#") && sk.starts_with("MSG#") => "term entries",
        (_, sk) if sk.starts_with("MSG#") || sk.starts_with("THREAD#") => "send",
        (pk, "META") if pk.starts_with("MSG#") => "send",
        (pk, _) if pk.starts_with("IDEMPOTENCY#") => "send",
        (_, "LOG") => "log head",
        (_, sk) if sk.starts_with("LOG#") => "log entry",
        (_, "SUMMARY") => "room summary",
        (pk, sk) if pk.contains("#USER#") && sk.starts_with("ROOM#") => "inbox rows",
        _ => "other",
    };
    let size = |image: Option<&serde_dynamo::Item>| image.map_or(0, item_size);
    let units = |bytes: usize| bytes.div_ceil(1024).max(1) as f64;
    let mut cost = units(size(change.old.as_ref()).max(size(change.new.as_ref())));
    for (hash, range) in INDEXES {
        let keys = |image: Option<&serde_dynamo::Item>| {
            image.and_then(|image| Some((image.get(hash)?.clone(), image.get(range)?.clone())))
        };
        cost += match (keys(change.old.as_ref()), keys(change.new.as_ref())) {
            (Some(old), Some(new)) if old != new => units(size(change.old.as_ref())) + units(size(change.new.as_ref())),
            (Some(_), Some(_)) => units(size(change.new.as_ref())),
            (None, Some(_)) => units(size(change.new.as_ref())),
            (Some(_), None) => units(size(change.old.as_ref())),
            (None, None) => 0.0,
        };
    }
    // The send is one transaction: DynamoDB charges its items twice.
    if kind == "send" {
        cost *= 2.0;
    }
    (kind, cost)
}

/// An item's size as DynamoDB counts it: names and values, in bytes.
fn item_size(item: &serde_dynamo::Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(set) => set.iter().map(Vec::len).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(name, v)| 1 + name.len() + value_size(v)).sum::<usize>(),
    }
}
