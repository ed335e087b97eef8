//! CloudWatch metrics in Embedded Metric Format: one JSON line on stdout, which CloudWatch Logs turns
//! into metrics without an API call or an agent. Printed inside Lambda only (`DM_METRICS=1` prints
//! them elsewhere too), under the namespace `DM_METRICS_NAMESPACE` (the stack's name in AWS).

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// CloudWatch's units for the values we report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    None,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// One record: the dimensions it is counted under, its values, and properties that are searchable in
/// the log line but are no metric (a request id).
#[derive(Debug, Default)]
pub struct Record {
    pub dimensions: Vec<(&'static str, String)>,
    pub values: Vec<(&'static str, f64, Unit)>,
    pub properties: Vec<(&'static str, String)>,
}

impl Record {
    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    pub fn value(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.values.push((name, value, unit));
        self
    }

    pub fn property(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.properties.push((name, value.into()));
        self
    }

    /// The EMF document of this record, at `timestamp_ms`.
    pub fn document(&self, namespace: &str, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        for (name, value) in &self.properties {
            root.insert((*name).to_owned(), json!(value));
        }
        for (name, value) in &self.dimensions {
            root.insert((*name).to_owned(), json!(value));
        }
        for (name, value, _) in &self.values {
            root.insert((*name).to_owned(), json!(value));
        }
        let dimensions: Vec<&str> = self.dimensions.iter().map(|(name, _)| *name).collect();
        let metrics: Vec<Value> =
            self.values.iter().map(|(name, _, unit)| json!({ "Name": name, "Unit": unit.name() })).collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{ "Namespace": namespace, "Dimensions": [dimensions], "Metrics": metrics }],
            }),
        );
        Value::Object(root)
    }

    /// Prints the record where CloudWatch reads it (inside Lambda).
    pub fn emit(self) {
        if let Some(namespace) = namespace() {
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            println!("{}", self.document(namespace, i64::try_from(now).unwrap_or_default()));
        }
    }
}

/// The function's name, as Lambda sets it (`local` elsewhere).
pub fn function_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into()))
}

fn namespace() -> Option<&'static str> {
    static NAMESPACE: OnceLock<Option<String>> = OnceLock::new();
    NAMESPACE
        .get_or_init(|| {
            let wanted = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
                || std::env::var("DM_METRICS").as_deref() == Ok("1");
            wanted.then(|| std::env::var("DM_METRICS_NAMESPACE").unwrap_or_else(|_| "ZuriDm".into()))
        })
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_an_emf_document_cloudwatch_reads() {
        let record = Record::default()
            .dimension("Function", "messages")
            .dimension("Route", "POST /api/v1/org/{org_id}/rooms/{room_id}/messages")
            .value("DynamoDbCalls", 2.0, Unit::Count)
            .value("DynamoDbCapacity", 4.5, Unit::None)
            .property("RequestId", "c6af9ac6-7b61-11e6-9a41-93e812345678");
        let document = record.document("zuri-dm", 1_795_646_900_000);
        assert_eq!(document["DynamoDbCalls"], 2.0);
        assert_eq!(document["DynamoDbCapacity"], 4.5);
        assert_eq!(document["Route"], "POST /api/v1/org/{org_id}/rooms/{room_id}/messages");
        assert_eq!(document["RequestId"], "c6af9ac6-7b61-11e6-9a41-93e812345678");
        let aws = &document["_aws"];
        assert_eq!(aws["Timestamp"], 1_795_646_900_000_i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "zuri-dm");
        assert_eq!(directive["Dimensions"], json!([["Function", "Route"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{ "Name": "DynamoDbCalls", "Unit": "Count" }, { "Name": "DynamoDbCapacity", "Unit": "None" }])
        );
    }
}
