//! Lambda function `fapi-session-remove`: serves `shared::routes::FAPI_SESSION_REMOVE`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_SESSION_REMOVE).await
}
