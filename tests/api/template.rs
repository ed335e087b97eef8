//! template.yaml is what API Gateway routes in AWS; the local API must serve exactly those routes.

use dm_tests::spawn_app;
use reqwest::Method;

/// Every `Method:`/`Path:` pair of the HttpApi events in template.yaml.
fn template_routes() -> Vec<(Method, String)> {
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
