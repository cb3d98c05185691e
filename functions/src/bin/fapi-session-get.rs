//! Lambda function `fapi-session-get`: serves `shared::routes::FAPI_SESSION_GET`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_SESSION_GET).await
}
