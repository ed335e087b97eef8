//! template.yaml is what API Gateway routes in AWS; the local API must serve exactly those routes.

use dm_local::event_source::{EventSource, Image};
use dm_tests::spawn_app;
use reqwest::Method;

/// Every `Method:`/`Path:` pair of the HttpApi events in template.yaml.
pub(crate) fn template_routes() -> Vec<(Method, String)> {
    let template = include_str!("../../template.yaml");
    let mut routes = Vec::new();
    let mut method = None;
    for line in template.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("Method: ") {
            method = Some(m.parse::<Method>().expect("an HTTP method"));
        } else if let Some(path) = line.strip_prefix("Path: ") {
            routes.push((method.take().expect("Method: before Path:"), path.to_owned()));
        }
    }
    routes
}

/// Every operation of openapi.yaml.
fn documented_routes() -> Vec<(Method, String)> {
    let document: serde_json::Value =
        serde_yaml_ng::from_str(include_str!("../../openapi.yaml")).expect("openapi.yaml parses");
    let mut routes = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            routes.push((method.to_uppercase().parse().expect("a method"), path.clone()));
        }
    }
    routes
}

#[test]
fn openapi_describes_exactly_the_routes_of_the_template() {
    let sorted = |mut routes: Vec<(Method, String)>| {
        routes.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
        routes
    };
    let template = sorted(template_routes());
    let documented = sorted(documented_routes());
    let missing: Vec<_> = template.iter().filter(|r| !documented.contains(r)).collect();
    let extra: Vec<_> = documented.iter().filter(|r| !template.contains(r)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "not documented: {missing:?}; not in the template: {extra:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_api_serves_its_openapi_document_without_a_token() {
    let app = spawn_app().await;
    let reply = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(reply.status, reqwest::StatusCode::OK);
    assert_eq!(reply.body["openapi"], "3.1.0");
    assert_eq!(
        reply.body["paths"].as_object().map(|p| p.len()),
        Some(documented_routes().iter().map(|r| &r.1).collect::<std::collections::HashSet<_>>().len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_template_reaches_a_function_locally() {
    let app = spawn_app().await;
    let routes = template_routes();
    assert!(routes.len() >= 30, "{routes:?}");
    for (method, path) in routes {
        let concrete = path
            .split('/')
            .map(|segment| if segment.starts_with('{') { "x1" } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        let reply = app.call(method.clone(), &concrete, Some("someone"), None).await;
        assert_ne!(reply.body["message"], "No such route", "{method} {path} is not served: {}", reply.raw);
    }
}

/// A record whose images hold none of the attributes filters look for.
fn plain(_: Image, _: &str) -> bool {
    false
}

/// A search-term entry's keys: in a `ROOM#` partition of its own, sorted under `MSG#` as posts are.
const TERM: (&str, &str) = ("ROOM#r1#TERM#hello", "MSG#01J");

/// A record of a search-term entry, written (its new image) or deleted (its old one).
fn term_entry(written: Image) -> impl Fn(Image, &str) -> bool {
    move |image, name| image == written && name == "item_sk"
}

/// What invokes the push function in AWS (and reaches it locally, where `dm-local` applies the
/// template's filters): every item whose changes make events, and nothing it writes itself (which
/// would invoke it again for nothing).
#[test]
fn the_realtime_filter_passes_the_items_that_make_events_only() {
    let source = EventSource::of("PushFunction").expect("the push function's event source");
    for (pk, sk) in [
        ("ROOM#r1", "META"),
        ("ROOM#r1", "MSG#01J"),
        ("ROOM#r1", "THREAD#01J#01K"),
        ("ROOM#r1", "REACTION#01J#x#alice"),
        ("ROOM#r1", "READ#alice"),
        ("ORG#o1#USER#alice#CONNECTIONS", "PRESENCE"),
        ("ORG#o1", "MEMBER#alice"),
    ] {
        assert!(source.passes(pk, sk, plain), "{pk} {sk} makes events");
    }
    for (pk, sk) in [
        ("ROOM#r1", "LOG"),
        ("ROOM#r1", "LOG#00000000000000000001"),
        ("ORG#o1#USER#alice", "ROOM#r1"),
        ("ROOM#r1", "COUNTED_REPLY#01J"),
        ("ROOM#r1#TYPING", "USER#alice"),
        ("ORG#o1", "INVITE#01J"),
        ("INVITE#digest", "META"),
        ("ATTEMPTS#invite#alice", "29000000"),
    ] {
        assert!(!source.passes(pk, sk, plain), "{pk} {sk} makes no event");
    }
    for image in [Image::New, Image::Old] {
        assert!(!source.passes(TERM.0, TERM.1, term_entry(image)), "a search-term entry ({image:?}) makes no event");
    }
    assert_eq!(source.batch_size, 100);
}

/// `function`'s event source passes posts (messages and replies) and none of `others`, nor a
/// search-term entry (keyed under `MSG#` too).
fn passes_posts_only(function: &str, others: &[(&str, &str)]) {
    let source = EventSource::of(function).expect("the function's event source");
    for (pk, sk) in [("ROOM#r1", "MSG#01J"), ("ROOM#r1", "THREAD#01J#01K")] {
        assert!(source.passes(pk, sk, plain), "{function}: {pk} {sk} is a post");
    }
    for (pk, sk) in others {
        assert!(!source.passes(pk, sk, plain), "{function}: {pk} {sk} is no post");
    }
    for image in [Image::New, Image::Old] {
        assert!(!source.passes(TERM.0, TERM.1, term_entry(image)), "{function}: a search-term entry ({image:?})");
    }
}

/// The projector is invoked by posts only: none of what it writes (counts, inbox rows, markers, its
/// search-term entries) invokes it again, so a batch of a hundred holds a hundred posts' worth of work.
#[test]
fn the_projector_filter_passes_posts_only() {
    passes_posts_only(
        "ProjectorFunction",
        &[
            ("ROOM#r1", "LOG"),
            ("ROOM#r1", "LOG#00000000000000000001"),
            ("ROOM#r1", "COUNTED_REPLY#01J"),
            ("ORG#o1#USER#alice", "ROOM#r1"),
            ("ROOM#r1", "READ#alice"),
            ("ROOM#r1", "META"),
        ],
    );
}

/// The notifier is invoked by posts only: never by what it writes itself (its claims, a forgotten
/// subscription).
#[test]
fn the_notifier_filter_passes_posts_only() {
    passes_posts_only(
        "NotifierFunction",
        &[
            ("PUSHED#01J", "DEVICE#alice#sub"),
            ("ORG#o1#USER#alice", "PUSH#sub"),
            ("ORG#o1#USER#alice", "PUSHCOUNT"),
            ("ROOM#r1", "META"),
            ("ROOM#r1", "REACTION#01J#x#alice"),
        ],
    );
}

/// The stream consumers cannot lose events silently: only items that make events invoke the push
/// function, records that exhaust their retries land in a queue, and the queue's depth and each
/// consumer's lag raise alarms.
#[test]
fn stream_consumers_filter_keep_failures_and_raise_alarms() {
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../../template.yaml")).expect("template.yaml parses");
    let resources = &template["Resources"];
    for function in ["PushFunction", "ProjectorFunction", "NotifierFunction"] {
        let source = &resources[function]["Properties"]["Events"]["TableStream"]["Properties"];
        assert_eq!(source["ParallelizationFactor"].as_u64(), Some(1), "{function}: one consumer a shard, pinned");
        assert!(source["FilterCriteria"]["Filters"][0]["Pattern"].as_str().is_some(), "{function} filters");
        assert!(source["MaximumRecordAgeInSeconds"].as_u64().is_some(), "{function} ages records out");
        assert_eq!(source["DestinationConfig"]["OnFailure"]["Type"].as_str(), Some("SQS"), "{function}");
        let responses = source["FunctionResponseTypes"].as_sequence().expect("response types");
        assert!(responses.iter().any(|r| r.as_str() == Some("ReportBatchItemFailures")), "{function}");
    }
    let alarms: Vec<&str> = resources
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .filter_map(|r| r["Properties"]["MetricName"].as_str())
        .collect();
    assert!(alarms.contains(&"ApproximateNumberOfMessagesVisible"), "{alarms:?}");
    assert_eq!(alarms.iter().filter(|m| **m == "IteratorAge").count(), 3, "{alarms:?}");
}

/// Every function logs to a log group the stack makes, with the retention the deployer chose; both
/// APIs keep access logs; the scheduler's schedule is named per stack and never retries a stale run.
#[test]
fn logs_retention_access_logs_and_a_schedule_per_stack() {
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../../template.yaml")).expect("template.yaml parses");
    let resources = template["Resources"].as_mapping().expect("resources");
    let functions: Vec<&str> = resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter_map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(functions.len(), 12, "{functions:?}");
    for function in functions {
        let group = &template["Resources"][format!("{}LogGroup", function.trim_end_matches("Function")).as_str()];
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{function}");
        // Lambda logs to `/aws/lambda/<function name>`: the group must carry exactly that name.
        let name = format!("{:?}", group["Properties"]["LogGroupName"]);
        assert!(name.contains(&format!("/aws/lambda/${{{function}}}")), "{function}: {name}");
        assert!(format!("{:?}", group["Properties"]["RetentionInDays"]).contains("LogRetentionDays"), "{function}");
    }
    for api in [&template["Resources"]["HttpApi"], &template["Resources"]["WebSocketStage"]] {
        assert!(
            api["Properties"]["AccessLogSettings"]["Format"].as_str().is_some_and(|f| f.contains("$context.requestId"))
        );
    }
    let schedule = &template["Resources"]["SchedulerFunction"]["Properties"]["Events"]["EveryMinute"]["Properties"];
    assert!(format!("{:?}", schedule["Name"]).contains("AWS::StackName"));
    assert_eq!(schedule["RetryPolicy"]["MaximumRetryAttempts"].as_u64(), Some(0));
}

/// A page on another origin can call the API and load media; uploads nobody sent are cleaned up;
/// the table survives a stack deletion; failures of any function, of the API and of the scheduler
/// raise alarms.
#[test]
fn browsers_lifecycle_protection_and_alarms() {
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../../template.yaml")).expect("template.yaml parses");
    let resources = &template["Resources"];
    let cors = &resources["HttpApi"]["Properties"]["CorsConfiguration"];
    assert!(format!("{:?}", cors["AllowOrigins"]).contains("AllowedOrigins"));
    let headers = format!("{:?}", cors["AllowHeaders"]);
    for header in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(header), "{header} in {headers}");
    }
    let bucket = &resources["MediaBucket"]["Properties"];
    let methods = format!("{:?}", bucket["CorsConfiguration"]["CorsRules"][0]["AllowedMethods"]);
    assert!(methods.contains("PUT") && methods.contains("GET"), "{methods}");
    let rules = format!("{:?}", bucket["LifecycleConfiguration"]["Rules"]);
    assert!(rules.contains("AbortIncompleteMultipartUpload") && rules.contains("unreferenced"), "{rules}");
    assert_eq!(resources["Table"]["Properties"]["DeletionProtectionEnabled"].as_bool(), Some(true));
    assert_eq!(template["Globals"]["Function"]["Tracing"].as_str(), Some("Active"));

    let alarms: Vec<String> = resources
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|r| format!("{:?}", r["Properties"]))
        .collect();
    let watching = |metric: &str, of: &str| alarms.iter().any(|a| a.contains(metric) && a.contains(of));
    assert!(watching("5xx", "HttpApi"), "API 5xx");
    assert!(watching("Errors", "SchedulerFunction"), "scheduler errors");
    for function in ["MembersFunction", "MessagesFunction", "RealtimeFunction", "PushFunction", "ProjectorFunction"] {
        assert!(watching("Errors", function) && watching("Throttles", function), "{function}");
    }
}

/// Web Push is the deployer's to turn on: the notifier exists only with a VAPID public key, and it
/// alone may read the private key's parameter (that one parameter, decrypted through SSM only).
#[test]
fn only_the_notifier_reads_the_vapid_private_key_and_only_with_push_on() {
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../../template.yaml")).expect("template.yaml parses");
    let resources = template["Resources"].as_mapping().expect("resources");
    let notifier = &template["Resources"]["NotifierFunction"];
    assert_eq!(notifier["Condition"].as_str(), Some("PushEnabled"));
    assert!(format!("{:?}", template["Conditions"]["PushEnabled"]).contains("VapidPublicKey"));
    let statements = format!("{:?}", notifier["Properties"]["Policies"]);
    assert!(statements.contains("ssm:GetParameter") && statements.contains("parameter${VapidPrivateKeyParameter}"));
    assert!(statements.contains("kms:Decrypt") && statements.contains("kms:ViaService"), "{statements}");
    let variables = format!("{:?}", notifier["Properties"]["Environment"]["Variables"]);
    assert!(variables.contains("DM_VAPID_PRIVATE_KEY_PARAMETER"), "{variables}");
    for (name, resource) in resources {
        if name.as_str() != Some("NotifierFunction") {
            let policies = format!("{:?}", resource["Properties"]["Policies"]);
            assert!(!policies.contains("ssm:") && !policies.contains("kms:"), "{name:?} reads no secret");
        }
    }
    assert!(!format!("{:?}", template["Globals"]).contains("VapidPrivateKeyParameter"), "not every function's");
}
