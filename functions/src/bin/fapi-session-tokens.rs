//! Lambda function `fapi-session-tokens`: serves `shared::routes::FAPI_SESSION_TOKENS`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_SESSION_TOKENS).await
}
