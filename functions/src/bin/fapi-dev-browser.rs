//! Lambda function `fapi-dev-browser`: serves `shared::routes::FAPI_DEV_BROWSER`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_DEV_BROWSER).await
}
