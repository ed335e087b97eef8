//! Settings from the environment, read once per cold start.

use crate::error::{Error, Result};

/// Where the function finds its table, bucket and secrets.
///
/// The endpoints are set only off AWS (DynamoDB Local, the in-process S3); in Lambda the SDK's
/// default endpoints and credentials apply.
#[derive(Clone, Debug)]
pub struct Config {
    pub table: String,
    pub bucket: String,
    pub dynamodb_endpoint: Option<String>,
    pub s3_endpoint: Option<String>,
    /// HS256 secret for tokens that no API Gateway authorizer has checked.
    pub jwt_secret: Option<String>,
    /// The OIDC issuer whose keys sign tokens in AWS, and the audiences (app client ids) it accepts:
    /// the WebSocket API has no authorizer, so `$connect` checks tokens against them itself.
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Vec<String>,
    pub link_base: String,
    /// The web client's page: an invite's link is this URL with `#invite={token}` (a fragment, which
    /// browsers never send to the server that serves the page).
    pub app_url: String,
    /// The VAPID public key browsers subscribe to Web Push with (base64url); none: no Web Push.
    pub vapid_public_key: Option<String>,
    /// Where push endpoints may be: the local stack's tests run a push service on loopback.
    pub push_reach: crate::push::Reach,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(Self {
            table: var("DM_TABLE").ok_or_else(|| Error::internal_msg("DM_TABLE is not set"))?,
            bucket: var("DM_BUCKET").unwrap_or_else(|| "dm-media".into()),
            dynamodb_endpoint: var("DM_DYNAMODB_ENDPOINT"),
            s3_endpoint: var("DM_S3_ENDPOINT"),
            jwt_secret: var("DM_JWT_SECRET"),
            jwt_issuer: var("DM_JWT_ISSUER"),
            jwt_audience: var("DM_JWT_AUDIENCE")
                .map(|list| list.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect())
                .unwrap_or_default(),
            link_base: var("DM_LINK_BASE").unwrap_or_else(|| "http://127.0.0.1:3000".into()),
            app_url: var("DM_APP_URL").unwrap_or_else(|| "http://127.0.0.1:3000/app/".into()),
            vapid_public_key: var("DM_VAPID_PUBLIC_KEY"),
            push_reach: crate::push::Reach::Public,
        })
    }
}
