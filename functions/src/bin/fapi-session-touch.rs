//! Lambda function `fapi-session-touch`: serves `shared::routes::FAPI_SESSION_TOUCH`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_SESSION_TOUCH).await
}
