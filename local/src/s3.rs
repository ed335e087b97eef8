//! An S3 server in-process: `s3s-fs` serves a folder over the S3 protocol and checks signatures as S3
//! does, with what AWS does beyond it that the API relies on: object tags (the bucket's lifecycle
//! rule expires uploads tagged unreferenced), and a 403 for a missing key, as S3 answers a caller who
//! may not list the bucket (no function may).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use s3s::dto::{
    CreateBucketInput, CreateBucketOutput, DeleteObjectInput, DeleteObjectOutput, DeleteObjectTaggingInput,
    DeleteObjectTaggingOutput, GetObjectInput, GetObjectOutput, GetObjectTaggingInput, GetObjectTaggingOutput,
    HeadObjectInput, HeadObjectOutput, PutObjectInput, PutObjectOutput, PutObjectTaggingInput, PutObjectTaggingOutput,
    Tag,
};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

use crate::BoxError;
use crate::cors::Cors;

/// The access key pair the local stack signs with.
pub const ACCESS_KEY: &str = "local";
pub const SECRET_KEY: &str = "local";

/// Serves `root` on a free loopback port until the runtime stops, with the bucket's CORS rules;
/// returns the endpoint.
pub async fn serve(root: &Path, cors: Cors) -> Result<String, BoxError> {
    std::fs::create_dir_all(root)?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|err| format!("cannot serve {}: {err:?}", root.display()))?;
    let like_aws = LikeAws { fs, root: root.canonicalize()?, tags: Mutex::default() };
    let mut builder = S3ServiceBuilder::new(like_aws);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let (service, cors) = (service.clone(), cors.clone());
            let with_cors = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (service, cors) = (service.clone(), cors.clone());
                async move {
                    if let Some(headers) = cors.preflight(request.method(), request.headers()) {
                        let mut answer = hyper::Response::new(s3s::Body::empty());
                        *answer.status_mut() = hyper::StatusCode::OK;
                        *answer.headers_mut() = headers;
                        return Ok(answer);
                    }
                    let origin = request.headers().get(hyper::header::ORIGIN).cloned();
                    let mut answer = service.call(request.map(s3s::Body::from)).await?;
                    cors.decorate(origin.as_ref(), answer.headers_mut());
                    Ok::<_, s3s::HttpError>(answer)
                }
            });
            let connection = http.serve_connection(TokioIo::new(socket), with_cors).into_owned();
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    });
    Ok(endpoint)
}

/// Creates the bucket unless it exists.
pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), BoxError> {
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) =>
        {
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

/// `s3s-fs` with tags, and with S3's answer to a caller without `s3:ListBucket`.
struct LikeAws {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
    /// Each object's tags, by bucket and key (kept while the server runs).
    tags: Mutex<HashMap<(String, String), Vec<Tag>>>,
}

/// S3 tells a caller who may not list the bucket that a missing key is forbidden, not missing.
fn as_aws_answers(err: S3Error) -> S3Error {
    if *err.code() == S3ErrorCode::NoSuchKey { s3_error!(AccessDenied) } else { err }
}

/// The `x-amz-tagging` header: `key=value&key=value`, URL-encoded.
fn parse_tagging(header: &str) -> Vec<Tag> {
    form_urlencoded::parse(header.as_bytes())
        .map(|(key, value)| Tag { key: Some(key.into_owned()), value: Some(value.into_owned()) })
        .collect()
}

impl LikeAws {
    fn tags(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Vec<Tag>>> {
        self.tags.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The object must be there, or the caller is told it may not look.
    fn require_object(&self, bucket: &str, key: &str) -> S3Result<()> {
        let path = self.root.join(bucket).join(key);
        let inside = path.canonicalize().is_ok_and(|path| path.starts_with(&self.root) && path.is_file());
        if inside { Ok(()) } else { Err(s3_error!(AccessDenied)) }
    }
}

#[async_trait::async_trait]
impl S3 for LikeAws {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let id = (req.input.bucket.clone(), req.input.key.clone());
        let tags = req.input.tagging.as_deref().map(parse_tagging).unwrap_or_default();
        let answer = self.fs.put_object(req).await?;
        self.tags().insert(id, tags);
        Ok(answer)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await.map_err(as_aws_answers)
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        self.fs.get_object(req).await.map_err(as_aws_answers)
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.tags().remove(&(req.input.bucket.clone(), req.input.key.clone()));
        self.fs.delete_object(req).await
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        self.require_object(&req.input.bucket, &req.input.key)?;
        let tag_set = self.tags().get(&(req.input.bucket, req.input.key)).cloned().unwrap_or_default();
        Ok(S3Response::new(GetObjectTaggingOutput { tag_set, ..Default::default() }))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        self.require_object(&req.input.bucket, &req.input.key)?;
        self.tags().insert((req.input.bucket, req.input.key), req.input.tagging.tag_set);
        Ok(S3Response::new(PutObjectTaggingOutput::default()))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        self.require_object(&req.input.bucket, &req.input.key)?;
        self.tags().remove(&(req.input.bucket, req.input.key));
        Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
    }
}
