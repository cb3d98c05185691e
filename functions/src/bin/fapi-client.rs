//! Lambda function `fapi-client`: serves `shared::routes::FAPI_CLIENT`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_CLIENT).await
}
