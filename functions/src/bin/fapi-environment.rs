//! Lambda function `fapi-environment`: serves `shared::routes::FAPI_ENVIRONMENT`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_ENVIRONMENT).await
}
