//! Lambda function `fapi-session-end`: serves `shared::routes::FAPI_SESSION_END`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_SESSION_END).await
}
