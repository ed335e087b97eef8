//! A stream consumer's event source mapping as template.yaml sets it, applied locally as Lambda
//! applies it in AWS: the consumer is handed only the records its `FilterCriteria` pass, up to its
//! `BatchSize` at a time. Without the filter the projector would wade through every write of the
//! table (its own, the push's logs), and a batch would hold a few messages instead of a hundred.

use serde_yaml_ng::Value;

use crate::BoxError;

/// One key's rules in a filter pattern: `"PK"` or `"SK"` is any of them.
#[derive(Debug)]
enum Rule {
    Exact(String),
    Prefix(String),
}

impl Rule {
    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(exact) => value == exact,
            Self::Prefix(prefix) => value.starts_with(prefix),
        }
    }
}

/// One of a record's images, as a pattern names it (`"NewImage"`, `"OldImage"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    New,
    Old,
}

/// A pattern on the record's keys (`{"dynamodb": {"Keys": {...}}}`; a key it does not name passes)
/// and on attributes its images must not hold (`{"NewImage": {"a": {"S": [{"exists": false}]}}}`).
#[derive(Debug)]
struct Pattern {
    pk: Option<Vec<Rule>>,
    sk: Option<Vec<Rule>>,
    absent: Vec<(Image, String)>,
}

#[derive(Debug)]
pub struct EventSource {
    patterns: Vec<Pattern>,
    pub batch_size: usize,
}

impl EventSource {
    /// The `TableStream` event of `function` (a template resource) in template.yaml.
    pub fn of(function: &str) -> Result<Self, BoxError> {
        let template = crate::template()?;
        let source = &template["Resources"][function]["Properties"]["Events"]["TableStream"]["Properties"];
        let batch_size = source["BatchSize"].as_u64().ok_or_else(|| format!("{function} has no BatchSize"))?;
        let filters = source["FilterCriteria"]["Filters"].as_sequence().map(Vec::as_slice).unwrap_or_default();
        let patterns = filters.iter().map(|filter| Pattern::parse(filter)).collect::<Result<_, _>>()?;
        Ok(Self { patterns, batch_size: usize::try_from(batch_size)? })
    }

    /// Whether a record of the item keyed `pk`, `sk`, whose images hold the attributes `has`
    /// answers for, reaches the consumer (any pattern passes it, or there are none).
    pub fn passes(&self, pk: &str, sk: &str, has: impl Fn(Image, &str) -> bool) -> bool {
        let holds = |rules: &Option<Vec<Rule>>, value: &str| {
            rules.as_ref().is_none_or(|rules| rules.iter().any(|rule| rule.matches(value)))
        };
        let lacks = |absent: &[(Image, String)]| absent.iter().all(|(image, name)| !has(*image, name));
        self.patterns.is_empty()
            || self.patterns.iter().any(|p| holds(&p.pk, pk) && holds(&p.sk, sk) && lacks(&p.absent))
    }
}

impl Pattern {
    fn parse(filter: &Value) -> Result<Self, BoxError> {
        let text = filter["Pattern"].as_str().ok_or("a filter without a Pattern")?;
        let pattern: serde_json::Value = serde_json::from_str(text)?;
        let keys = &pattern["dynamodb"]["Keys"];
        let rules = |name: &str| -> Result<Option<Vec<Rule>>, BoxError> {
            let Some(allowed) = keys[name]["S"].as_array() else { return Ok(None) };
            let rules = allowed.iter().map(|rule| match (rule.as_str(), rule["prefix"].as_str()) {
                (Some(exact), _) => Ok(Rule::Exact(exact.to_owned())),
                (None, Some(prefix)) => Ok(Rule::Prefix(prefix.to_owned())),
                _ => Err(format!("a filter rule the local stack does not apply: {rule}")),
            });
            Ok(Some(rules.collect::<Result<_, _>>()?))
        };
        let mut absent = Vec::new();
        for (name, image) in [("NewImage", Image::New), ("OldImage", Image::Old)] {
            let Some(attributes) = pattern["dynamodb"][name].as_object() else { continue };
            for (attribute, rule) in attributes {
                if rule["S"] != serde_json::json!([{ "exists": false }]) {
                    return Err(format!("an image rule the local stack does not apply: {attribute} {rule}").into());
                }
                absent.push((image, attribute.clone()));
            }
        }
        Ok(Self { pk: rules("PK")?, sk: rules("SK")?, absent })
    }
}
